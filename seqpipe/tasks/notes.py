"""``notes``: transcribe a melody (sung, hummed or played) into notes, frame by frame.

Data is either a folder (or one file) of feature shards made by
``scripts/make_note_data.py`` (rendered melodies, ``seqpipe.data.melody_audio``), or a
JSONL manifest of real recordings, one ``{"audio": path, "notes": [[onset s, offset s,
MIDI pitch], ...]}`` per line (relative paths against the manifest's folder), whose
features are computed when it is read.

Targets per frame: onset (1 at a note's first frame, 0.5 either side), voiced (a note
sounds) and pitch (the sounding note's semitone, ``min_pitch..max_pitch``). The loss is
binary cross-entropy on onset and voicing plus cross-entropy on the pitch of voiced
frames. Training crops ``crop_seconds`` windows at random.

Evaluation decodes notes with the pipeline's decoder (``note_peaks``) and scores them
with mir_eval against the reference, averaged over files: ``onset_f1`` (onset within
50 ms and pitch within 50 cents, the primary metric), ``offset_f1`` (also the offset
within 20 % of the note or 50 ms), ``onset_only_f1`` (onsets alone, pitch ignored) and
``pitch_accuracy`` (voiced frames given the right semitone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seqpipe.errors import SeqpipeError
from seqpipe.tasks.base import Task
from seqpipe.types import PositiveFloat, PositiveInt

# mir_eval note scores per file (means over files are the task's metrics)
NOTE_METRICS = (
    "onset_f1",
    "onset_precision",
    "onset_recall",
    "offset_f1",
    "onset_only_f1",
    "pitch_accuracy",
)


@dataclass
class NoteExample:
    feats: np.ndarray  # [T, F]
    notes: np.ndarray  # [K, 3] onset s, offset s, MIDI pitch
    train: bool = False
    name: str = ""


class NotesTask(Task):
    model_shapes = ("many-to-many",)
    primary_metric = "onset_f1"
    higher_is_better = True

    def __init__(
        self,
        min_pitch: PositiveInt = 36,
        max_pitch: PositiveInt = 96,
        crop_seconds: PositiveFloat = 4.0,
        onset_weight: PositiveFloat = 2.0,
    ):
        if max_pitch <= min_pitch or max_pitch > 127:
            raise SeqpipeError(
                f"task: expected min_pitch < max_pitch <= 127, got {min_pitch}..{max_pitch}"
            )
        self.min_pitch, self.max_pitch = min_pitch, max_pitch
        self.crop_seconds = crop_seconds
        self.onset_weight = onset_weight
        self.features = None
        self.frame_seconds = 0.016

    @property
    def pitches(self) -> int:
        return self.max_pitch - self.min_pitch + 1

    def wire(self, features: Any) -> dict[str, Any]:
        self.features = features
        self.frame_seconds = features.hop_length / features.sample_rate
        wiring = {"input_size": features.output_size, "output_size": 2 + self.pitches}
        if hasattr(features, "bins_per_semitone"):  # the decoder refines pitch from the CQT
            wiring["spectrum_fmin_midi"] = features.fmin_midi
            wiring["spectrum_bins_per_semitone"] = features.bins_per_semitone
        return wiring

    # -- data ----------------------------------------------------------------------

    def load_data(self, source: Any, *, train: bool) -> list[NoteExample]:
        from seqpipe.data.melody_audio import read_shard

        path = Path(source)
        if path.suffix == ".jsonl":
            return self.read_manifest(path)
        shards = sorted(path.glob("*.npz")) if path.is_dir() else [path]
        if not shards or not shards[0].exists():
            raise SeqpipeError(f"{path}: no note-feature shards (.npz) or .jsonl manifest")
        return [
            NoteExample(feats, notes, train, f"{shard.name}#{i}")
            for shard in shards
            for i, (feats, notes) in enumerate(read_shard(shard))
        ]

    def read_manifest(self, path: Path) -> list[NoteExample]:
        """Real recordings with reference notes; features computed now (CPU)."""
        from seqpipe.audio import load_audio

        examples = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                audio, notes = entry["audio"], np.array(entry["notes"], dtype=np.float64)
            except (ValueError, KeyError, TypeError) as exc:
                raise SeqpipeError(
                    f"{path}: line {number}: expected {{audio, notes}} ({exc})"
                ) from None
            audio_path = Path(audio) if Path(audio).is_absolute() else path.parent / audio
            wave = load_audio(audio_path, self.features.sample_rate)
            feats = self.features.compute(wave).T.astype(np.float32)
            examples.append(NoteExample(feats, notes.reshape(-1, 3), False, str(audio)))
        return examples

    def length(self, example: NoteExample) -> int:
        return len(example.feats)

    def targets(self, notes: np.ndarray, frames: int, start: int = 0) -> tuple[np.ndarray, ...]:
        """Onset, voiced and pitch (-100 = none) per frame of a window from frame ``start``."""
        onset = np.zeros(frames, np.float32)
        voiced = np.zeros(frames, np.float32)
        pitch = np.full(frames, -100, np.int64)
        fs = self.frame_seconds
        for on, off, p in notes:
            a, b = int(round(on / fs)) - start, int(round(off / fs)) - start
            if b <= 0 or a >= frames:
                continue
            lo, hi = max(a, 0), min(max(b, a + 1), frames)
            voiced[lo:hi] = 1
            k = int(round(p)) - self.min_pitch
            pitch[lo:hi] = k if 0 <= k < self.pitches else -100
            for t, v in ((a - 1, 0.5), (a, 1.0), (a + 1, 0.5)):
                if 0 <= t < frames:
                    onset[t] = max(onset[t], v)
        return onset, voiced, pitch

    def collate(self, examples: list[NoteExample]) -> dict[str, torch.Tensor]:
        crop = int(self.crop_seconds / self.frame_seconds)
        windows, references = [], []
        for ex in examples:
            start, T = 0, len(ex.feats)
            if ex.train and len(ex.feats) > crop:
                start = int(np.random.randint(0, T - crop))
                T = crop
            windows.append((ex.feats[start : start + T], self.targets(ex.notes, T, start)))
            references.append(ex.notes)  # whole examples only (evaluation never crops)
        B, T = len(windows), max(len(w[0]) for w in windows)
        feats = torch.full((B, T, windows[0][0].shape[1]), -1.0)  # the CQT's floor
        onset, voiced = torch.zeros(B, T), torch.zeros(B, T)
        pitch = torch.full((B, T), -100, dtype=torch.long)
        for i, (f, (o, v, p)) in enumerate(windows):
            n = len(f)
            feats[i, :n] = torch.from_numpy(np.asarray(f, dtype=np.float32))
            onset[i, :n], voiced[i, :n], pitch[i, :n] = map(torch.from_numpy, (o, v, p))
        lengths = torch.tensor([len(w[0]) for w in windows])
        return {"feats": feats, "lengths": lengths, "onset": onset, "voiced": voiced,
                "pitch": pitch, "notes": references}  # fmt: skip

    # -- training ------------------------------------------------------------------

    def loss(self, pipeline, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        y, lengths = pipeline.model(batch["feats"], batch["lengths"])
        mask = torch.arange(y.shape[1], device=y.device)[None] < lengths.to(y.device)[:, None]
        bce = F.binary_cross_entropy_with_logits
        onset = bce(y[..., 0], batch["onset"], reduction="none")
        onset = onset * (1 + (self.onset_weight - 1) * (batch["onset"] > 0))
        voiced = bce(y[..., 1], batch["voiced"], reduction="none")
        frames = mask.sum().clamp(min=1)
        pitch = F.cross_entropy(y[..., 2:].reshape(-1, self.pitches), batch["pitch"].reshape(-1),
                                ignore_index=-100)  # fmt: skip
        if not torch.isfinite(pitch):  # no voiced frame in the batch
            pitch = y.sum() * 0
        total = (onset * mask).sum() / frames + (voiced * mask).sum() / frames + pitch
        return total, int(frames)

    @torch.no_grad()
    def evaluate(self, pipeline, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        scores: list[dict[str, float]] = []
        losses, frames = 0.0, 0
        for batch in batches:
            loss, n = self.loss(pipeline, batch)
            losses, frames = losses + float(loss) * n, frames + n
            decoded = pipeline.decoder.decode_batch(
                pipeline.model, batch["feats"], batch["lengths"], self.frame_seconds, self.min_pitch
            )
            for i, notes in enumerate(decoded):
                scores.append(score_notes(batch["notes"][i], notes, self.frame_seconds))
        result = {"loss": losses / max(frames, 1)}
        for key in NOTE_METRICS:
            result[key] = float(np.mean([s[key] for s in scores])) if scores else 0.0
        return result

    def bundle_info(self) -> dict[str, Any]:
        return {"min_pitch": self.min_pitch, "max_pitch": self.max_pitch}


def score_notes(
    reference: np.ndarray, estimate: np.ndarray, frame_seconds: float = 0.01
) -> dict[str, float]:
    """mir_eval note metrics of one file (``[K, 3]`` onset s, offset s, MIDI pitch arrays)."""
    import mir_eval

    def parts(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
        notes = notes[np.argsort(notes[:, 0], kind="stable")]
        intervals = notes[:, :2].copy()
        intervals[:, 1] = np.maximum(intervals[:, 1], intervals[:, 0] + 1e-3)
        return intervals, 440.0 * 2 ** ((notes[:, 2] - 69) / 12)

    (ri, rp), (ei, ep) = parts(reference), parts(estimate)
    if not len(ri):
        empty = 1.0 if not len(ei) else 0.0
        return dict.fromkeys(
            NOTE_METRICS,
            empty,
        )
    if not len(ei):
        return dict.fromkeys(
            NOTE_METRICS,
            0.0,
        )
    transcription = mir_eval.transcription
    p, r, f, _ = transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)
    _, _, f_off, _ = transcription.precision_recall_f1_overlap(ri, rp, ei, ep)
    f_on, _, _ = mir_eval.onset.f_measure(ri[:, 0], ei[:, 0], window=0.05)
    return {
        "onset_f1": f, "onset_precision": p, "onset_recall": r, "offset_f1": f_off,
        "onset_only_f1": f_on, "pitch_accuracy": frame_pitch_accuracy(reference, estimate, frame_seconds),
    }  # fmt: skip


def frame_pitch_accuracy(reference: np.ndarray, estimate: np.ndarray, step: float) -> float:
    """Share of the reference's voiced frames where the estimate sounds the same semitone."""
    end = max(reference[:, 1].max(), estimate[:, 1].max() if len(estimate) else 0)
    times = np.arange(0, end, step)

    def roll(notes: np.ndarray) -> np.ndarray:
        out = np.full(len(times), -1)
        for on, off, p in notes:
            out[(times >= on) & (times < off)] = int(round(p))
        return out

    ref, est = roll(reference), roll(estimate)
    voiced = ref >= 0
    return float((ref[voiced] == est[voiced]).mean()) if voiced.any() else 1.0
