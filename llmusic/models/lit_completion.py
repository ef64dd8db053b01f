"""LightningModule for melody completion: teacher-forced next-phrase training, ranked test.

At test time each query's candidates are scored in up to three ways (each reported by
llmusic.eval.ranking; `scoring` picks which):
- `cosine`, as the paper ranks: the model generates a continuation of the context (greedy), and
  each candidate scores the cosine similarity between its representation and the generation's;
- `likelihood`: the candidate's mean token log-likelihood under the decoder given the context;
- `pmi`: that likelihood minus the candidate's likelihood given an empty (all-PAD) context, i.e.
  how much the context raises it. Plain likelihood mostly ranks candidates by their own prior
  (long held notes and common pitches are likely after any context); pmi removes that prior.
The paper says only "cosine similarity"; greedy continuation and mean-pooled encoder states are
our reading of it, one of several (docs/melody.md). Beside the model's scorings every test reports
the non-learned baselines of llmusic.eval.melody_baselines on the same queries, and each scoring's
verdict against chance and the best of them (llmusic.eval.ranking.rankings_report).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from llmusic.eval.melody_baselines import baseline_scores
from llmusic.eval.ranking import rankings_report
from llmusic.midi.phrase import HOLD
from llmusic.models.melody_transformer import MelodyTransformer, MelodyTransformerConfig

SCORINGS = ("cosine", "likelihood", "pmi")


class LitCompletion(L.LightningModule):
    def __init__(self, net: dict, optimizer: Callable[..., torch.optim.Optimizer],
                 scoring: tuple[str, ...] = SCORINGS, framing: dict | None = None) -> None:
        """`net`: MelodyTransformerConfig fields; `optimizer`: params -> optimizer (kept out of the
        checkpoint's hyperparameters, see LitClassifier); `scoring`: a subset of SCORINGS;
        `framing`: the data's phrases (n_tokens, steps_per_quarter; from TrainTestData.model_kwargs),
        None for 4 bars of 32nd notes."""
        super().__init__()
        unknown = set(scoring) - set(SCORINGS)
        if unknown or not scoring:
            raise ValueError(f"scoring must be a non-empty subset of {SCORINGS}, got {scoring}")
        self.save_hyperparameters(logger=False, ignore=["optimizer"])
        self.optimizer = optimizer
        self.scoring = tuple(scoring)
        self.net = MelodyTransformer(MelodyTransformerConfig(**net))
        framing = framing or {"n_tokens": 128, "steps_per_quarter": 8}
        if framing["n_tokens"] > self.net.config.max_len:
            raise ValueError(f"phrases of {framing['n_tokens']} tokens do not fit the model's "
                             f"max_len={self.net.config.max_len}: set model.net.max_len={framing['n_tokens']}")
        self.steps_per_bar = 4 * int(framing["steps_per_quarter"])  # for the rhythm baseline
        self._test_outputs: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]] = []
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
        baselines = baseline_scores(context.cpu().numpy(), candidates.cpu().numpy(), HOLD, self.steps_per_bar)
        self._test_outputs.append(({k: v.float().cpu() for k, v in scores.items()},
                                   {k: torch.from_numpy(v) for k, v in baselines.items()}, true_index.cpu()))

    def on_test_epoch_start(self) -> None:
        self._test_outputs.clear()

    def on_test_epoch_end(self) -> None:
        outputs = self._test_outputs
        model, baselines = ({name: torch.cat([o[part][name] for o in outputs]) for name in outputs[0][part]}
                            for part in (0, 1))
        true_index = torch.cat([o[2] for o in outputs])
        self.test_results, ranks = rankings_report(model, baselines, true_index)
        # Per-query ranks of the true candidate, kept for paired comparisons (predictions.npz).
        self._items = {"query_id": np.arange(len(true_index))} | {f"rank__{name}": r for name, r in ranks.items()}
        for method in self.scoring:
            self.log(f"test/{method}_map", self.test_results[method]["map"]["value"])

    def save_artifacts(self, out_dir: Path) -> list[Path]:
        """The last test's per-query outcomes as predictions.npz: query_id and, per model scoring and
        baseline, the 1-based rank of the true candidate (`rank__<name>`; its reciprocal is the query's AP)."""
        path = Path(out_dir) / "predictions.npz"
        np.savez_compressed(path, **self._items)
        return [path]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(params=self.parameters())
