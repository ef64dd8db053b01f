"""Bootstrap intervals, paired tests and seed spread: checked against exact values and known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmusic.eval.uncertainty import (
    bootstrap_interval,
    mcnemar_test,
    mean_interval,
    mean_sd,
    paired_permutation_test,
    paired_swap_test,
)


def test_mean_interval_covers_the_mean_and_shrinks_with_more_items():
    rng = np.random.default_rng(0)
    small, large = rng.random(100), rng.random(10_000)
    lo_s, hi_s = mean_interval(small)
    lo_l, hi_l = mean_interval(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    # The width of a mean's interval goes as 1 / sqrt(n): 10x narrower for 100x the items.
    assert (hi_s - lo_s) / (hi_l - lo_l) == pytest.approx(10, rel=0.25)
    # About 2 * 1.96 standard errors wide.
    assert hi_l - lo_l == pytest.approx(2 * 1.96 * large.std() / math.sqrt(len(large)), rel=0.1)


def test_constant_scores_have_a_point_interval_and_empty_ones_none():
    assert mean_interval(np.full(50, 0.25)) == (0.25, 0.25)
    assert all(math.isnan(v) for v in mean_interval([]))


def test_bootstrap_interval_resamples_paired_arrays_together():
    target = np.arange(200) % 4
    pred = target.copy()
    pred[:20] = (pred[:20] + 1) % 4  # 90% right
    accuracy = lambda p, t: float(np.mean(p == t))  # noqa: E731
    lo, hi = bootstrap_interval(accuracy, pred, target)
    assert lo < 0.9 < hi and hi - lo < 0.1
    assert bootstrap_interval(accuracy, target, target) == (1.0, 1.0)  # pairs stay paired
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_interval(accuracy, pred, target[:-1])


def test_paired_permutation_test_separates_a_real_gain_from_noise():
    rng = np.random.default_rng(1)
    base = rng.random(300)
    assert paired_permutation_test(base + 0.05, base) < 0.001  # every item better
    noise = paired_permutation_test(base + rng.normal(0, 0.1, 300), base + rng.normal(0, 0.1, 300))
    assert noise > 0.05
    assert paired_permutation_test(base, base) == 1.0  # no difference at all
    assert paired_permutation_test(base, base + 1, n_resamples=99) == pytest.approx(1 / 100)  # never 0


def test_mcnemar_exact_values():
    # 10 discordant items split 9:1 -> two-sided exact p = 2 * (1 + 10) / 2**10.
    a = np.array([True] * 9 + [False] + [True] * 5)
    b = np.array([False] * 9 + [True] + [True] * 5)
    assert mcnemar_test(a, b) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_test(a, a) == 1.0
    assert mcnemar_test([True, False], [False, True]) == 1.0


def test_mean_sd_over_seeds():
    assert mean_sd([0.1, 0.2, 0.3]) == pytest.approx((0.2, 0.1))
    mean, sd = mean_sd([0.5])
    assert mean == 0.5 and math.isnan(sd)


def test_paired_swap_test_on_a_statistic_that_is_not_a_mean():
    """Macro-accuracy over classes (a mean of per-class means): swapping the two systems' outputs
    item by item is its null; identical outputs give p = 1, a clear gain a small p."""
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, 200)

    def macro_accuracy(pred):
        return np.mean([(pred[target == k] == k).mean() for k in range(3)])
    good = np.where(rng.random(200) < 0.8, target, rng.integers(0, 3, 200))
    poor = np.where(rng.random(200) < 0.3, target, rng.integers(0, 3, 200))
    assert paired_swap_test(macro_accuracy, good, poor, n_resamples=500) < 0.01
    assert paired_swap_test(macro_accuracy, good, good, n_resamples=50) == 1.0
    twin = np.where(rng.random(200) < 0.8, target, rng.integers(0, 3, 200))
    assert paired_swap_test(macro_accuracy, good, twin, n_resamples=500) > 0.05
    with pytest.raises(ValueError, match="equal-shape"):
        paired_swap_test(macro_accuracy, good, good[:10])
