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
        refine_pitch: bool = False,
        spectrum_fmin_midi: float | None = None,
        spectrum_bins_per_semitone: int | None = None,
    ):
        self.onset_threshold = onset_threshold
        self.voiced_threshold = voiced_threshold
        self.min_gap = min_gap
        self.min_note_seconds = min_note_seconds
        self.voiced_onsets = voiced_onsets
        self.skip_frames = skip_frames
        # the features' layout (wired by the task): where each spectrum bin sits in pitch
        self.refine_pitch = refine_pitch and spectrum_bins_per_semitone is not None
        self.fmin_midi = spectrum_fmin_midi
        self.bins = spectrum_bins_per_semitone or 1

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
        spectra = feats.float().cpu().numpy() if self.refine_pitch else [None] * len(onset)
        return [
            self.decode(
                onset[i, :n],
                voiced[i, :n],
                logp[i, :n],
                frame_seconds,
                first_pitch,
                spectra[i][:n] if self.refine_pitch else None,
            )  # fmt: skip
            for i, n in enumerate(out_lengths.tolist())
        ]

    def decode(
        self,
        onset: np.ndarray,  # [T] probabilities
        voiced: np.ndarray,  # [T] probabilities
        logp: np.ndarray,  # [T, P] log posteriors
        frame_seconds: float,
        first_pitch: int,
        spectrum: np.ndarray | None = None,  # [T, F] the model's input, dB / 80 in [-1, 0]
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
            if spectrum is not None:
                pitch = self.nearest_semitone(spectrum[s + skip : end], pitch)
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

    def nearest_semitone(self, frames: np.ndarray, pitch: int) -> int:
        """The semitone nearest the note's sung pitch, within one of the model's ``pitch``.

        The model names the semitone a note was meant to be; a singer 60 cents sharp of it
        is nearer the next one, and that is what a listener (and mir_eval's 50-cent
        tolerance) hears. The note's mean spectrum, its first four harmonics summed, is
        searched +-1 semitone around ``pitch`` at the spectrum's resolution and its peak
        interpolated (parabola through the peak bin and its neighbours)."""
        amp = (10.0 ** (frames * 4.0)).mean(axis=0)  # dB / 80 -> amplitude
        per_octave = 12 * self.bins
        centre = int(round((pitch - self.fmin_midi) * self.bins + (self.bins - 1) / 2))
        offsets = np.arange(-self.bins - 1, self.bins + 2)
        score = np.zeros(len(offsets))
        for h in (1, 2, 3, 4):
            shift = int(round(per_octave * np.log2(h)))
            idx = centre + offsets + shift
            ok = (idx >= 0) & (idx < len(amp))
            score[ok] += amp[idx[ok]] / h
        k = int(np.argmax(score[1:-1])) + 1  # the peak, inside the window
        a, b, c = score[k - 1], score[k], score[k + 1]
        delta = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
        semis = (offsets[k] + delta) / self.bins
        return pitch + int(np.clip(np.round(semis), -1, 1))
