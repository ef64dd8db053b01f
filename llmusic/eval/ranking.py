"""Ranking metrics for melody completion: MAP and Hits@k, each beside its chance value.

Each query has exactly one true candidate, so its average precision is 1 / rank of that candidate
and MAP equals the mean reciprocal rank; Hits@k is the share of queries whose true candidate ranks
in the top k. Ties count against the model (the true candidate ranks below every candidate that
scores the same), so a model that scores everything equally cannot claim chance. With continuous
scores (no ties) the numbers equal torchmetrics' RetrievalMAP / RetrievalHitRate (tests check it).
"""

from __future__ import annotations

from fractions import Fraction

import torch

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


def ranking_report(scores: torch.Tensor, true_index: torch.Tensor, ks: tuple[int, ...] = HITS_AT) -> dict:
    """MAP and Hits@k of the scores, with chance values for N candidates per query."""
    q, n = scores.shape
    ranks = true_ranks(scores, true_index).double()
    report = {
        "n_queries": q,
        "n_candidates": n,
        "mean_rank": {"value": ranks.mean().item(), "chance": (n + 1) / 2},
        "map": {"value": (1.0 / ranks).mean().item(), "chance": chance_map(n)},
    }
    for k in ks:
        report[f"hits@{k}"] = {"value": (ranks <= k).double().mean().item(), "chance": chance_hits(k, n)}
    return report
