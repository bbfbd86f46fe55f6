"""Log-mel filterbank features, computed by torchaudio on the model's device."""

from __future__ import annotations

from typing import Literal

import torch
import torchaudio
from torch import nn

from seqpipe.types import PositiveFloat, PositiveInt


class LogMel(nn.Module):
    """Waveforms [B, N] -> log-mel frames [B, T, n_mels] with per-frame lengths.

    Normalisation is per utterance by default: it removes channel and loudness
    differences between recordings, which matters more than anything else for
    generalising to new microphones and speakers.
    """

    def __init__(
        self,
        sample_rate: PositiveInt = 16000,
        n_mels: PositiveInt = 80,
        win_ms: PositiveFloat = 25.0,
        hop_ms: PositiveFloat = 10.0,
        normalize: Literal["utterance", "none"] = "utterance",
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop_length = int(sample_rate * hop_ms / 1000)
        win_length = int(sample_rate * win_ms / 1000)
        n_fft = 1 << (win_length - 1).bit_length()
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=self.hop_length,
            n_mels=n_mels,
            center=True,
        )
        self.normalize = normalize
        self.output_size = n_mels

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames whose window lies inside the signal, so padding never changes a frame."""
        return ((lengths - self.melspec.n_fft // 2) // self.hop_length + 1).clamp(min=1)

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = (self.melspec(waves) + 1e-6).log().transpose(1, 2)  # [B, T, n_mels]
        frames = self.frame_lengths(lengths).clamp(max=feats.shape[1])
        mask = torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]
        if self.normalize == "utterance":
            count = frames.clamp(min=1)[:, None, None].to(feats.dtype)
            masked = feats * mask[..., None]
            mean = masked.sum(1, keepdim=True) / count
            var = ((feats - mean) ** 2 * mask[..., None]).sum(1, keepdim=True) / count
            feats = (feats - mean) / (var + 1e-5).sqrt()
        return feats * mask[..., None], frames
