"""The paper's genre/style classifier: a small CNN over 4-channel 128x128 piano rolls.

The paper says "two convolutional layers followed by dense layers" and nothing more; every width,
kernel and pooling size below is our choice (documented in conf/model/cnn_paper.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CNNConfig:
    n_classes: int
    in_channels: int = 4  # melody, chords, bass, rhythm (llmusic.song.TRACKS)
    roll_size: int = 128  # pitch rows = time steps = 128
    channels: tuple[int, int] = (32, 64)
    kernel_size: int = 5
    pool: int = 4  # 128 -> 32 -> 8: keeps the first dense layer small (64*8*8 = 4096 inputs)
    hidden: tuple[int, ...] = (256,)
    dropout: float = 0.5


class CNN(nn.Module):
    """Piano roll (B, 4, 128, 128) -> class logits (B, n_classes)."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        pad = config.kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, config.kernel_size, padding=pad),  # (B, c1, 128, 128)
            nn.ReLU(),
            nn.MaxPool2d(config.pool),  # (B, c1, 32, 32)
            nn.Conv2d(c1, c2, config.kernel_size, padding=pad),  # (B, c2, 32, 32)
            nn.ReLU(),
            nn.MaxPool2d(config.pool),  # (B, c2, 8, 8)
            nn.Flatten(),  # (B, c2 * 64)
        )
        side = config.roll_size // config.pool // config.pool
        if side < 1:
            raise ValueError(f"pool {config.pool} twice leaves nothing of a {config.roll_size} roll")
        dense: list[nn.Module] = []
        width = c2 * side * side
        for h in config.hidden:
            dense += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(config.dropout)]
            width = h
        dense.append(nn.Linear(width, config.n_classes))
        self.head = nn.Sequential(*dense)

    @classmethod
    def build(cls, n_classes: int, **fields) -> CNN:
        """The network LitClassifier builds for `n_classes` from its config fields (conf/model/)."""
        return cls(CNNConfig(n_classes=n_classes, **fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, n_classes)
