"""Classification report: accuracy, micro/macro/weighted F1, per-class F1 with support, a 95%
bootstrap interval for each, and the same numbers for two label-blind baselines.

Baselines, because the real test sets are skewed (about 70% of the TOP-MAGD files are Pop_Rock):
- `chance`: the test labels randomly permuted (mean over draws): a guesser that keeps the test
  set's label distribution but ignores the input.
- `majority`: every sample gets the most frequent class (multi-label: the most frequent label).
Both guess only among the classes a model can predict (the first `predictable` columns): on an
open test set (files of classes no prompt label maps to kept in, llmusic.data.rolls) the majority
is the most frequent predictable class and chance draws from the predictable files' labels.

The headline is macro-F1 where the test set is skewed (its most frequent class holds at least
twice the share it would hold in a balanced set of the classes present), else micro-F1. Scores are
counted with numpy (checked against torchmetrics in tests/test_models.py), fast enough to resample.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchmetrics.functional import classification as tmf  # noqa: E402

from llmusic.eval.uncertainty import percentile_interval, resample_indices  # noqa: E402

THRESHOLD = 0.5  # multi-label: a label is predicted when its sigmoid passes this
AVERAGES = ("micro", "macro", "weighted")
METRICS = ("accuracy", *(f"f1_{avg}" for avg in AVERAGES))
SKEW_FACTOR = 2.0  # skewed: the largest class holds >= SKEW_FACTOR x its balanced share
N_RESAMPLES = 1000  # bootstrap resamples of the test songs for the intervals


def predict(logits: torch.Tensor, multilabel: bool) -> torch.Tensor:
    """Logits (N, C) -> hard predictions: class indices (N,) or multi-hot (N, C) int64."""
    if multilabel:
        return (logits.sigmoid() > THRESHOLD).long()
    return logits.argmax(-1)


def _counts(pred: np.ndarray, target: np.ndarray, n_classes: int, multilabel: bool, idx: np.ndarray):
    """Per resample (rows of `idx`, item indices): true positives, predicted and true counts per
    class (R, C), and correct items (R,) (multi-label: exact matches)."""
    r = len(idx)
    if multilabel:
        hit, pred, target = pred & target, pred.astype(np.int64), target.astype(np.int64)
        tp, predicted, actual = (np.stack([a[rows].sum(0) for rows in idx]) for a in (hit, pred, target))
        correct = np.stack([(pred[rows] == target[rows]).all(1).sum() for rows in idx])
        return tp, predicted, actual, correct
    offset = (np.arange(r)[:, None] * n_classes)  # (R, 1): one bincount for every resample
    p, t = pred[idx] + offset, target[idx] + offset
    size = r * n_classes
    tp = np.bincount(t[p == t], minlength=size).reshape(r, n_classes)
    predicted = np.bincount(p.ravel(), minlength=size).reshape(r, n_classes)
    actual = np.bincount(t.ravel(), minlength=size).reshape(r, n_classes)
    return tp, predicted, actual, tp.sum(1)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def _scores_from_counts(tp, predicted, actual, correct, n_items: int, multilabel: bool) -> dict[str, np.ndarray]:
    fp, fn = predicted - tp, actual - tp
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)  # (R, C)
    # torchmetrics' macro average leaves out single-label classes nobody has or predicts.
    weight = np.ones_like(f1) if multilabel else (tp + fp + fn > 0).astype(float)
    return {"accuracy": correct / n_items,
            "f1_micro": _ratio(2 * tp.sum(1), (2 * tp + fp + fn).sum(1)),
            "f1_macro": _ratio((weight * f1).sum(1), weight.sum(1)),
            "f1_weighted": _ratio((actual * f1).sum(1), actual.sum(1)),
            "f1": f1, "precision": _ratio(tp, predicted), "recall": _ratio(tp, actual)}


def scores(pred, target, n_classes: int, multilabel: bool) -> dict:
    """Headline and per-class scores of hard predictions. Accuracy is top-1 accuracy for single-label
    data and exact-match (subset) accuracy for multi-label data."""
    pred, target = np.asarray(pred).astype(np.int64), np.asarray(target).astype(np.int64)
    one = _scores_from_counts(*_counts(pred, target, n_classes, multilabel, np.arange(len(target))[None]),
                              len(target), multilabel)
    out = {k: float(one[k][0]) for k in METRICS}
    out["per_class"] = {k: one[k][0].tolist() for k in ("f1", "precision", "recall")}
    return out


def score_intervals(pred, target, n_classes: int, multilabel: bool, n_resamples: int = N_RESAMPLES,
                    seed: int = 0) -> dict[str, list[float]]:
    """95% percentile-bootstrap interval of every headline score, resampling the test items."""
    pred, target = np.asarray(pred).astype(np.int64), np.asarray(target).astype(np.int64)
    idx = resample_indices(len(target), n_resamples, seed)
    chunks = [_scores_from_counts(*_counts(pred, target, n_classes, multilabel, part), len(target), multilabel)
              for part in np.array_split(idx, max(1, n_resamples // 100))]
    return {k: list(percentile_interval(np.concatenate([c[k] for c in chunks]))) for k in METRICS}


def support(target, n_classes: int, multilabel: bool) -> list[int]:
    """Test samples per class (multi-label: samples carrying the label)."""
    target = np.asarray(target).astype(np.int64)
    if multilabel:
        return target.sum(0).tolist()
    return np.bincount(target, minlength=n_classes).tolist()


def baseline_predictions(target: np.ndarray, n_classes: int, multilabel: bool, draws: int, seed: int,
                         predictable: int | None = None):
    """Yields (name, predictions) for the label-blind baselines of the module docstring, guessing
    among the first `predictable` classes (default: all)."""
    predictable = n_classes if predictable is None else predictable
    counts = np.asarray(support(target, n_classes, multilabel))
    top = int(counts[:predictable].argmax())
    majority = np.zeros_like(target) if multilabel else np.full_like(target, top)
    if multilabel:
        majority[:, top] = 1
    yield "majority", [majority]
    if multilabel:
        pool = target[target[:, :predictable].any(1)].copy()
        pool[:, predictable:] = 0
    else:
        pool = target[target < predictable]
    rng = np.random.default_rng(seed)
    # A permutation of the test labels; on an open test set, of the predictable files' labels repeated.
    yield "chance", [rng.permutation(np.resize(rng.permutation(pool), target.shape)) for _ in range(draws)]


def skew(counts: list[int], classes: list[str]) -> dict:
    """The most frequent class, its share of the labels, and whether that makes the set skewed."""
    counts = np.asarray(counts, dtype=np.float64)
    present = int((counts > 0).sum())
    share = float(counts.max() / counts.sum()) if counts.sum() else 0.0
    skewed = present > 0 and share >= SKEW_FACTOR / max(present, 1)
    return {"majority_class": classes[int(counts.argmax())], "majority_share": share, "skewed": bool(skewed),
            "headline": "f1_macro" if skewed else "f1_micro"}


def classification_report(logits, target, classes: list[str], multilabel: bool, chance_draws: int = 50,
                          seed: int = 0, predictable: int | None = None, intervals: bool = False) -> dict:
    """Model scores beside the `chance` and `majority` baselines, with per-class support.

    `predictable`: how many leading classes the model can output (the rest are test classes it
    cannot be right on, the open score's). `intervals`: add a 95% bootstrap interval per score.
    Returns {"n", "classes", "model", "chance", "majority", ["interval"], "below_majority": [metrics],
    "majority_class", "majority_share", "skewed", "headline", "support", "per_class"}.
    """
    c = len(classes)
    logits = torch.as_tensor(logits)
    target = np.asarray(target).astype(np.int64)
    pred = predict(logits, multilabel).numpy()
    report = {"n": len(target), "classes": list(classes), "model": scores(pred, target, c, multilabel)}
    if intervals:
        report["interval"] = score_intervals(pred, target, c, multilabel, seed=seed)
    for name, preds in baseline_predictions(target, c, multilabel, chance_draws, seed, predictable):
        report[name] = _mean([scores(p, target, c, multilabel) for p in preds])
    report["below_majority"] = [k for k in METRICS if report["model"][k] < report["majority"][k]]
    counts = support(target, c, multilabel)
    report.update(skew(counts, list(classes)))
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
