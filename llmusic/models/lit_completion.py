"""LightningModule for melody completion: teacher-forced next-phrase training, ranked test.

At test time each query's candidates are scored in up to three ways (each reported by
llmusic.eval.ranking; `scoring` picks which):
- `cosine`, as the paper ranks: the model generates a continuation of the context (greedy), and
  each candidate scores the cosine similarity between its representation and the generation's;
- `likelihood`: the candidate's mean token log-likelihood under the decoder given the context;
- `pmi`: that likelihood minus the candidate's likelihood given an empty (all-PAD) context, i.e.
  how much the context raises it. Plain likelihood mostly ranks candidates by their own prior
  (long held notes and common pitches are likely after any context); pmi removes that prior.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from llmusic.eval.ranking import ranking_report, true_ranks
from llmusic.models.melody_transformer import MelodyTransformer, MelodyTransformerConfig

SCORINGS = ("cosine", "likelihood", "pmi")


class LitCompletion(L.LightningModule):
    def __init__(self, net: dict, optimizer: Callable[..., torch.optim.Optimizer],
                 scoring: tuple[str, ...] = SCORINGS) -> None:
        """`net`: MelodyTransformerConfig fields; `optimizer`: params -> optimizer (kept out of the
        checkpoint's hyperparameters, see LitClassifier); `scoring`: a subset of SCORINGS."""
        super().__init__()
        unknown = set(scoring) - set(SCORINGS)
        if unknown or not scoring:
            raise ValueError(f"scoring must be a non-empty subset of {SCORINGS}, got {scoring}")
        self.save_hyperparameters(logger=False, ignore=["optimizer"])
        self.optimizer = optimizer
        self.scoring = tuple(scoring)
        self.net = MelodyTransformer(MelodyTransformerConfig(**net))
        self._test_outputs: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []
        self.test_results: dict = {}
        self._items: dict[str, np.ndarray] = {}

    def loss(self, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = self.net(context, target)  # (B, T, V)
        return F.cross_entropy(logits.transpose(1, 2), target, ignore_index=self.net.config.pad_id)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        context, target = batch[:2]
        loss = self.loss(context, target)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(context))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        context, target = batch[:2]
        self.log("val/loss", self.loss(context, target), prog_bar=True, batch_size=len(context), sync_dist=True)

    def _likelihood(self, context: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """(B, T) contexts, (B * N, T) candidates -> (B * N,) mean log-likelihoods."""
        n = len(flat) // len(context)
        memory, mask = self.net.encode(context)  # (B, T, C), (B, T): encode once, reuse for N candidates
        return self.net.mean_log_likelihood(memory.repeat_interleave(n, 0), mask.repeat_interleave(n, 0), flat)

    def score_candidates(self, context: torch.Tensor, candidates: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, T) contexts, (B, N, T) candidates -> {scoring: (B, N) scores} for self.scoring."""
        b, n, t = candidates.shape
        flat = candidates.reshape(b * n, t)
        # Queries of one batch draw their candidates from one pool of test phrases: what depends on
        # the candidate alone (its representation, its context-free likelihood) is computed once
        # per distinct phrase, not once per (query, candidate) pair.
        distinct, which = torch.unique(flat, dim=0, return_inverse=True)  # (U, T), (B * N,)
        scores = {}
        if "cosine" in self.scoring:
            generated = self.net.represent(self.net.generate(context, t))  # (B, C)
            candidate = self.net.represent(distinct)[which].view(b, n, -1)  # (B, N, C)
            scores["cosine"] = F.cosine_similarity(generated.unsqueeze(1), candidate, dim=-1)
        if {"likelihood", "pmi"} & set(self.scoring):
            likelihood = self._likelihood(context, flat).view(b, n)
            scores["likelihood"] = likelihood
        if "pmi" in self.scoring:
            empty = torch.full_like(context[:1], self.net.config.pad_id)  # (1, T): one empty context
            prior = self._likelihood(empty, distinct)[which].view(b, n)  # (B, N)
            scores["pmi"] = likelihood - prior
        return {name: scores[name] for name in self.scoring}

    def test_step(self, batch, batch_idx: int) -> None:
        context, candidates, true_index = batch
        scores = self.score_candidates(context, candidates)
        self._test_outputs.append(({k: v.float().cpu() for k, v in scores.items()}, true_index.cpu()))

    def on_test_epoch_start(self) -> None:
        self._test_outputs.clear()

    def on_test_epoch_end(self) -> None:
        true_index = torch.cat([t for _, t in self._test_outputs])
        # Per-query ranks of the true candidate, kept for paired comparisons (predictions.npz).
        self._items = {"query_id": np.arange(len(true_index))} | {
            f"rank__{name}": true_ranks(torch.cat([s[name] for s, _ in self._test_outputs]), true_index).numpy()
            for name in self.scoring}
        self.test_results = {
            name: ranking_report(torch.cat([s[name] for s, _ in self._test_outputs]), true_index)
            for name in self.scoring
        }
        for method, report in self.test_results.items():
            self.log(f"test/{method}_map", report["map"]["value"])

    def save_artifacts(self, out_dir: Path) -> list[Path]:
        """The last test's per-query outcomes as predictions.npz: query_id and, per scoring, the
        1-based rank of the true candidate (`rank__<scoring>`; its reciprocal is the query's AP)."""
        path = Path(out_dir) / "predictions.npz"
        np.savez_compressed(path, **self._items)
        return [path]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(params=self.parameters())
