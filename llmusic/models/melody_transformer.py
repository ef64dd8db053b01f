"""Encoder-decoder transformer for melody completion: context phrase -> next phrase.

Tokens follow llmusic.midi.phrase (128 steps of 32nd notes over 4 bars; 0-127 onset, HOLD, REST,
PAD). The decoder gets one extra input token, BOS, so it can start a phrase; it never predicts it.
The paper gives 2 layers and 4 heads; widths are our choice (conf/model/melody_transformer.yaml).
"""

from __future__ import annotations

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
    dropout: float = 0.1


class MelodyTransformer(nn.Module):
    def __init__(self, config: MelodyTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.bos_id = config.vocab_size
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size + 1, c.d_model)  # + BOS
        self.position_embedding = nn.Embedding(c.max_len, c.d_model)
        # Pre-norm layers train stably at a plain Adam learning rate without warm-up.
        layer = dict(d_model=c.d_model, nhead=c.n_heads, dim_feedforward=c.d_ff, dropout=c.dropout,
                     batch_first=True, norm_first=True)
        enc_layer, dec_layer = nn.TransformerEncoderLayer(**layer), nn.TransformerDecoderLayer(**layer)
        self.encoder = nn.TransformerEncoder(enc_layer, c.n_layers, nn.LayerNorm(c.d_model), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, c.n_layers, nn.LayerNorm(c.d_model))
        self.lm_head = nn.Linear(c.d_model, c.vocab_size)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.token_embedding(tokens) + self.position_embedding(positions)  # (B, T, C)

    def _padding_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens == self.config.pad_id  # (B, T), True = ignore
        # An all-PAD row would make attention softmax over nothing (NaN): let it attend to its PADs.
        return mask & ~mask.all(dim=1, keepdim=True)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) tokens -> memory (B, T, C) and its padding mask (B, T)."""
        mask = self._padding_mask(tokens)
        return self.encoder(self._embed(tokens), src_key_padding_mask=mask), mask

    def decode(self, memory: torch.Tensor, memory_mask: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        """Causal decoder over (B, T') input tokens -> next-token logits (B, T', vocab_size)."""
        t = decoder_input.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(t, device=decoder_input.device)
        h = self.decoder(self._embed(decoder_input), memory, tgt_mask=causal, tgt_is_causal=True,
                         memory_key_padding_mask=memory_mask)
        return self.lm_head(h)

    def shift_right(self, target: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the decoder sees BOS then the target up to its last-but-one token."""
        bos = torch.full_like(target[:, :1], self.bos_id)
        return torch.cat([bos, target[:, :-1]], dim=1)  # (B, T)

    def forward(self, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, T) context, (B, T) target -> teacher-forced logits (B, T, vocab_size)."""
        memory, mask = self.encode(context)
        return self.decode(memory, mask, self.shift_right(target))

    def represent(self, tokens: torch.Tensor) -> torch.Tensor:
        """A phrase's vector: encoder states mean-pooled over its non-PAD steps. (B, T) -> (B, C)."""
        memory, mask = self.encode(tokens)
        keep = (~mask).unsqueeze(-1).to(memory.dtype)  # (B, T, 1)
        return (memory * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def mean_log_likelihood(self, memory: torch.Tensor, memory_mask: torch.Tensor,
                            target: torch.Tensor) -> torch.Tensor:
        """Mean log p(target token | context, earlier tokens) over non-PAD target steps -> (B,).

        A mean, not a sum, so a phrase with PAD steps (fewer scored tokens) gets no advantage.
        """
        logp = F.log_softmax(self.decode(memory, memory_mask, self.shift_right(target)), dim=-1)  # (B, T, V)
        token_logp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T)
        scored = (target != self.config.pad_id).to(token_logp.dtype)
        return (token_logp * scored).sum(1) / scored.sum(1).clamp(min=1.0)

    @torch.no_grad()
    def generate(self, context: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Greedy continuation of each context phrase: (B, T) -> (B, length)."""
        memory, mask = self.encode(context)
        tokens = torch.full_like(context[:, :1], self.bos_id)  # (B, 1)
        for _ in range(length or self.config.max_len):
            next_token = self.decode(memory, mask, tokens)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            tokens = torch.cat([tokens, next_token], dim=1)
        return tokens[:, 1:]
