"""How far apart two groups of songs are in the features: the energy distance, with song-level
bootstrap intervals, and genre retrieval from it.

Features are standardised on the real side (its windows' mean and standard deviation, so every run
probed against one real data set is measured with one yardstick), a missing value (the register of
a silent role) becomes the real mean, and each feature family (`FEATURE_GROUPS`) is scaled by
1 / sqrt(its size) so that the 32 onset shares weigh as much together as polyphony alone.

The energy distance (Szekely & Rizzo 2013) of groups X and Y is 2 E|X - Y| - E|X - X'| - E|Y - Y'|
(Euclidean norms): 0 exactly when the distributions are equal, growing with any difference in
location or shape. It is the MMD of the distance kernel, so it needs no bandwidth (an MMD with a
Gaussian kernel would move with a bandwidth chosen from the data, and so from run to run). Each
mean here is over pairs of windows from *different songs*: a window paired with itself (distance 0)
or with another window of its song (a near copy) would shrink E|Y - Y'| the more, the fewer songs
a class has, and make small classes look farther away. So the estimate is unbiased for a
song-level sample, exactly 0 for identical sets, and comparable between real classes of very
different sizes. Intervals resample songs within each group (all of a song's windows together).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmusic.midi.features import FEATURE_GROUPS


def standardiser(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, kept): z = (x - mean) * scale on the `kept` columns (those that vary in the
    reference); scale includes the family weight 1 / sqrt(family size)."""
    mean = np.nanmean(reference, axis=0) if len(reference) else np.zeros(reference.shape[1])
    sd = np.nanstd(reference, axis=0) if len(reference) else np.zeros(reference.shape[1])
    kept = np.isfinite(sd) & (sd > 0)
    groups = np.asarray(FEATURE_GROUPS)
    family = np.array([np.count_nonzero(kept & (groups == g)) for g in groups])
    scale = np.where(kept, 1.0 / (np.where(kept, sd, 1.0) * np.sqrt(np.maximum(family, 1))), 0.0)
    return np.nan_to_num(mean), scale, kept


def standardise(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """(N, kept columns) float64; a missing value becomes the reference mean (0)."""
    return np.nan_to_num((x[:, kept] - mean[kept]) * scale[kept])


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Euclidean distances."""
    squared = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def song_counts(n_songs: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(1 + n_resamples, n_songs) bootstrap counts of songs; row 0 is the sample itself (all ones)."""
    draws = rng.multinomial(n_songs, np.full(n_songs, 1.0 / max(n_songs, 1)), size=n_resamples)
    return np.vstack([np.ones((1, n_songs)), draws]).astype(np.float64)


@dataclass
class _Group:
    """One group's windows sorted by song: `points` (W, F), `song` (W,) song numbers, and per song
    its first window (`starts`), its window count (`windows`), its number (`names`) and its bootstrap
    counts (`counts`, (1 + R, S): row 0 all ones, the sample itself)."""

    points: np.ndarray
    song: np.ndarray
    starts: np.ndarray
    windows: np.ndarray
    names: np.ndarray
    counts: np.ndarray


def _group(points: np.ndarray, song: np.ndarray, n_resamples: int, rng: np.random.Generator) -> _Group:
    order = np.argsort(song, kind="stable")
    points, song = points[order], song[order]
    starts = np.flatnonzero(np.r_[True, song[1:] != song[:-1]])
    return _Group(points, song, starts, np.diff(np.r_[starts, len(song)]), song[starts],
                  song_counts(len(starts), n_resamples, rng))


def _mean_distance(a: _Group, b: _Group) -> np.ndarray:
    """(1 + R,) mean distance over window pairs of different songs, songs weighted by their counts."""
    d = _pairwise(a.points, b.points)
    _, ia, ib = np.intersect1d(a.names, b.names, assume_unique=True, return_indices=True)  # songs on both sides
    if len(ia):
        d[a.song[:, None] == b.song[None, :]] = 0.0
    sums = np.add.reduceat(np.add.reduceat(d, a.starts, axis=0), b.starts, axis=1)  # (songs of a, songs of b)
    num = np.einsum("rs,rs->r", a.counts @ sums, b.counts)
    den = (a.counts @ a.windows) * (b.counts @ b.windows)
    den -= (a.counts[:, ia] * b.counts[:, ib]) @ (a.windows[ia] * b.windows[ib]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def energy_distances(x: np.ndarray, song_x: np.ndarray, group_x: np.ndarray, n_x: int,
                     y: np.ndarray, song_y: np.ndarray, group_y: np.ndarray, n_y: int,
                     n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """(1 + n_resamples, n_x, n_y) energy distances between every group of x and every group of y
    (standardised features); [0] is the estimate, the rest song-level bootstrap resamples (NaN for
    an empty group).

    song_x, song_y: a name per window; the same name on both sides is the same song (its pairs are
    left out, so a set against itself gives exactly 0)."""
    _, song = np.unique(np.concatenate([song_x, song_y]).astype(str), return_inverse=True)
    song_x, song_y = song[:len(song_x)], song[len(song_x):]
    rng = np.random.default_rng(seed)
    gx = [_group(x[group_x == a], song_x[group_x == a], n_resamples, rng) if np.any(group_x == a) else None
          for a in range(n_x)]
    gy = [_group(y[group_y == b], song_y[group_y == b], n_resamples, rng) if np.any(group_y == b) else None
          for b in range(n_y)]
    out = np.full((1 + n_resamples, n_x, n_y), np.nan)
    within_y = [None if b is None else _mean_distance(b, b) for b in gy]
    for i, a in enumerate(gx):
        if a is None:
            continue
        within_a = _mean_distance(a, a)
        for j, b in enumerate(gy):
            if b is not None:
                out[:, i, j] = 2 * _mean_distance(a, b) - within_a - within_y[j]
    return out


def retrieval(distances: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(R,) share of rows with a target (index >= 0) whose nearest column is their target, per resample.
    distances (R, rows, columns)."""
    mapped = targets >= 0
    nearest = np.argmin(np.where(np.isnan(distances), np.inf, distances), axis=2)  # (R, rows)
    return (nearest[:, mapped] == targets[mapped]).mean(axis=1)


def permutation_chance(nearest: np.ndarray, targets: np.ndarray, n_permutations: int = 10000,
                       seed: int = 0) -> tuple[float, float]:
    """Retrieval accuracy when the targets are dealt to the mapped rows at random: its mean (exact:
    for each row, the share of rows whose target is its nearest column) and the one-sided p-value of
    the observed accuracy (Monte Carlo, +1 corrected)."""
    mapped = targets >= 0
    near, tgt = nearest[mapped], targets[mapped]
    if not len(tgt):
        return float("nan"), float("nan")
    chance = float(np.mean([np.mean(tgt == n) for n in near]))
    observed = np.mean(near == tgt)
    rng = np.random.default_rng(seed)
    shuffled = np.array([np.mean(near == rng.permutation(tgt)) for _ in range(n_permutations)])
    return chance, float((np.count_nonzero(shuffled >= observed - 1e-12) + 1) / (n_permutations + 1))
