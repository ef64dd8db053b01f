"""Encoder-decoder transformer for melody completion: context phrase -> next phrase.

Tokens follow llmusic.midi.phrase (128 steps of 32nd notes over 4 bars; 0-127 onset, HOLD, REST,
PAD). The decoder gets one extra input token, BOS, so it can start a phrase; it never predicts it.
The paper gives 2 layers and 4 heads; widths are our choice (conf/model/melody_transformer.yaml).
Pre-norm layers, as torch.nn.TransformerEncoderLayer / DecoderLayer with norm_first=True, under
their parameter names: checkpoints of the earlier nn.Transformer version load unchanged.

Ranking scores many (context, candidate) pairs, so decoding comes in parts that can be computed
once and shared: `memory_keys_values` per context, `decoder_states` (the first layer's
self-attention, which sees the candidate alone) per candidate, and `decode_states` per pair, the
candidates of one context decoded together against its keys and values. Greedy continuation
decodes one token a step against a key/value cache.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmusic.midi.phrase import PAD, VOCAB_SIZE


@dataclass
class MelodyTransformerConfig:
    vocab_size: int = VOCAB_SIZE
    pad_id: int = PAD
    max_len: int = 128  # tokens per phrase
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 2  # encoder layers = decoder layers
    d_ff: int = 1024
    dropout: float = 0.1  # of each sub-layer's output and of the MLP's hidden units
    attention_dropout: float = 0.0  # of attention weights (nn.Transformer's `dropout` covered them too)


class Attention(nn.Module):
    """Multi-head attention; parameters named as nn.MultiheadAttention's (q, k, v rows in_proj)."""

    def __init__(self, c: MelodyTransformerConfig) -> None:
        super().__init__()
        self.n_heads, self.dropout = c.n_heads, c.attention_dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * c.d_model, c.d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * c.d_model))
        self.out_proj = nn.Linear(c.d_model, c.d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def project(self, x: torch.Tensor, part: slice) -> list[torch.Tensor]:
        """(..., T, C) -> the q / k / v rows of `part` (slice(0, 1) = q, slice(1, 3) = k and v),
        each split into heads: (..., H, T, D)."""
        c = self.out_proj.in_features
        rows = slice(part.start * c, part.stop * c)
        y = F.linear(x, self.in_proj_weight[rows], self.in_proj_bias[rows])  # (..., T, k * C)
        y = y.unflatten(-1, (-1, self.n_heads, c // self.n_heads)).movedim(-2, -4)  # (..., H, T, k, D)
        return list(y.unbind(-2))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
               causal: bool = False) -> torch.Tensor:
        """(..., H, T, D) queries over (..., H, S, D) keys -> (..., T, C). `mask`: True = may attend."""
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(y.movedim(-3, -2).flatten(-2))  # (..., T, C)


class Layer(nn.Module):
    """What encoder and decoder layers share: the position-wise MLP (linear1, linear2 as in
    nn.Transformer*Layer) and dropout. Subclasses make their attention first, then the MLP: the
    order nn.Transformer*Layer draws its initial weights in, so a seed gives the same model."""

    def add_feed_forward(self, c: MelodyTransformerConfig) -> None:
        self.linear1, self.linear2 = nn.Linear(c.d_model, c.d_ff), nn.Linear(c.d_ff, c.d_model)
        self.drop = nn.Dropout(c.dropout)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.drop(F.relu(self.linear1(x))))


class EncoderLayer(Layer):
    def __init__(self, c: MelodyTransformerConfig) -> None:
        super().__init__()
        self.self_attn = Attention(c)
        self.add_feed_forward(c)
        self.norm1, self.norm2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, C), (B, 1, 1, T) True = may attend (None: everything) -> (B, T, C)."""
        a = self.self_attn
        x = x + self.drop(a.attend(*a.project(self.norm1(x), slice(0, 3)), mask))
        return x + self.drop(self.feed_forward(self.norm2(x)))


class DecoderLayer(Layer):
    def __init__(self, c: MelodyTransformerConfig) -> None:
        super().__init__()
        self.self_attn, self.multihead_attn = Attention(c), Attention(c)
        self.add_feed_forward(c)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(c.d_model) for _ in range(3))

    def self_block(self, x: torch.Tensor, cache: list[torch.Tensor] | None = None, step: int = 0) -> torch.Tensor:
        """(B, T, C) -> x plus its causal self-attention. With a cache ((B, H, max_len, D) keys and
        values): x holds step `step` alone (T = 1) and attends to the steps before it through it."""
        q, k, v = self.self_attn.project(self.norm1(x), slice(0, 3))  # (B, H, T, D)
        if cache is not None:
            cache[0][:, :, step:step + 1], cache[1][:, :, step:step + 1] = k, v
            k, v = cache[0][:, :, :step + 1], cache[1][:, :, :step + 1]
        return x + self.drop(self.self_attn.attend(q, k, v, causal=cache is None))

    def cross_block(self, x: torch.Tensor, memory_kv: list[torch.Tensor], attend: torch.Tensor) -> torch.Tensor:
        """(B * N, T, C) -> x plus its attention to the (B, H, S, D) memory keys and values
        (`attend` (B, 1, 1, S), True = may attend), then plus the MLP. Rows b * N to b * N + N - 1
        attend to memory b: N sequences of one context are one query sequence of N * T steps."""
        b, (bn, t, c) = len(memory_kv[0]), x.shape
        q = self.multihead_attn.project(self.norm2(x).view(b, bn // b * t, c), slice(0, 1))[0]  # (B, H, N * T, D)
        x = x + self.drop(self.multihead_attn.attend(q, *memory_kv, attend).view(bn, t, c))
        return x + self.drop(self.feed_forward(self.norm3(x)))

    def forward(self, x: torch.Tensor, memory_kv: list[torch.Tensor], attend: torch.Tensor,
                cache: list[torch.Tensor] | None = None, step: int = 0) -> torch.Tensor:
        return self.cross_block(self.self_block(x, cache, step), memory_kv, attend)


class Stack(nn.Module):
    """Layers and a final norm, as nn.TransformerEncoder / Decoder name them; like them, every
    layer starts as a copy of one (so a seed gives the model nn.Transformer's layers gave)."""

    def __init__(self, layer: type[nn.Module], c: MelodyTransformerConfig) -> None:
        super().__init__()
        first = layer(c)
        self.layers = nn.ModuleList(copy.deepcopy(first) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model)


class MelodyTransformer(nn.Module):
    def __init__(self, config: MelodyTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.bos_id = config.vocab_size
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size + 1, c.d_model)  # + BOS
        self.position_embedding = nn.Embedding(c.max_len, c.d_model)
        # Pre-norm layers train stably at a plain Adam learning rate without warm-up.
        self.encoder, self.decoder = Stack(EncoderLayer, c), Stack(DecoderLayer, c)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size)

    def _embed(self, tokens: torch.Tensor, first: int = 0) -> torch.Tensor:
        positions = torch.arange(first, first + tokens.shape[-1], device=tokens.device)
        return self.token_embedding(tokens) + self.position_embedding(positions)  # (..., T, C)

    def _padding_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens == self.config.pad_id  # (B, T), True = ignore
        # An all-PAD row would make attention softmax over nothing (NaN): let it attend to its PADs.
        return mask & ~mask.all(dim=1, keepdim=True)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) tokens -> memory (B, T, C) and its padding mask (B, T), True = ignore."""
        mask = self._padding_mask(tokens)
        x, attend = self._embed(tokens), ~mask[:, None, None, :] if mask.any() else None  # (B, T, C), (B, 1, 1, T)
        for layer in self.encoder.layers:
            x = layer(x, attend)
        return self.encoder.norm(x), mask

    def memory_keys_values(self, memory: torch.Tensor, memory_mask: torch.Tensor) -> tuple[list, torch.Tensor]:
        """Each decoder layer's cross-attention keys and values of (B, S, C) memory, [(B, H, S, D)
        keys, values] per layer, and the (B, 1, 1, S) mask of what may be attended."""
        kv = [layer.multihead_attn.project(memory, slice(1, 3)) for layer in self.decoder.layers]
        return kv, ~memory_mask[:, None, None, :]

    def decoder_states(self, decoder_input: torch.Tensor) -> torch.Tensor:
        """(B, T) decoder input -> (B, T, C): its embedding through the first layer's
        self-attention, the part of decoding that does not depend on the context."""
        return self.decoder.layers[0].self_block(self._embed(decoder_input))

    def decode_states(self, states: torch.Tensor, memory_kv: list, attend: torch.Tensor) -> torch.Tensor:
        """`decoder_states` (B * N, T, C) through the rest of the decoder, N rows per context of
        `memory_keys_values` -> next-token logits (B * N, T, vocab_size)."""
        first, *rest = self.decoder.layers
        x = first.cross_block(states, memory_kv[0], attend)
        for layer, layer_kv in zip(rest, memory_kv[1:]):
            x = layer(x, layer_kv, attend)
        return self.lm_head(self.decoder.norm(x))

    def decode(self, memory: torch.Tensor, memory_mask: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        """Causal decoder over (B, T') input tokens -> next-token logits (B, T', vocab_size)."""
        return self.decode_states(self.decoder_states(decoder_input), *self.memory_keys_values(memory, memory_mask))

    def shift_right(self, target: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the decoder sees BOS then the target up to its last-but-one token."""
        bos = torch.full_like(target[..., :1], self.bos_id)
        return torch.cat([bos, target[..., :-1]], dim=-1)  # (..., T)

    def forward(self, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, T) context, (B, T) target -> teacher-forced logits (B, T, vocab_size)."""
        memory, mask = self.encode(context)
        return self.decode(memory, mask, self.shift_right(target))

    def represent(self, tokens: torch.Tensor) -> torch.Tensor:
        """A phrase's vector: encoder states mean-pooled over its non-PAD steps. (B, T) -> (B, C)."""
        memory, mask = self.encode(tokens)
        keep = (~mask).unsqueeze(-1).to(memory.dtype)  # (B, T, 1)
        return (memory * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def target_log_likelihood(self, states: torch.Tensor, memory_kv: list, attend: torch.Tensor,
                              target: torch.Tensor) -> torch.Tensor:
        """Mean log p(target token | context, earlier tokens) over the non-PAD steps of (B * N, T)
        targets, N per context, given their `decoder_states` (of `shift_right(target)`) and their
        contexts' `memory_keys_values` -> (B * N,).

        A mean, not a sum, so a phrase with PAD steps (fewer scored tokens) gets no advantage.
        """
        scored = target != self.config.pad_id
        # The decoder is causal and steps after the last scored one are not scored: leave them out.
        length = int(scored.any(0).nonzero().max()) + 1 if scored.any() else 1
        target, scored = target[:, :length], scored[:, :length].to(states.dtype)
        logp = F.log_softmax(self.decode_states(states[:, :length], memory_kv, attend), dim=-1)  # (B, T, V)
        token_logp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T)
        return (token_logp * scored).sum(-1) / scored.sum(-1).clamp(min=1.0)

    @torch.no_grad()
    def generate(self, context: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Greedy continuation of each context phrase: (B, T) -> (B, length)."""
        length = length or self.config.max_len
        kv, attend = self.memory_keys_values(*self.encode(context))
        b, c = len(context), self.config
        caches = [[kv[0][0].new_empty((b, c.n_heads, length, c.d_model // c.n_heads)) for _ in range(2)]
                  for _ in self.decoder.layers]  # per layer: the keys and values of the steps so far
        tokens = torch.full((b, length + 1), self.bos_id, dtype=context.dtype, device=context.device)
        for step in range(length):
            x = self._embed(tokens[:, step:step + 1], first=step)  # (B, 1, C)
            for layer, layer_kv, cache in zip(self.decoder.layers, kv, caches):
                x = layer(x, layer_kv, attend, cache, step)
            tokens[:, step + 1] = self.lm_head(self.decoder.norm(x))[:, 0].argmax(-1)
        return tokens[:, 1:]
