"""Classification report: accuracy, micro/macro/weighted F1, per-class F1 with support, and the
same numbers for two label-blind baselines, all computed by the same torchmetrics calls.

Baselines, because the real test sets are skewed (308 of 363 TOP-MAGD files are Pop_Rock):
- `chance`: the test labels randomly permuted (mean over draws): a guesser that keeps the test
  set's label distribution but ignores the input.
- `majority`: every sample gets the most frequent class (multi-label: the most frequent label).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchmetrics.functional import classification as tmf  # noqa: E402

THRESHOLD = 0.5  # multi-label: a label is predicted when its sigmoid passes this
AVERAGES = ("micro", "macro", "weighted")


def predict(logits: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Logits (N, C) -> hard predictions: class indices (N,) or multi-hot (N, C) int64."""
    if multilabel:
        return (logits.sigmoid() > THRESHOLD).long()
    return logits.argmax(-1)


def scores(pred: torch.Tensor, target: torch.Tensor, n_classes: int, multilabel: bool) -> dict:
    """Headline and per-class scores of hard predictions. Accuracy is top-1 accuracy for single-label
    data and exact-match (subset) accuracy for multi-label data."""
    target = target.long()
    if multilabel:
        kw = {"num_labels": n_classes, "threshold": THRESHOLD}
        out = {"accuracy": tmf.multilabel_exact_match(pred, target, **kw)}
        f1, precision, recall = tmf.multilabel_f1_score, tmf.multilabel_precision, tmf.multilabel_recall
    else:
        kw = {"num_classes": n_classes}
        out = {"accuracy": tmf.multiclass_accuracy(pred, target, average="micro", **kw)}
        f1, precision, recall = tmf.multiclass_f1_score, tmf.multiclass_precision, tmf.multiclass_recall
    for avg in AVERAGES:
        out[f"f1_{avg}"] = f1(pred, target, average=avg, **kw)
    out["per_class"] = {
        "f1": f1(pred, target, average="none", **kw),
        "precision": precision(pred, target, average="none", **kw),
        "recall": recall(pred, target, average="none", **kw),
    }
    return _to_python(out)


def _to_python(x):
    if isinstance(x, dict):
        return {k: _to_python(v) for k, v in x.items()}
    if isinstance(x, torch.Tensor):
        return x.item() if x.ndim == 0 else x.tolist()
    return x


def support(target: torch.Tensor, n_classes: int, multilabel: bool) -> list[int]:
    """Test samples per class (multi-label: samples carrying the label)."""
    if multilabel:
        return target.long().sum(0).tolist()
    return torch.bincount(target.long(), minlength=n_classes).tolist()


def baseline_predictions(target: torch.Tensor, n_classes: int, multilabel: bool, draws: int, seed: int):
    """Yields (name, predictions) for the label-blind baselines described in the module docstring."""
    counts = torch.tensor(support(target, n_classes, multilabel))
    top = int(counts.argmax())
    if multilabel:
        majority = torch.zeros_like(target, dtype=torch.long)
        majority[:, top] = 1
    else:
        majority = torch.full_like(target, top, dtype=torch.long)
    yield "majority", [majority]
    gen = torch.Generator().manual_seed(seed)
    yield "chance", [target.long()[torch.randperm(len(target), generator=gen)] for _ in range(draws)]


def classification_report(logits: torch.Tensor, target: torch.Tensor, classes: list[str], multilabel: bool,
                          chance_draws: int = 50, seed: int = 0) -> dict:
    """Model scores beside the `chance` and `majority` baselines, with per-class support.

    Returns {"n": N, "model": {...}, "chance": {...}, "majority": {...}, "support": {class: n},
    "per_class": {class: {"f1", "precision", "recall", "support", "chance_f1"}}}.
    """
    c = len(classes)
    report = {"n": len(target), "model": scores(predict(logits, multilabel), target, c, multilabel)}
    for name, preds in baseline_predictions(target, c, multilabel, chance_draws, seed):
        runs = [scores(p, target, c, multilabel) for p in preds]
        report[name] = _mean(runs)
    counts = support(target, c, multilabel)
    report["support"] = dict(zip(classes, counts))
    per = report["model"].pop("per_class")
    chance_f1 = report["chance"].pop("per_class")["f1"]
    report["majority"].pop("per_class")
    report["per_class"] = {
        name: {"f1": per["f1"][i], "precision": per["precision"][i], "recall": per["recall"][i],
               "support": counts[i], "chance_f1": chance_f1[i]}
        for i, name in enumerate(classes)
    }
    return report


def _mean(runs: list[dict]) -> dict:
    first = runs[0]
    if isinstance(first, dict):
        return {k: _mean([r[k] for r in runs]) for k in first}
    if isinstance(first, list):
        return [sum(col) / len(runs) for col in zip(*runs)]
    return sum(runs) / len(runs)


def song_level(logits: torch.Tensor, target: torch.Tensor, song_ids: torch.Tensor):
    """Window logits -> one prediction per song: the mean of its windows' logits.

    Returns (song logits (S, C), song targets, the song ids (S,) in ascending order).
    """
    songs, inverse = torch.unique(song_ids, return_inverse=True)
    n = len(songs)
    summed = torch.zeros(n, logits.shape[1], dtype=logits.dtype).index_add_(0, inverse, logits)
    windows = torch.bincount(inverse, minlength=n).unsqueeze(1)
    song_target = torch.zeros((n, *target.shape[1:]), dtype=target.dtype)
    song_target[inverse] = target  # every window of a song carries the song's label
    if not torch.equal(song_target[inverse], target):
        raise ValueError("windows of one song carry different labels")
    return summed / windows, song_target, songs


def confusion_matrix(logits: torch.Tensor, target: torch.Tensor, n_classes: int, multilabel: bool) -> torch.Tensor:
    """Single-label: (C, C) counts, rows = true class. Multi-label: (C, 2, 2) per label [[TN, FP], [FN, TP]]."""
    pred = predict(logits, multilabel)
    if multilabel:
        return tmf.multilabel_confusion_matrix(pred, target.long(), num_labels=n_classes)
    return tmf.multiclass_confusion_matrix(pred, target.long(), num_classes=n_classes)


def plot_confusion(matrix: torch.Tensor, classes: list[str], path: Path, title: str) -> None:
    """Writes the confusion matrix as a PNG; rows are normalised so skewed classes stay readable."""
    if matrix.ndim == 3:  # multi-label: one row per label, columns TP FN FP TN
        m = torch.stack([matrix[:, 1, 1], matrix[:, 1, 0], matrix[:, 0, 1], matrix[:, 0, 0]], dim=1)
        columns = ["TP", "FN", "FP", "TN"]
    else:
        m, columns = matrix, classes
    counts = m.float()
    share = counts / counts.sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.45 * max(len(classes), len(columns)) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=90)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
