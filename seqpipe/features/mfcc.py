"""MFCC features with delta and delta-delta coefficients (torchaudio).

MFCCs decorrelate the log-mel bands, so smaller models learn from fewer inputs; the
deltas add each coefficient's local slope. Same frame lengths, normalisation and
augmentation as ``logmel``.
"""

from __future__ import annotations

import torch
import torchaudio

from seqpipe.features.logmel import LogMel
from seqpipe.features.normalize import FeatureNorm, Normalize
from seqpipe.types import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt


class MFCC(LogMel):
    """Waveforms [B, N] -> [B, T, n_mfcc * (3 if deltas else 1)] with frame lengths."""

    def __init__(
        self,
        sample_rate: PositiveInt = 16000,
        n_mfcc: PositiveInt = 13,
        n_mels: PositiveInt = 40,
        deltas: bool = True,
        win_ms: PositiveFloat = 25.0,
        hop_ms: PositiveFloat = 10.0,
        normalize: Normalize = "utterance",
        augment: bool = False,
        spec_augment: bool = False,
        freq_masks: NonNegativeInt = 1,
        freq_width: NonNegativeInt = 4,
        time_masks: NonNegativeInt = 2,
        time_width: NonNegativeInt = 20,
        pad_ms: NonNegativeFloat = 0.0,
    ):
        super().__init__(
            sample_rate, n_mels, win_ms, hop_ms, normalize, augment, spec_augment,
            freq_masks, freq_width, time_masks, time_width, pad_ms,
        )  # fmt: skip
        self.register_buffer("dct", torchaudio.functional.create_dct(n_mfcc, n_mels, "ortho"))
        self.deltas = deltas
        self.output_size = n_mfcc * (3 if deltas else 1)
        self.norm = FeatureNorm(self.output_size, normalize)

    def refine(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        mfcc = feats @ self.dct  # [B, T, n_mfcc]
        if not self.deltas:
            return mfcc
        # repeat each utterance's last real frame over its padding, as compute_deltas does
        # at a lone utterance's end, so deltas near the end do not depend on the batch
        steps = torch.arange(mfcc.shape[1], device=mfcc.device)[None, :]
        index = torch.minimum(steps, (frames - 1)[:, None])
        mfcc = mfcc.gather(1, index[..., None].expand_as(mfcc))
        d1 = torchaudio.functional.compute_deltas(mfcc.transpose(1, 2))
        d2 = torchaudio.functional.compute_deltas(d1)
        return torch.cat([mfcc, d1.transpose(1, 2), d2.transpose(1, 2)], dim=-1)
