"""Ranking metrics for melody completion: MAP and Hits@k, each beside its chance value and its
95% bootstrap interval over queries, and a model's verdict against chance and the best baseline.

Each query has exactly one true candidate, so its average precision is 1 / rank of that candidate
and MAP equals the mean reciprocal rank; Hits@k is the share of queries whose true candidate ranks
in the top k. Ties count against the model (the true candidate ranks below every candidate that
scores the same), so a model that scores everything equally cannot claim chance. With continuous
scores (no ties) the numbers equal torchmetrics' RetrievalMAP / RetrievalHitRate (tests check it).

`rankings_report` scores a model's scorings and the non-learned baselines
(llmusic.eval.melody_baselines) on the same queries with the same bootstrap resamples; a scoring
"beats chance" when its MAP interval lies above chance MAP, and "beats the best baseline" when
the interval of its per-query reciprocal-rank difference to the best baseline (paired: the same
resampled queries) lies above 0.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from llmusic.eval.uncertainty import N_RESAMPLES, percentile_interval, resample_indices

HITS_AT: tuple[int, ...] = (1, 5, 10, 15, 20, 25)  # the k of Hits@k (PiRhDy / MusicBERT report these)


def chance_map(n: int) -> float:
    """MAP of a random ranking of n candidates with one relevant: mean of 1/rank = H_n / n."""
    return float(sum(Fraction(1, r) for r in range(1, n + 1)) / n)


def chance_hits(k: int, n: int) -> float:
    """Hits@k of a random ranking of n candidates with one relevant: k / n."""
    return min(k, n) / n


def true_ranks(scores: torch.Tensor, true_index: torch.Tensor) -> torch.Tensor:
    """(Q, N) candidate scores, (Q,) index of the true candidate -> (Q,) its 1-based rank."""
    true_score = scores.gather(1, true_index.long().unsqueeze(1))  # (Q, 1)
    return (scores >= true_score).sum(1)  # counts the true candidate itself, so ranks start at 1


def _interval(values: np.ndarray, resamples: np.ndarray) -> list[float]:
    """95% percentile-bootstrap interval of the mean of per-query values over the given resamples."""
    if not len(values):
        return [float("nan"), float("nan")]
    return list(percentile_interval(values[resamples].mean(axis=1)))


def report_from_ranks(ranks: np.ndarray, n_candidates: int, ks: tuple[int, ...] = HITS_AT,
                      resamples: np.ndarray | None = None) -> dict:
    """(Q,) 1-based ranks of the true candidate -> mean rank, MAP and Hits@k, each with its chance
    value and 95% bootstrap interval over queries (`resamples`: (R, Q) query indices, default
    N_RESAMPLES seeded draws)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    n = n_candidates
    resamples = resample_indices(len(ranks), N_RESAMPLES) if resamples is None else resamples
    columns = {"mean_rank": (ranks, (n + 1) / 2), "map": (1.0 / ranks, chance_map(n)),
               **{f"hits@{k}": ((ranks <= k).astype(np.float64), chance_hits(k, n)) for k in ks}}
    report: dict = {"n_queries": len(ranks), "n_candidates": n}
    for name, (values, chance) in columns.items():
        value = float(values.mean()) if len(values) else float("nan")
        report[name] = {"value": value, "chance": chance, "interval": _interval(values, resamples)}
    return report


def ranking_report(scores: torch.Tensor, true_index: torch.Tensor, ks: tuple[int, ...] = HITS_AT) -> dict:
    """MAP and Hits@k of the scores, with chance values for N candidates per query and intervals."""
    return report_from_ranks(true_ranks(scores, true_index).numpy(), scores.shape[1], ks)


def versus(model_ranks: np.ndarray, baseline_ranks: dict[str, np.ndarray], n_candidates: int,
           resamples: np.ndarray) -> dict:
    """A model scoring against chance and the best baseline (highest MAP) on the same queries."""
    rr = 1.0 / np.asarray(model_ranks, dtype=np.float64)
    best = max(baseline_ranks, key=lambda name: float(np.mean(1.0 / baseline_ranks[name])))
    difference = rr - 1.0 / np.asarray(baseline_ranks[best], dtype=np.float64)
    beats_chance = _interval(rr, resamples)[0] > chance_map(n_candidates)
    beats_best = _interval(difference, resamples)[0] > 0
    verdict = {(True, True): "beats chance and the best baseline", (True, False): "beats chance, not the best baseline",
               (False, True): "beats the best baseline, not chance",
               (False, False): "beats neither chance nor the best baseline"}[beats_chance, beats_best]
    return {"best_baseline": best, "best_baseline_map": float(np.mean(1.0 / baseline_ranks[best])),
            "map_minus_best_baseline": {"value": float(difference.mean()),
                                        "interval": _interval(difference, resamples)},
            "beats_chance": bool(beats_chance), "beats_best_baseline": bool(beats_best), "verdict": verdict}


def rankings_report(model_scores: dict[str, torch.Tensor], baseline_scores: dict[str, torch.Tensor],
                    true_index: torch.Tensor, seed: int = 0) -> tuple[dict, dict[str, np.ndarray]]:
    """Every scoring of a model and every baseline on the same (Q, N) candidate lists -> ({name:
    report with `kind` model | baseline, a model's with its `versus` verdict}, {name: (Q,) ranks}).
    One set of bootstrap resamples serves all, so intervals and differences are paired."""
    ranks = {name: true_ranks(s, true_index).numpy() for name, s in {**model_scores, **baseline_scores}.items()}
    n = next(iter(model_scores.values())).shape[1]
    resamples = resample_indices(len(true_index), N_RESAMPLES, seed)
    reports = {}
    for name in ranks:
        kind = "model" if name in model_scores else "baseline"
        reports[name] = {"kind": kind, **report_from_ranks(ranks[name], n, resamples=resamples)}
        if kind == "model" and baseline_scores:
            reports[name]["versus"] = versus(ranks[name], {b: ranks[b] for b in baseline_scores}, n, resamples)
    return reports, ranks
