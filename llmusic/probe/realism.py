"""Realism: can a simple classifier tell a group of LLM songs from real songs of a class?

A classifier two-sample test (Lopez-Paz & Oquab 2017): an L2-regularised logistic regression on
the standardised features (fitted by Newton's method; 87 parameters need no library), cross-
validated over songs (all windows of a song in one fold, folds stratified by side), scores every
held-out window; the AUC of those scores, LLM against real, is the realism score: 0.5 means the
classifier cannot tell them apart, 1.0 that it always can. Each song weighs the same whatever its
number of windows, and both sides weigh the same in the fit. The interval resamples songs within
each side (the out-of-fold scores kept), so it covers the test songs' sampling, not the refits.
"""

from __future__ import annotations

import numpy as np

from llmusic.data.rolls import stratified_folds
from llmusic.eval.uncertainty import percentile_interval


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float = 1.0,
                 max_iter: int = 50, tol: float = 1e-8) -> np.ndarray:
    """(F + 1,) coefficients (intercept last) minimising the weighted log loss + l2 / 2 |w|^2
    (the intercept not penalised), by Newton's method (the problem is convex and small)."""
    design = np.column_stack([x, np.ones(len(x))])  # (N, F + 1)
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0
    beta = np.zeros(design.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        gradient = design.T @ (weight * (p - y)) + penalty * beta
        hessian = (design * (weight * p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < tol:
            break
    return beta


def weighted_auc(score: np.ndarray, positive: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """AUC (ties count half) of scores, positives against negatives, under (R, N) item weights: (R,)."""
    weight = np.atleast_2d(weight)
    order = np.argsort(score, kind="stable")
    score, positive, weight = score[order], positive[order], weight[:, order]
    first = np.r_[True, score[1:] != score[:-1]]
    tie = np.cumsum(first) - 1  # tie group of each item
    neg = np.where(positive, 0.0, weight)
    neg_in_tie = np.add.reduceat(neg, np.flatnonzero(first), axis=1)  # (R, ties)
    below = np.cumsum(neg_in_tie, axis=1) - neg_in_tie  # negatives strictly below each tie group
    credit = below[:, tie] + 0.5 * neg_in_tie[:, tie]
    pos = np.where(positive, weight, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * credit).sum(1) / (pos.sum(1) * neg.sum(1))


def realism(llm: np.ndarray, llm_song: np.ndarray, real: np.ndarray, real_song: np.ndarray, folds: int = 5,
            l2: float = 1.0, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Cross-validated AUC of LLM windows against real windows (standardised features, NaN-free), with
    a song-bootstrap interval. Needs at least `folds` songs on each side (fewer: as many folds as songs)."""
    x = np.vstack([llm, real])
    positive = np.r_[np.ones(len(llm), bool), np.zeros(len(real), bool)]
    # Songs numbered per side: one name on both sides (a set against itself) is two songs here.
    llm_names, llm_index = np.unique(llm_song.astype(str), return_inverse=True)
    real_names, real_index = np.unique(real_song.astype(str), return_inverse=True)
    song = np.r_[llm_index, len(llm_names) + real_index]
    windows = np.bincount(song)
    song_side = np.arange(len(llm_names) + len(real_names)) < len(llm_names)
    n_songs = (int(song_side.sum()), int((~song_side).sum()))
    k = min(folds, *n_songs)
    if k < 2:
        return {"auc": float("nan"), "interval": [float("nan")] * 2, "llm_songs": n_songs[0],
                "real_songs": n_songs[1], "folds": k, "note": "fewer than 2 songs on a side"}
    fold = stratified_folds(np.where(song_side, "llm", "real"), k, seed)[song]  # (N,) fold of each window
    weight = 1.0 / windows[song]
    balance = np.where(positive, 1.0 / weight[positive].sum(), 1.0 / weight[~positive].sum())
    score = np.zeros(len(x))
    for f in range(k):
        held = fold == f
        train = ~held
        mean, sd = x[train].mean(0), x[train].std(0)
        sd[sd == 0] = 1.0
        beta = fit_logistic((x[train] - mean) / sd, positive[train].astype(float),
                            weight[train] * balance[train] * train.sum(), l2)
        score[held] = np.column_stack([(x[held] - mean) / sd, np.ones(held.sum())]) @ beta
    rng = np.random.default_rng(seed)
    counts = np.ones((1 + n_resamples, len(song_side)))
    for side in (song_side, ~song_side):  # resample songs within each side
        members = np.flatnonzero(side)
        counts[1:, members] = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)),
                                              size=n_resamples)
    auc = weighted_auc(score, positive, counts[:, song] * weight)
    return {"auc": float(auc[0]), "interval": list(percentile_interval(auc[1:][np.isfinite(auc[1:])])),
            "llm_songs": n_songs[0], "real_songs": n_songs[1], "folds": k, "resamples": auc[1:]}
