"""How sure a score is: bootstrap intervals over test items, paired tests between two runs, and
the spread over seeds.

A test set of a few hundred songs or queries moves a score by several points between resamples,
so every headline number carries a 95% percentile-bootstrap interval over its test items, and a
claim that run A beats run B rests on a paired test over the items both scored:
- `paired_permutation_test`: per-item scores (reciprocal ranks, per-song F1 contributions, 0/1
  correctness); the sign of each item's difference is flipped at random (two-sided, Monte Carlo
  with the +1 correction, so p is never 0);
- `mcnemar_test`: per-item correctness; the exact binomial test on the discordant items;
- `paired_swap_test`: per-item outputs of two systems, swapped at random, for a statistic that is
  not a mean over items (macro-F1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

LEVEL = 0.95
N_RESAMPLES = 2000


def resample_indices(n_items: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(n_resamples, n_items) item indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n_items, size=(n_resamples, n_items))


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def mean_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL,
                  n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of the mean of per-item values (MAP from reciprocal ranks, Hits@k from 0/1)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    means = values[resample_indices(len(values), n_resamples, seed)].mean(axis=1)  # (n_resamples,)
    return percentile_interval(means, level)


def bootstrap_interval(statistic: Callable[..., float], *arrays: np.ndarray, level: float = LEVEL,
                       n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of any statistic of paired per-item arrays (e.g. macro-F1 of (pred, target)):
    the same resampled items are taken from every array."""
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays differ in length: {[len(a) for a in arrays]}")
    if n == 0:
        return float("nan"), float("nan")
    samples = np.array([statistic(*(a[idx] for a in arrays))
                        for idx in resample_indices(n, n_resamples, seed)])
    return percentile_interval(samples, level)


def paired_permutation_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                            n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value that per-item scores `a` and `b` (the same items, in the same order) have
    the same mean."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.ndim != 1 or len(diff) == 0:
        raise ValueError(f"need two equal-length, non-empty 1-D score arrays, got a difference of shape {diff.shape}")
    observed = abs(diff.mean())
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_resamples, len(diff)))
    null = np.abs((signs * diff).mean(axis=1))
    # The tolerance keeps float noise from splitting ties with the observed mean.
    extreme = np.count_nonzero(null >= observed - 1e-12 * max(1.0, observed))
    return (extreme + 1) / (n_resamples + 1)


def mcnemar_test(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray) -> float:
    """Exact two-sided McNemar p-value for per-item correctness of two classifiers on the same items."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape:
        raise ValueError(f"correctness arrays differ in shape: {correct_a.shape} vs {correct_b.shape}")
    only_a = int(np.count_nonzero(correct_a & ~correct_b))
    only_b = int(np.count_nonzero(~correct_a & correct_b))
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (sd is nan for a single value)."""
    values = np.asarray(values, dtype=np.float64)
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return float(values.mean()), sd


def paired_swap_test(statistic: Callable[[np.ndarray], float], a: np.ndarray, b: np.ndarray,
                     n_resamples: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value that two systems' per-item outputs `a` and `b` (the same items, in the same
    order; e.g. predicted classes) score the same under `statistic` (e.g. macro-F1, which is not a
    mean over items): each item's pair of outputs is swapped at random (the +1 correction keeps p > 0)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(f"need two equal-shape, non-empty output arrays, got {a.shape} and {b.shape}")
    observed = abs(statistic(a) - statistic(b))
    rng = np.random.default_rng(seed)
    extreme = 0
    for _ in range(n_resamples):
        swap = rng.random(len(a)) < 0.5
        mask = swap.reshape(-1, *([1] * (a.ndim - 1)))
        a_, b_ = np.where(mask, b, a), np.where(mask, a, b)
        extreme += abs(statistic(a_) - statistic(b_)) >= observed - 1e-12 * max(1.0, observed)
    return (extreme + 1) / (n_resamples + 1)
