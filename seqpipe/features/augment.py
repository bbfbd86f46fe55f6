"""Waveform augmentation for training: speed perturbation, additive noise, gain.

Speed perturbation (0.9/1.0/1.1, Ko et al. 2015) changes tempo and pitch together
by resampling, the classic trick for more speaker variety; noise at a random SNR and
a random gain stand in for other microphones and rooms. All of it is a no-op in eval
mode, so a bundle transcribes deterministically.
"""

from __future__ import annotations

import random

import torch
import torchaudio
from torch import nn


class WaveAugment(nn.Module):
    """``forward(waves[B,N], lengths[B]) -> (waves, lengths)``; identity in eval mode."""

    def __init__(
        self,
        speeds: tuple[float, ...] = (0.9, 1.0, 1.1),
        noise_snr_db: tuple[float, float] | None = (10.0, 40.0),
        gain_db: tuple[float, float] | None = (-10.0, 6.0),
        prob: float = 0.5,
        silence: int = 0,
    ):
        super().__init__()
        self.silence = silence  # up to this many samples of silence before and after each clip
        self.speeds = tuple(speeds)
        self.noise_snr_db = noise_snr_db
        self.gain_db = gain_db
        self.prob = prob

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.training:
            return waves, lengths
        speed = random.choice(self.speeds) if self.speeds else 1.0
        if speed != 1.0:  # one factor per batch: resampling is a single batched convolution
            new, old = 100, int(round(100 * speed))
            waves = torchaudio.functional.resample(waves, old, new)
            lengths = (lengths * new + old - 1) // old
        if self.silence > 0:
            waves, lengths = random_silence(waves, lengths, self.silence)
        B, N = waves.shape
        mask = (
            torch.arange(N, device=waves.device)[None, :] < lengths.to(waves.device)[:, None]
        ).to(waves.dtype)
        apply = lambda: (torch.rand(B, 1, device=waves.device) < self.prob).to(waves.dtype)  # noqa: E731
        if self.gain_db is not None:
            low, high = self.gain_db
            gain = 10 ** ((low + (high - low) * torch.rand(B, 1, device=waves.device)) / 20)
            waves = waves * (1 + apply() * (gain - 1))
        if self.noise_snr_db is not None:
            low, high = self.noise_snr_db
            snr = low + (high - low) * torch.rand(B, 1, device=waves.device)
            power = (waves**2 * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
            noise = torch.randn_like(waves) * (power / 10 ** (snr / 10)).sqrt()
            waves = waves + apply() * noise
        return waves * mask, lengths


def random_silence(
    waves: torch.Tensor, lengths: torch.Tensor, most: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each utterance right by 0..``most`` samples and add 0..``most`` after it."""
    B, N = waves.shape
    lengths = lengths.to(waves.device)
    lead = torch.randint(0, most + 1, (B,), device=waves.device)
    trail = torch.randint(0, most + 1, (B,), device=waves.device)
    index = torch.arange(N + 2 * most, device=waves.device)[None, :] - lead[:, None]
    inside = (index >= 0) & (index < lengths[:, None])
    out = waves.gather(1, index.clamp(0, N - 1)) * inside
    return out, lengths + lead + trail
