"""Waveform augmentation for training: speed perturbation, room reverberation, noise, gain.

Speed perturbation (0.9/1.0/1.1, Ko et al. 2015) changes tempo and pitch together
by resampling, the classic trick for more speaker variety; a simulated room (``reverb``)
stands in for far microphones, and noise at a random SNR and a random gain for other
microphones. All of it is a no-op in eval mode, so a bundle transcribes deterministically.
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
        reverb: float = 0.0,
        sample_rate: int = 16000,
    ):
        super().__init__()
        self.silence = silence  # up to this many samples of silence before and after each clip
        self.reverb = Reverb(sample_rate, reverb) if reverb > 0 else None
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
        if self.reverb is not None:
            waves = self.reverb(waves)
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


class Reverb(nn.Module):
    """``forward(waves[B,N]) -> waves[B,N]``: a share ``prob`` of utterances in a simulated room.

    Each chosen utterance is convolved with a synthetic room impulse response: the direct
    path, then a diffuse tail of Gaussian noise whose energy falls 60 dB in ``rt60``
    seconds (the statistical model of late reverberation, Polack 1988), at a random
    direct-to-reverberant ratio. The result keeps the dry signal's loudness.
    """

    def __init__(
        self,
        sample_rate: int,
        prob: float,
        rt60: tuple[float, float] = (0.2, 0.8),
        drr_db: tuple[float, float] = (-3.0, 12.0),
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.prob = prob
        self.rt60 = rt60
        self.drr_db = drr_db

    def impulse_responses(self, count: int, device: torch.device) -> torch.Tensor:
        """[count, L] responses, direct path at sample 0, L covering the longest rt60."""
        length = int(self.rt60[1] * self.sample_rate)
        uniform = lambda low, high: low + (high - low) * torch.rand(count, 1, device=device)  # noqa: E731
        t = torch.arange(1, length, device=device)[None, :] / self.sample_rate
        # amplitude falls by 10^3 (60 dB) over rt60: exp(-ln(1000) t / rt60)
        tail = torch.randn(count, length - 1, device=device) * torch.exp(
            -6.9078 * t / uniform(*self.rt60)
        )
        tail = tail / tail.norm(dim=1, keepdim=True) * 10 ** (-uniform(*self.drr_db) / 20)
        return torch.cat([torch.ones(count, 1, device=device), tail], dim=1)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return waves
        chosen = (torch.rand(waves.shape[0], device=waves.device) < self.prob).nonzero()[:, 0]
        if len(chosen) == 0:
            return waves
        dry = waves[chosen]
        rir = self.impulse_responses(len(chosen), waves.device)
        wet = torchaudio.functional.fftconvolve(dry, rir)[:, : waves.shape[1]]
        rms = lambda x: x.pow(2).mean(1, keepdim=True).sqrt().clamp(min=1e-8)  # noqa: E731
        out = waves.clone()
        out[chosen] = wet * (rms(dry) / rms(wet))
        return out
