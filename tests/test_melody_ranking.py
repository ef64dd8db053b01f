"""Fast melody ranking scores exactly what the earlier code scored.

The reference below is the melody transformer and `LitCompletion.score_candidates` as they were
before the fast ranking (commit 8b03ced): torch.nn.Transformer layers, no key/value cache, one
test batch scored at a time. Same weights (its state dict loads into today's model unchanged),
same real POP909 queries: the scores must agree to 1e-6 (float64: the same arithmetic up to
rounding; float32: up to float32 rounding of a differently ordered sum).
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmusic.midi.phrase import PAD, VOCAB_SIZE
from llmusic.models.lit_completion import LitCompletion
from llmusic.models.melody_transformer import MelodyTransformerConfig
from tests.helpers import build_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(d_model=32, n_heads=4, n_layers=2, d_ff=64, dropout=0.0)


class ReferenceTransformer(nn.Module):
    """llmusic.models.melody_transformer at commit 8b03ced, the methods ranking used."""

    def __init__(self, c: MelodyTransformerConfig) -> None:
        super().__init__()
        self.config, self.bos_id = c, c.vocab_size
        self.token_embedding = nn.Embedding(c.vocab_size + 1, c.d_model)
        self.position_embedding = nn.Embedding(c.max_len, c.d_model)
        layer = dict(d_model=c.d_model, nhead=c.n_heads, dim_feedforward=c.d_ff, dropout=c.dropout,
                     batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), c.n_layers, nn.LayerNorm(c.d_model),
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), c.n_layers, nn.LayerNorm(c.d_model))
        self.lm_head = nn.Linear(c.d_model, c.vocab_size)

    def _embed(self, tokens):
        return self.token_embedding(tokens) + self.position_embedding(torch.arange(tokens.shape[1]))

    def encode(self, tokens):
        mask = tokens == self.config.pad_id
        mask = mask & ~mask.all(dim=1, keepdim=True)
        return self.encoder(self._embed(tokens), src_key_padding_mask=mask), mask

    def decode(self, memory, memory_mask, decoder_input):
        causal = nn.Transformer.generate_square_subsequent_mask(decoder_input.shape[1])
        return self.lm_head(self.decoder(self._embed(decoder_input), memory, tgt_mask=causal, tgt_is_causal=True,
                                         memory_key_padding_mask=memory_mask))

    def shift_right(self, target):
        return torch.cat([torch.full_like(target[:, :1], self.bos_id), target[:, :-1]], dim=1)

    def represent(self, tokens):
        memory, mask = self.encode(tokens)
        keep = (~mask).unsqueeze(-1).to(memory.dtype)
        return (memory * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def mean_log_likelihood(self, memory, memory_mask, target):
        logp = F.log_softmax(self.decode(memory, memory_mask, self.shift_right(target)), dim=-1)
        token_logp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        scored = (target != self.config.pad_id).to(token_logp.dtype)
        return (token_logp * scored).sum(1) / scored.sum(1).clamp(min=1.0)

    def generate(self, context, length):
        memory, mask = self.encode(context)
        tokens = torch.full_like(context[:, :1], self.bos_id)
        for _ in range(length):
            tokens = torch.cat([tokens, self.decode(memory, mask, tokens)[:, -1].argmax(-1, keepdim=True)], dim=1)
        return tokens[:, 1:]

    def likelihood(self, context, flat):
        n = len(flat) // len(context)
        memory, mask = self.encode(context)
        return self.mean_log_likelihood(memory.repeat_interleave(n, 0), mask.repeat_interleave(n, 0), flat)

    def score_candidates(self, context, candidates):
        """LitCompletion.score_candidates at commit 8b03ced, for one test batch."""
        b, n, t = candidates.shape
        flat = candidates.reshape(b * n, t)
        distinct, which = torch.unique(flat, dim=0, return_inverse=True)
        generated = self.represent(self.generate(context, t))
        candidate = self.represent(distinct)[which].view(b, n, -1)
        likelihood = self.likelihood(context, flat).view(b, n)
        prior = self.likelihood(torch.full_like(context[:1], self.config.pad_id), distinct)[which].view(b, n)
        return {"cosine": F.cosine_similarity(generated.unsqueeze(1), candidate, dim=-1),
                "likelihood": likelihood, "pmi": likelihood - prior}


@pytest.fixture(scope="module")
def pop909_queries(shared_data):
    """The demo's first 12 POP909 queries, with two edge cases: an empty (all-PAD) context and a
    candidate cut short (a PAD tail); the first query repeated, so contexts and pairs repeat."""
    queries = build_dataset("melody_pop909")
    # Stored as bytes (llmusic.data.phrases.TOKEN_DTYPE); items are int64 tokens, as the data set yields them.
    context, candidates = (torch.as_tensor(a, dtype=torch.long) for a in (queries.context[:12], queries.candidates[:12]))
    context[5], candidates[3, 7, 90:] = PAD, PAD
    context[11], candidates[11] = context[0], candidates[0]
    return context, candidates


def _reference_and_module(dtype, **module_kwargs):
    torch.manual_seed(0)
    reference = ReferenceTransformer(MelodyTransformerConfig(**TINY)).to(dtype).eval()
    module = LitCompletion(TINY, partial(torch.optim.Adam), **module_kwargs).to(dtype).eval()
    module.net.load_state_dict(reference.state_dict(), strict=True)  # earlier checkpoints load as they are
    return reference, module


@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-9), (torch.float32, 1e-6)])
def test_scores_equal_the_reference_on_pop909_queries(pop909_queries, dtype, tolerance):
    context, candidates = pop909_queries
    reference, module = _reference_and_module(dtype, score_memory_mb=4)  # many small passes
    with torch.no_grad():
        batches = [reference.score_candidates(context[i:i + 8], candidates[i:i + 8]) for i in range(0, 12, 8)]
        want = {name: torch.cat([b[name] for b in batches]) for name in batches[0]}
        got = module.score_candidates(context, candidates)  # the whole set at once
    assert set(got) == set(want) == {"cosine", "likelihood", "pmi"}
    for name in want:
        # Likelihoods are about -5: float32 carries them to about 5e-7, a difference of two to 1e-6.
        scale = 2 * want["likelihood"].abs().max().item() if name == "pmi" and dtype == torch.float32 else 1.0
        assert got[name].shape == (12, 50) and torch.isfinite(got[name]).all()
        assert (got[name] - want[name]).abs().max().item() <= tolerance * scale, name
    assert torch.equal(got["likelihood"][11], got["likelihood"][0])  # a repeated pair: one score


def test_greedy_continuation_with_a_cache_equals_decoding_the_whole_prefix(pop909_queries):
    context = pop909_queries[0][:8]
    reference, module = _reference_and_module(torch.float32)
    with torch.no_grad():
        assert torch.equal(module.net.generate(context, 128), reference.generate(context, 128))
        short = module.net.generate(context, 6)
    assert torch.equal(short, reference.generate(context, 6)) and (short < VOCAB_SIZE).all()


def test_the_memory_budget_changes_the_passes_not_the_scores(pop909_queries):
    context, candidates = (x[:6] for x in pop909_queries)
    _, module = _reference_and_module(torch.float64, score_memory_mb=2)  # blocks of 3 contexts, 2 pairs a pass
    with torch.no_grad():
        small = module.score_candidates(context, candidates)
        module.score_memory_mb = 4096  # one pass
        whole = module.score_candidates(context, candidates)
    for name in whole:
        assert torch.allclose(small[name], whole[name], rtol=0, atol=1e-12), name


def test_teacher_forced_logits_equal_the_reference():
    reference, module = _reference_and_module(torch.float64)
    gen = torch.Generator().manual_seed(1)
    context, target = (torch.randint(0, VOCAB_SIZE - 1, (3, 128), generator=gen) for _ in range(2))
    context[1, 64:], target[2, 100:] = PAD, PAD
    with torch.no_grad():
        want = reference.decode(*reference.encode(context), reference.shift_right(target))
        assert torch.allclose(module.net(context, target), want, rtol=0, atol=1e-10)
