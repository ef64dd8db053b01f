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
from functools import partial
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
                 scoring: tuple[str, ...] = SCORINGS, score_memory_mb: int = 64, framing: dict | None = None) -> None:
        """`net`: MelodyTransformerConfig fields; `optimizer`: params -> optimizer (kept out of the
        checkpoint's hyperparameters, see LitClassifier); `scoring`: a subset of SCORINGS;
        `score_memory_mb`: about how much memory one scoring pass may take (it sets how many
        sequences are decoded at once, not the scores); `framing`: the data's phrases (n_tokens,
        steps_per_quarter; from TrainTestData.model_kwargs), None for 4 bars of 32nd notes."""
        super().__init__()
        unknown = set(scoring) - set(SCORINGS)
        if unknown or not scoring:
            raise ValueError(f"scoring must be a non-empty subset of {SCORINGS}, got {scoring}")
        self.save_hyperparameters(logger=False, ignore=["optimizer"])
        self.optimizer = optimizer
        self.scoring, self.score_memory_mb = tuple(scoring), score_memory_mb
        self.net = MelodyTransformer(MelodyTransformerConfig(**net))
        framing = framing or {"n_tokens": 128, "steps_per_quarter": 8}
        if framing["n_tokens"] > self.net.config.max_len:
            raise ValueError(f"phrases of {framing['n_tokens']} tokens do not fit the model's "
                             f"max_len={self.net.config.max_len}: set model.net.max_len={framing['n_tokens']}")
        self.steps_per_bar = 4 * int(framing["steps_per_quarter"])  # for the rhythm baseline
        self._test_batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
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

    def _fits(self, bytes_each: int, share: float) -> int:
        """How many items of `bytes_each` bytes fit in `share` of `score_memory_mb` (at least one)."""
        return max(1, int(self.score_memory_mb * 2**20 * share) // bytes_each)

    def _sequence_bytes(self) -> int:
        """What one sequence of a pass keeps alive: about 8 d_model + 2 d_ff + 2 vocab_size float32
        values per token (activations, the MLP's hidden units, logits and their log-softmax)."""
        c = self.net.config
        return 4 * c.max_len * (8 * c.d_model + 2 * c.d_ff + 2 * c.vocab_size)

    def _in_passes(self, fn: Callable[[torch.Tensor], torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
        """fn over (B, T) tokens, as many rows per pass as half the budget holds."""
        step = self._fits(self._sequence_bytes(), 1 / 2)
        return torch.cat([fn(tokens[i:i + step]) for i in range(0, len(tokens), step)])

    def _likelihood(self, context: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(Q, T) contexts, (Q, N, T) candidates -> (Q, N) mean log-likelihoods.

        Each distinct (context, candidate) pair is decoded once, a context's candidates together
        (one pass as long as the budget allows). The budget is shared by a block of distinct
        candidates' `decoder_states` (a quarter), a block of distinct contexts' decoder keys and
        values (a quarter) and the pass of the moment (half).
        """
        net, c, (q, n, t) = self.net, self.net.config, candidates.shape
        contexts, context_of = torch.unique(context, dim=0, return_inverse=True)  # (Uc, T), (Q,)
        phrases, phrase_of = torch.unique(candidates.reshape(q * n, t), dim=0, return_inverse=True)  # (Up, T)
        pairs, pair_of = torch.unique(context_of.repeat_interleave(n) * len(phrases) + phrase_of,
                                      return_inverse=True)  # (P,) sorted by context, (Q * N,)
        pair_context, pair_phrase = pairs // len(phrases), pairs % len(phrases)
        kv_bytes = 4 * c.n_layers * 2 * c.max_len * c.d_model
        phrase_block = self._fits(4 * c.max_len * c.d_model, 1 / 4)
        context_block = self._fits(kv_bytes, 1 / 4)
        per_pass = self._fits(self._sequence_bytes(), 1 / 2)
        scores = torch.empty(len(pairs), dtype=self.dtype, device=pairs.device)
        for p in range(0, len(phrases), phrase_block):
            states = self._in_passes(net.decoder_states, net.shift_right(phrases[p:p + phrase_block]))  # (p', T, C)
            for x in range(0, len(contexts), context_block):
                block = torch.nonzero((pair_phrase >= p) & (pair_phrase < p + phrase_block) &
                                      (pair_context >= x) & (pair_context < x + context_block)).squeeze(1)
                if not len(block):
                    continue
                kv, attend = net.memory_keys_values(*net.encode(contexts[x:x + context_block]))  # (x', H, S, D)
                _, run_lengths = torch.unique_consecutive(pair_context[block], return_counts=True)
                for run in block.split(run_lengths.tolist()):  # the pairs of one context
                    i = int(pair_context[run[0]]) - x
                    for rows in run.split(per_pass):
                        scores[rows] = net.target_log_likelihood(
                            states[pair_phrase[rows] - p], [[m[i:i + 1] for m in layer] for layer in kv],
                            attend[i:i + 1], phrases[pair_phrase[rows]])
        return scores[pair_of].view(q, n)

    def _continuation(self, context: torch.Tensor, length: int) -> torch.Tensor:
        """(B, T) contexts -> (B, C): the representation of each one's greedy continuation."""
        return self.net.represent(self.net.generate(context, length))

    @torch.no_grad()
    def score_candidates(self, context: torch.Tensor, candidates: torch.Tensor) -> dict[str, torch.Tensor]:
        """(Q, T) contexts, (Q, N, T) candidates -> {scoring: (Q, N) scores} for self.scoring.

        Takes a whole test set, cut into passes that fit `score_memory_mb`. Queries draw their
        candidates from one pool of test phrases (POP909's 616 x 50 candidates are 504 phrases,
        its 616 contexts 390), so what depends on a phrase alone (its representation, its
        likelihood after an empty context, its greedy continuation) is computed once per
        distinct phrase, and each distinct (context, candidate) pair is decoded once."""
        q, n, t = candidates.shape
        phrases, which = torch.unique(candidates.reshape(q * n, t), dim=0, return_inverse=True)  # (U, T), (Q * N,)
        which = which.view(q, n)  # (Q, N)
        scores = {}
        if "cosine" in self.scoring:
            contexts, context_of = torch.unique(context, dim=0, return_inverse=True)  # (Uc, T), (Q,)
            generated = self._in_passes(partial(self._continuation, length=t), contexts)[context_of]  # (Q, C)
            candidate = self._in_passes(self.net.represent, phrases)[which]  # (Q, N, C)
            scores["cosine"] = F.cosine_similarity(generated.unsqueeze(1), candidate, dim=-1)
        if {"likelihood", "pmi"} & set(self.scoring):
            scores["likelihood"] = self._likelihood(context, candidates)
        if "pmi" in self.scoring:
            empty = torch.full_like(context[:1], self.net.config.pad_id)  # (1, T): one empty context
            prior = self._likelihood(empty, phrases.unsqueeze(0))[0]  # (U,)
            scores["pmi"] = scores["likelihood"] - prior[which]
        return {name: scores[name] for name in self.scoring}

    def test_step(self, batch, batch_idx: int) -> None:
        self._test_batches.append(batch)  # scored together at the end of the epoch

    def on_test_epoch_start(self) -> None:
        self._test_batches.clear()

    def on_test_epoch_end(self) -> None:
        context, candidates, true_index = (torch.cat(parts) for parts in zip(*self._test_batches))
        self._test_batches.clear()
        model = {name: s.float().cpu() for name, s in self.score_candidates(context, candidates).items()}
        baselines = {name: torch.from_numpy(s) for name, s in baseline_scores(
            context.cpu().numpy(), candidates.cpu().numpy(), HOLD, self.steps_per_bar).items()}
        self.test_results, ranks = rankings_report(model, baselines, true_index.cpu())
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
