"""``note_peaks``: a note tracker's frame posteriors -> notes (monophonic).

The contract (a ``NoteDecoder``): ``decode_batch(model, feats, lengths, frame_seconds,
first_pitch) -> list[np.ndarray]``, one ``[K, 3]`` array of ``onset s, offset s, MIDI
pitch`` rows per example, for a model of the ``note_tracker`` shape (``y[..., 0]`` onset
logit, ``y[..., 1]`` voiced logit, ``y[..., 2:]`` pitch logits from ``first_pitch`` up).

A note starts at each peak of the onset posterior above ``onset_threshold`` (peaks
closer than ``min_gap`` are one onset), and where the voicing rises above
``voiced_threshold`` with no onset peak near. It lasts until the next onset or until the
voicing falls below the threshold. Its pitch is the one most frames vote for (summed
log posteriors, the first frames skipped, where singers scoop into the note). Notes
shorter than ``min_note_seconds`` are dropped.
"""

from __future__ import annotations

import numpy as np
import torch

from seqpipe.types import PositiveFloat, PositiveInt, Probability


class NotePeaks:
    def __init__(
        self,
        onset_threshold: Probability = 0.4,
        voiced_threshold: Probability = 0.5,
        min_gap: PositiveInt = 3,
        min_note_seconds: PositiveFloat = 0.05,
        voiced_onsets: bool = True,
        skip_frames: int = 2,
    ):
        self.onset_threshold = onset_threshold
        self.voiced_threshold = voiced_threshold
        self.min_gap = min_gap
        self.min_note_seconds = min_note_seconds
        self.voiced_onsets = voiced_onsets
        self.skip_frames = skip_frames

    @torch.no_grad()
    def decode_batch(
        self,
        model,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        frame_seconds: float,
        first_pitch: int,
    ) -> list[np.ndarray]:
        y, out_lengths = model(feats, lengths)
        onset = torch.sigmoid(y[..., 0]).cpu().numpy()
        voiced = torch.sigmoid(y[..., 1]).cpu().numpy()
        logp = torch.log_softmax(y[..., 2:].float(), dim=-1).cpu().numpy()
        return [
            self.decode(onset[i, :n], voiced[i, :n], logp[i, :n], frame_seconds, first_pitch)
            for i, n in enumerate(out_lengths.tolist())
        ]

    def decode(
        self,
        onset: np.ndarray,  # [T] probabilities
        voiced: np.ndarray,  # [T] probabilities
        logp: np.ndarray,  # [T, P] log posteriors
        frame_seconds: float,
        first_pitch: int,
    ) -> np.ndarray:
        starts = self.onsets(onset, voiced)
        is_voiced = voiced >= self.voiced_threshold
        T, rows = len(onset), []
        for i, s in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else T
            silent = np.flatnonzero(~is_voiced[s + 1 : stop])
            end = s + 1 + silent[0] if len(silent) else stop
            if (end - s) * frame_seconds < self.min_note_seconds:
                continue
            skip = min(self.skip_frames, (end - s) // 3)
            pitch = int(np.argmax(logp[s + skip : end].sum(axis=0))) + first_pitch
            rows.append((s * frame_seconds, end * frame_seconds, pitch))
        return np.array(rows, dtype=np.float64).reshape(-1, 3)

    def onsets(self, onset: np.ndarray, voiced: np.ndarray) -> list[int]:
        """Frames where notes start: onset peaks, plus voicing rises with no peak near."""
        T, gap = len(onset), self.min_gap
        peaks = []
        for t in np.flatnonzero(onset >= self.onset_threshold):
            window = onset[max(t - gap + 1, 0) : t + gap]
            if onset[t] == window.max() and (not peaks or t - peaks[-1] >= gap):
                peaks.append(int(t))
        if self.voiced_onsets:
            on = voiced >= self.voiced_threshold
            rises = np.flatnonzero(on & ~np.concatenate([[False], on[:-1]]))
            near = np.zeros(T + 2 * gap, dtype=bool)
            for p in peaks:
                near[p : p + 2 * gap + 1] = True
            peaks += [int(t) for t in rises if not near[t + gap]]
        return sorted(set(peaks))
