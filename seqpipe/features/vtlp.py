"""Vocal tract length perturbation (Jaitly & Hinton 2013), training only.

A longer or shorter vocal tract scales a speaker's formants; warping each utterance's
frequency axis by a random factor lets a model that heard a few speakers (or a few
synthetic voices) generalise to new ones. Unlike speed perturbation it leaves tempo
and pitch alone, and it draws a factor per utterance rather than per batch. The warp
is piecewise linear so the band edge stays put: ``f -> f * alpha`` up to a cut-off,
then a straight line to the Nyquist frequency.
"""

from __future__ import annotations

import torch
from torch import nn


class VocalTractWarp(nn.Module):
    """``forward(power[B, F, T]) -> power``: each utterance's spectrum warped; eval: identity."""

    def __init__(self, max_warp: float = 0.1, cutoff: float = 0.8):
        super().__init__()
        if not 0.0 <= max_warp < 1.0:
            raise ValueError(f"max_warp must be in [0, 1), got {max_warp}")
        self.max_warp = max_warp
        self.cutoff = cutoff  # fraction of the band that is scaled; the rest keeps the edge fixed

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        if not self.training or self.max_warp == 0.0:
            return power
        alpha = 1.0 + self.max_warp * (2 * torch.rand(power.shape[0], 1, device=power.device) - 1)
        return warp_spectrum(power, alpha, self.cutoff)


def warp_spectrum(power: torch.Tensor, alpha: torch.Tensor, cutoff: float = 0.8) -> torch.Tensor:
    """``power`` [B, F, T] with each utterance's frequency axis scaled by ``alpha`` [B, 1]."""
    F = power.shape[1]
    source = source_bins(alpha, F, cutoff)  # [B, F]: where each output bin reads from
    low = source.floor().long().clamp(max=F - 1)
    high = (low + 1).clamp(max=F - 1)
    frac = (source - low).unsqueeze(-1)
    gather = lambda idx: power.gather(1, idx.unsqueeze(-1).expand_as(power))  # noqa: E731
    return gather(low) * (1 - frac) + gather(high) * frac


def source_bins(alpha: torch.Tensor, bins: int, cutoff: float = 0.8) -> torch.Tensor:
    """For warp factors ``alpha`` [B, 1], the fractional input bin of each output bin [B, F].

    The inverse of the warp: output frequency ``f`` reads input ``f / alpha`` below the
    cut-off ``c = cutoff * top * min(1, alpha)`` and a linear ramp from ``c / alpha`` to
    ``top`` above it, so bin 0 and the top bin map to themselves.
    """
    top = float(bins - 1)
    f = torch.arange(bins, device=alpha.device, dtype=alpha.dtype)[None, :]
    c = cutoff * top * alpha.clamp(max=1.0)
    ramp = c / alpha + (f - c) * (top - c / alpha) / (top - c)
    return torch.where(f <= c, f / alpha, ramp)
