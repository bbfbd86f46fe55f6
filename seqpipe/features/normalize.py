"""Mean/variance normalisation of feature frames: per utterance, global, or none.

``utterance`` removes channel and loudness differences between recordings (best for
new microphones). ``global`` subtracts the training set's mean and divides by its
standard deviation: statistics are accumulated while the module is in training mode
and frozen in eval mode; they are buffers, so they travel inside the bundle.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Normalize = Literal["utterance", "global", "none"]


class FeatureNorm(nn.Module):
    """``forward(feats[B,T,F], mask[B,T]) -> feats``; padded frames come back as zeros."""

    def __init__(self, size: int, mode: Normalize = "utterance"):
        super().__init__()
        self.mode = mode
        if mode == "global":
            self.register_buffer("count", torch.zeros((), dtype=torch.float64))
            self.register_buffer("total", torch.zeros(size, dtype=torch.float64))
            self.register_buffer("total_sq", torch.zeros(size, dtype=torch.float64))

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[..., None].to(feats.dtype)
        if self.mode == "utterance":
            count = m.sum(1, keepdim=True).clamp(min=1)
            mean = (feats * m).sum(1, keepdim=True) / count
            var = ((feats - mean) ** 2 * m).sum(1, keepdim=True) / count
            feats = (feats - mean) / (var + 1e-5).sqrt()
        elif self.mode == "global":
            if self.training:  # cumulative statistics over every training frame seen
                self.count += m.sum().double()
                self.total += (feats * m).sum((0, 1)).double()
                self.total_sq += (feats**2 * m).sum((0, 1)).double()
            count = self.count.clamp(min=1)
            mean = self.total / count
            std = (self.total_sq / count - mean**2).clamp(min=1e-5).sqrt()
            if self.count > 0:
                feats = (feats - mean.to(feats.dtype)) / std.to(feats.dtype)
        return feats * m
