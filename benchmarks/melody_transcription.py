"""Melody transcription on real recordings: a seqpipe ``notes`` bundle beside two anchors,
with the same mir_eval scores, and the speed of each (seconds of audio per second).

    OMP_NUM_THREADS=1 python benchmarks/melody_transcription.py data/notes/ssvd_test.jsonl \
        --model melody --anchors pyin basic-pitch

Anchors:

* ``pyin``: librosa's pYIN f0 (65-1047 Hz, 16 ms hop), each voiced frame's f0 rounded
  to the nearest semitone, runs of equal semitones as notes (shorter than 60 ms dropped).
* ``basic-pitch``: Spotify's basic-pitch (ICASSP 2022 model, ONNX backend; install with
  ``pip install --no-deps basic-pitch resampy`` and onnxruntime), default settings,
  its notes as they come.

Scores are means over files of mir_eval's note F1 with 50 ms onset tolerance and 50
cents pitch tolerance (onset_f1), also with offsets (offset_f1), onsets alone ignoring
pitch (onset_only_f1), and frame pitch accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from seqpipe.audio import load_audio
from seqpipe.tasks.notes import NOTE_METRICS as METRICS
from seqpipe.tasks.notes import score_notes


def pyin_notes(wave: np.ndarray, sr: int = 16000, hop: int = 256) -> np.ndarray:
    import librosa

    f0, voiced, _ = librosa.pyin(
        wave, fmin=65.0, fmax=1047.0, sr=sr, hop_length=hop, frame_length=4 * hop
    )
    semis = np.where(voiced, np.round(librosa.hz_to_midi(np.nan_to_num(f0, nan=1.0))), -1)
    rows, start = [], 0
    for t in range(1, len(semis) + 1):
        if t == len(semis) or semis[t] != semis[start]:
            if semis[start] > 0 and (t - start) * hop / sr >= 0.06:
                rows.append((start * hop / sr, t * hop / sr, semis[start]))
            start = t
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def basic_pitch_notes(path: str) -> np.ndarray:
    from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
    from basic_pitch.inference import Model, predict

    global _BASIC_PITCH
    if "_BASIC_PITCH" not in globals():
        _BASIC_PITCH = Model(build_icassp_2022_model_path(FilenameSuffix.onnx))
    _, _, events = predict(path, _BASIC_PITCH)
    return np.array([(a, b, p) for a, b, p, *_ in events], dtype=np.float64).reshape(-1, 3)


def run(name: str, rows: list[dict], model: str | None) -> dict:
    transcribe = None
    if name == "seqpipe":
        from seqpipe.music.melody_transcriber import load_transcriber, transcribe_notes

        pipeline = load_transcriber(model)
        transcribe = lambda path: transcribe_notes(pipeline, load_audio(path, pipeline.sample_rate))  # noqa: E731
    elif name == "pyin":
        transcribe = lambda path: pyin_notes(load_audio(path, 16000))  # noqa: E731
    else:
        transcribe = basic_pitch_notes
    scores, audio_seconds, busy = [], 0.0, 0.0
    for row in rows:
        start = time.perf_counter()
        estimate = transcribe(row["audio"])
        busy += time.perf_counter() - start
        audio_seconds += len(load_audio(row["audio"], 16000)) / 16000
        scores.append(score_notes(np.array(row["notes"]).reshape(-1, 3), estimate))
    result = {key: float(np.mean([s[key] for s in scores])) for key in METRICS}
    return {"system": name, **result, "audio_s_per_s": audio_seconds / busy, "files": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", nargs="+", help="JSONL: {audio, notes} per line")
    parser.add_argument("--model", default="melody", help="notes bundle (name or file)")
    parser.add_argument("--anchors", nargs="*", default=["pyin", "basic-pitch"])
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--limit", type=int, help="first N recordings of each manifest")
    args = parser.parse_args()
    systems = ([] if args.no_model else ["seqpipe"]) + list(args.anchors)
    for manifest in args.manifests:
        rows = [
            json.loads(line) for line in Path(manifest).read_text().splitlines() if line.strip()
        ]
        rows = rows[: args.limit] if args.limit else rows
        print(f"\n{manifest}: {len(rows)} recordings, {sum(len(r['notes']) for r in rows)} notes")
        print(
            "| system | onset F1 | P | R | with offsets F1 | onsets only F1 | frame pitch acc. | audio s/s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for system in systems:
            r = run(system, rows, args.model)
            label = f"seqpipe `{args.model}`" if system == "seqpipe" else system
            print(f"| {label} | **{r['onset_f1']:.3f}** | {r['onset_precision']:.3f} | {r['onset_recall']:.3f} | "
                  f"{r['offset_f1']:.3f} | {r['onset_only_f1']:.3f} | {r['pitch_accuracy']:.3f} | {r['audio_s_per_s']:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
