"""Finished train runs: reading their folders, grouping seeds, and paired tests between two runs.

A run is any directory holding the metrics.json and config.yaml that `llmusic.train` writes, and
the predictions.npz of its test items (classification: song_id, target, pred, logits, scored per
test song; melody completion: query_id and rank__<scoring> per query).

- Runs that differ only by seed (`-m seed=0,1,2`) form a group: `group_runs` keys a run by its
  saved config without `seed`, what the seed seeds (`data.seed`, a shuffled-label control's
  permutation) and its own paths.
- `compare_runs(a, b)` tests two runs on the same test items, and refuses runs whose test data
  differ: classification runs by McNemar's test and a paired permutation test on per-song
  correctness, and a paired swap test on micro- and macro-F1 (over the songs of the closed score);
  ranking runs by a paired permutation test on per-query reciprocal ranks, per scoring.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from llmusic.eval.classification import scores
from llmusic.eval.uncertainty import mcnemar_test, paired_permutation_test, paired_swap_test

PREDICTIONS = "predictions.npz"
SEEDED = ("seed", "data.seed", "data.train.shuffle_labels")  # keys set by a run's seed
FOLDED = ("fold", "data.train.fold", "data.test.fold")  # keys set by a cross-validation fold
TEST_DATA_IGNORED = ("cache_dir", "inputs")  # keys of data.test that do not change its items (inputs: rolls or features of the same windows)


@dataclass
class Run:
    dir: Path
    config: dict
    metrics: dict

    @property
    def experiment(self) -> str:
        return self.metrics.get("name") or self.config.get("name", "?")

    @property
    def is_classification(self) -> bool:
        return "window" in self.metrics["test"]

    @property
    def variant(self) -> dict:
        """What the run varies besides experiment, seed and fold (older runs: the defaults)."""
        return {"protocol": "paper", "control": "none", "balance": False, "model": "CNN",
                **self.metrics.get("variant", {})}

    def predictions(self) -> dict[str, np.ndarray]:
        path = self.dir / PREDICTIONS
        if not path.exists():
            raise FileNotFoundError(f"{path}: no per-item predictions in this run (older than issue 11?)")
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}


def collect_runs(*roots: str | Path) -> list[Run]:
    """Every finished run (metrics.json beside config.yaml) under the given dirs, in path order."""
    runs = []
    for root in roots:
        for path in sorted(Path(root).rglob("metrics.json")):
            config_path = path.parent / "config.yaml"
            config = OmegaConf.to_container(OmegaConf.load(config_path)) if config_path.exists() else {}
            runs.append(Run(path.parent, config, json.loads(path.read_text())))
    return runs


def _flat(tree, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tree}


def run_identity(run: Run, ignore: Sequence[str] = ()) -> str:
    """The run's saved config without its seed, what the seed sets, the run's own paths and the
    `ignore`d keys; with its experiment and variant."""
    own = str(run.config.get("paths", {}).get("output_dir", run.dir))
    kept = {k: v for k, v in _flat(run.config).items() if k not in SEEDED and k not in ignore
            and not k.startswith("paths.") and not (isinstance(v, str) and own in v)}
    return json.dumps([run.experiment, run.variant, kept], sort_keys=True, default=str)


def group_runs(runs: Iterable[Run], ignore: Sequence[str] = ()) -> list[list[Run]]:
    """Runs that differ only by seed (and the `ignore`d keys, e.g. FOLDED), in first-seen order;
    each group sorted by fold and seed."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run_identity(run, ignore), []).append(run)
    return [sorted(g, key=lambda r: (r.metrics.get("fold") or 0, r.metrics.get("seed", 0))) for g in groups.values()]


def test_data_difference(a: Run, b: Run) -> list[str]:
    """Keys of data.test whose values differ between the runs (none: the same test data)."""
    test_a, test_b = (_flat(r.config.get("data", {}).get("test", {})) for r in (a, b))
    keys = sorted(set(test_a) | set(test_b))
    return [k for k in keys if k.split(".")[-1] not in TEST_DATA_IGNORED and test_a.get(k) != test_b.get(k)]


def compare_runs(a: Run, b: Run, n_resamples: int = 10000, seed: int = 0) -> dict:
    """Paired tests of run `a` against run `b` on the same test items (see the module docstring).

    Raises ValueError when the runs are of different kinds or their test data differ.
    """
    if a.is_classification != b.is_classification:
        raise ValueError(f"{a.dir} and {b.dir}: one is a classification run, the other a ranking run")
    differ = test_data_difference(a, b)
    if differ:
        raise ValueError(f"{a.dir} and {b.dir} were tested on different data (data.test: {', '.join(differ)}): "
                         "a paired test needs the same test items")
    pa, pb = a.predictions(), b.predictions()
    ids = ("song_id", "target") if a.is_classification else ("query_id",)
    for key in ids:
        if pa[key].shape != pb[key].shape or not np.array_equal(pa[key], pb[key]):
            raise ValueError(f"{a.dir} and {b.dir}: the test items differ ({key}): a paired test needs the same items")
    if a.is_classification:
        return _compare_classification(a, pa, pb, n_resamples, seed)
    return _compare_ranking(pa, pb, n_resamples, seed)


def _compare_classification(a: Run, pa: dict, pb: dict, n_resamples: int, seed: int) -> dict:
    scored = pa.get("scored", np.ones(len(pa["target"]), bool))
    classes = a.metrics["test"]["song"].get("classes") or list(a.metrics["test"]["song"]["support"])
    n, multilabel = len(classes), pa["target"].ndim == 2
    target = pa["target"][scored]
    target = target[:, :n] if multilabel else target
    pred_a, pred_b = pa["pred"][scored], pb["pred"][scored]
    correct_a, correct_b = ((p == target).all(-1) if multilabel else p == target for p in (pred_a, pred_b))
    out = {"kind": "classification", "items": int(scored.sum()), "classes": classes,
           "accuracy": [float(correct_a.mean()), float(correct_b.mean())],
           "mcnemar_p": mcnemar_test(correct_a, correct_b),
           "permutation_p": paired_permutation_test(correct_a, correct_b, n_resamples, seed)}
    for key in ("f1_micro", "f1_macro"):
        def statistic(pred, key=key):
            return scores(pred, target, n, multilabel)[key]
        out[key] = [statistic(pred_a), statistic(pred_b)]
        out[f"{key}_swap_p"] = paired_swap_test(statistic, pred_a, pred_b, min(n_resamples, 2000), seed)
    return out


def _compare_ranking(pa: dict, pb: dict, n_resamples: int, seed: int) -> dict:
    out = {"kind": "ranking", "items": len(pa["query_id"]), "scorings": {}}
    for key in sorted(k for k in pa if k.startswith("rank__") and k in pb):
        rr_a, rr_b = 1.0 / pa[key], 1.0 / pb[key]
        out["scorings"][key.removeprefix("rank__")] = {
            "map": [float(rr_a.mean()), float(rr_b.mean())],
            "permutation_p": paired_permutation_test(rr_a, rr_b, n_resamples, seed)}
    return out
