"""SpecAugment (Park et al. 2019): random time and frequency masks, training only.

Masking whole bands and stretches of frames makes the model rely on context rather
than on any one cue; it is the cheapest regulariser for small speech corpora. Masks
are drawn per utterance and never reach past an utterance's own length.
"""

from __future__ import annotations

import torch
from torch import nn


class SpecAugment(nn.Module):
    """``forward(feats[B,T,F], lengths[B]) -> feats``; identity in eval mode."""

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 10,
        time_masks: int = 2,
        time_width: int = 20,
        max_time_ratio: float = 0.2,
    ):
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.max_time_ratio = max_time_ratio

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return feats
        B, T, F = feats.shape
        device = feats.device
        keep = torch.ones(B, T, F, dtype=torch.bool, device=device)
        bins = torch.arange(F, device=device)[None, :]
        frames = torch.arange(T, device=device)[None, :]
        for _ in range(self.freq_masks):
            width = torch.randint(0, self.freq_width + 1, (B, 1), device=device)
            start = (torch.rand(B, 1, device=device) * (F - width + 1)).long()
            keep &= ~((bins >= start) & (bins < start + width))[:, None, :]
        lengths = lengths.to(device)
        for _ in range(self.time_masks):
            limit = (lengths * self.max_time_ratio).long().clamp(max=self.time_width)[:, None]
            width = (torch.rand(B, 1, device=device) * (limit + 1)).long()
            start = (torch.rand(B, 1, device=device) * (lengths[:, None] - width + 1)).long()
            keep &= ~((frames >= start) & (frames < start + width))[:, :, None]
        return feats * keep
