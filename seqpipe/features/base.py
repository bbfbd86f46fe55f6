"""What an audio front end is: the facts the speech service reads off a pipeline's features.

Audio features are ``nn.Module`` s called as ``features(waves[B, N], lengths[B]) ->
(feats[B, T, F], frames[B])`` (MIDI encodings are plain objects, see
:class:`seqpipe.features.melody_tokens.MelodyEncoding`). :class:`seqpipe.pipeline.Pipeline`
turns these attributes into its typed ``sample_rate``, ``frame_seconds`` and
``lead_seconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class AudioFeatures(Protocol):
    sample_rate: int  # samples per second the front end reads
    hop_length: int  # samples between feature frames
    lead_seconds: float  # frame 0 starts this long before the audio (padding), else 0
    output_size: int  # F

    def __call__(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...
