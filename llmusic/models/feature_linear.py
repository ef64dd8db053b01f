"""The feature baseline: logistic regression on a window's note statistics (llmusic.midi.features:
pitch-class shares, intervals, register, density, polyphony, durations, onset grid, velocity,
drum classes). Trained and tested as the CNN is (LitClassifier: the same windows, loss, optimiser
loop, song-level mean of window logits), it says how much of a score note statistics alone explain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from llmusic.midi.features import FEATURE_NAMES


@dataclass
class FeatureLinearConfig:
    n_classes: int
    n_features: int = len(FEATURE_NAMES)


class FeatureLinear(nn.Module):
    """Features (B, F) -> class logits (B, n_classes): standardised, then one linear layer."""

    def __init__(self, config: FeatureLinearConfig) -> None:
        super().__init__()
        self.config = config
        # Standardisation learnt from the training batches (running mean and variance, no affine
        # part), so features on different scales (shares, pitches, notes per bar) weigh alike.
        self.standardise = nn.BatchNorm1d(config.n_features, affine=False)
        self.linear = nn.Linear(config.n_features, config.n_classes)

    @classmethod
    def build(cls, n_classes: int, **fields) -> FeatureLinear:
        return cls(FeatureLinearConfig(n_classes=n_classes, **fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nan_to_num(x, nan=0.0)  # undefined features (a silent role's register) read as 0
        return self.linear(self.standardise(x))  # (B, n_classes)
