"""Log-mel filterbank features, computed by torchaudio on the model's device.

Training-only augmentation lives here too, so it runs on the same device as the
model: waveform speed/noise/gain (``augment``) and a simulated room (``reverb``) before
the filterbank, vocal tract length perturbation (``vtlp``) inside it and SpecAugment
(``spec_augment``) after it. All are no-ops in eval mode.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from seqpipe.features.augment import WaveAugment
from seqpipe.features.normalize import FeatureNorm, Normalize
from seqpipe.features.specaugment import SpecAugment
from seqpipe.features.vtlp import VocalTractWarp
from seqpipe.types import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
)


class LogMel(nn.Module):
    """Waveforms [B, N] -> log-mel frames [B, T, n_mels] with per-frame lengths.

    Normalisation is per utterance by default: it removes channel and loudness
    differences between recordings, which matters more than anything else for
    generalising to new microphones and speakers. Frame lengths count only frames
    whose window lies inside the signal, so padding never changes a frame.
    """

    def __init__(
        self,
        sample_rate: PositiveInt = 16000,
        n_mels: PositiveInt = 80,
        win_ms: PositiveFloat = 25.0,
        hop_ms: PositiveFloat = 10.0,
        normalize: Normalize = "utterance",
        augment: bool = False,
        spec_augment: bool = False,
        freq_masks: NonNegativeInt = 2,
        freq_width: NonNegativeInt = 10,
        time_masks: NonNegativeInt = 2,
        time_width: NonNegativeInt = 20,
        pad_ms: NonNegativeFloat = 0.0,
        augment_silence_ms: NonNegativeFloat = 0.0,
        vtlp: NonNegativeFloat = 0.0,
        reverb: Probability = 0.0,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        # silence added before and after every utterance, in training and inference alike:
        # tightly trimmed clips (FSDD) then look like speech cut from a longer recording
        self.pad = int(sample_rate * pad_ms / 1000)
        self.lead_seconds = self.pad / sample_rate  # feature time 0 is this far before the audio
        self.hop_length = int(sample_rate * hop_ms / 1000)
        win_length = int(sample_rate * win_ms / 1000)
        self.n_fft = 1 << (win_length - 1).bit_length()
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=self.n_fft,
            win_length=win_length,
            hop_length=self.hop_length,
            n_mels=n_mels,
            center=True,
        )
        self.output_size = n_mels
        self.norm = FeatureNorm(self.output_size, normalize)
        silence = int(sample_rate * augment_silence_ms / 1000)
        # with augment: this share of training utterances in a simulated room
        self.wave_augment = (
            WaveAugment(silence=silence, reverb=reverb, sample_rate=sample_rate)
            if augment
            else None
        )
        # each training utterance's frequency axis scaled by a factor in 1 +- vtlp
        self.vtlp = VocalTractWarp(vtlp) if vtlp > 0 else None
        self.spec_augment = (
            SpecAugment(freq_masks, freq_width, time_masks, time_width) if spec_augment else None
        )

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames whose window lies inside the signal, so padding never changes a frame."""
        return ((lengths - self.n_fft // 2) // self.hop_length + 1).clamp(min=1)

    def frames(self, waves: torch.Tensor) -> torch.Tensor:
        """The raw (unnormalised) features [B, T, F]; subclasses change only this."""
        power = self.melspec.spectrogram(waves)
        if self.vtlp is not None and self.training:
            power = self.vtlp(power)
        return (self.melspec.mel_scale(power) + 1e-6).log().transpose(1, 2)

    def refine(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Hook for features computed from whole frame sequences (MFCC deltas)."""
        return feats

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pad:
            waves, lengths = pad_edges(waves, lengths, self.pad)
        if self.wave_augment is not None and self.training:
            waves, lengths = self.wave_augment(waves, lengths)
        if waves.shape[1] <= self.n_fft // 2:  # reflect padding needs a little signal
            waves = nn.functional.pad(waves, (0, self.n_fft // 2 + 1 - waves.shape[1]))
        feats = self.frames(waves)
        frames = self.frame_lengths(lengths.to(feats.device)).clamp(max=feats.shape[1])
        feats = self.refine(feats, frames)
        mask = torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]
        feats = self.norm(feats, mask)
        if self.spec_augment is not None and self.training:
            feats = self.spec_augment(feats, frames)
        return feats, frames


def pad_edges(
    waves: torch.Tensor, lengths: torch.Tensor, pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Put ``pad`` zeros before and after each utterance (batch padding stays at the end)."""
    lengths = lengths.to(waves.device)
    mask = torch.arange(waves.shape[1], device=waves.device)[None, :] < lengths[:, None]
    return nn.functional.pad(waves * mask, (pad, pad)), lengths + 2 * pad
