"""Music-audio features through librosa: constant-Q spectrogram, chroma, pYIN pitch track.

For pipelines that listen to melodies rather than speech: the constant-Q transform has
one bin per semitone, chroma folds octaves together, and pYIN gives one (MIDI pitch,
voiced probability) pair per frame. librosa works on NumPy on the CPU, one utterance at
a time, so these are for data preparation and modest batches, not the speech hot path.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seqpipe.types import PositiveFloat, PositiveInt


class _LibrosaFeatures(nn.Module):
    """Shared batching: per-utterance librosa call, padded back into [B, T, F]."""

    output_size: int
    lead_seconds = 0.0  # librosa centres frames: frame 0 is at the first sample

    def __init__(self, sample_rate: int, hop_length: int):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop_length = hop_length

    def compute(self, y: np.ndarray) -> np.ndarray:  # [F, T]
        raise NotImplementedError

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        outs = []
        for wave, n in zip(waves.detach().cpu().numpy(), lengths.cpu().tolist(), strict=True):
            outs.append(
                torch.from_numpy(
                    np.ascontiguousarray(self.compute(wave[: int(n)]).T, dtype=np.float32)
                )
            )
        frames = torch.tensor([len(o) for o in outs], device=waves.device)
        feats = nn.utils.rnn.pad_sequence(outs, batch_first=True).to(waves.device)
        return feats, frames


class CQT(_LibrosaFeatures):
    """Log-magnitude constant-Q spectrogram: ``n_bins`` bins from ``fmin_midi``,
    ``bins_per_semitone`` to a semitone (with 3, the middle bin of each group of three is
    centred on the semitone, so a slightly sharp or flat note still lands in its group)."""

    def __init__(self, sample_rate: PositiveInt = 22050, hop_length: PositiveInt = 512,
                 n_bins: PositiveInt = 84, fmin_midi: PositiveInt = 24,
                 bins_per_semitone: PositiveInt = 1):  # fmt: skip
        super().__init__(sample_rate, hop_length)
        self.n_bins, self.fmin_midi = n_bins, fmin_midi
        self.bins_per_semitone = bins_per_semitone
        self.output_size = n_bins

    def compute(self, y: np.ndarray) -> np.ndarray:
        librosa = _librosa()

        import warnings

        per = self.bins_per_semitone
        fmin = librosa.midi_to_hz(self.fmin_midi - (per - 1) / (2 * per))
        with warnings.catch_warnings():  # short clips: librosa warns of its low octaves' FFT size
            warnings.filterwarnings("ignore", message="n_fft=.* is too large", category=UserWarning)
            C = librosa.cqt(y, sr=self.sample_rate, hop_length=self.hop_length, n_bins=self.n_bins,
                            fmin=fmin, bins_per_octave=12 * per)  # fmt: skip
        return librosa.amplitude_to_db(np.abs(C), ref=np.max) / 80.0


class Chroma(_LibrosaFeatures):
    """12 pitch-class energies per frame (from the CQT), each frame summing to its max 1."""

    def __init__(self, sample_rate: PositiveInt = 22050, hop_length: PositiveInt = 512):
        super().__init__(sample_rate, hop_length)
        self.output_size = 12

    def compute(self, y: np.ndarray) -> np.ndarray:
        librosa = _librosa()

        return librosa.feature.chroma_cqt(y=y, sr=self.sample_rate, hop_length=self.hop_length)


class PYIN(_LibrosaFeatures):
    """Monophonic pitch track: [MIDI pitch (0 when unvoiced), voiced probability] per frame."""

    def __init__(self, sample_rate: PositiveInt = 22050, hop_length: PositiveInt = 512,
                 fmin_hz: PositiveFloat = 65.0, fmax_hz: PositiveFloat = 2093.0):  # fmt: skip
        super().__init__(sample_rate, hop_length)
        self.fmin_hz, self.fmax_hz = fmin_hz, fmax_hz
        self.output_size = 2

    def compute(self, y: np.ndarray) -> np.ndarray:
        librosa = _librosa()

        f0, voiced, prob = librosa.pyin(y, fmin=self.fmin_hz, fmax=self.fmax_hz, sr=self.sample_rate,
                                        hop_length=self.hop_length, frame_length=4 * self.hop_length)  # fmt: skip
        midi = np.where(voiced, librosa.hz_to_midi(np.nan_to_num(f0, nan=1.0)), 0.0)
        return np.stack([midi, np.nan_to_num(prob)])


def _librosa():
    """librosa, or a SeqpipeError naming the extra that installs it."""
    try:
        import librosa
    except ImportError:
        from seqpipe.errors import SeqpipeError

        raise SeqpipeError(
            "the cqt, chroma and pyin features need librosa: pip install 'seqpipe[music]'"
        ) from None
    return librosa
