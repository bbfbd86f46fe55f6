"""Write the real-recording note sets (JSONL manifests) the ``notes`` task evaluates on.

    python scripts/make_note_sets.py --ssvd /work/corpora/ssvd-i35 \
        --mirdata /work/corpora/mirdata-i35/tests/resources/mir_datasets --out data/notes

Each line: ``{"audio": path, "notes": [[onset s, offset s, MIDI pitch], ...], "origin": ...}``.

* ``ssvd_dev.jsonl`` / ``ssvd_test.jsonl``: the Sight-singing Vocal Dataset v2.0
  (github:xk-wang/SSVD-v2.0, commit 93d36ac, ``train&valid/`` and ``test/``; no licence
  stated, so used here for evaluation only, never for training): real solo sight-singing
  recorded by phone, with hand-annotated onsets, offsets and pitches. The dev half tunes
  the decoder; the test half is reported.
* ``mirdata_dev.jsonl``: the annotated monophonic clips among mirdata's test fixtures
  (github:mir-dataset-loaders/mirdata, commit b95bf38, ``tests/resources/mir_datasets``):
  TONAS (flamenco singing), GuitarSet's solo (guitar), Filosax (saxophone). Vocadito is
  left out on purpose: it is reserved for independent evaluation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf


def ssvd(folder: Path) -> list[dict]:
    rows = []
    for txt in sorted(folder.glob("*.txt")):
        notes = [
            [float(x) for x in line.split()[:3]]
            for line in txt.read_text().splitlines()
            if line.strip()
        ]
        rows.append(
            {
                "audio": str(txt.with_suffix(".flac")),
                "notes": notes,
                "origin": f"SSVD-v2.0/{folder.name}/{txt.stem}",
            }
        )
    return rows


def inside(audio: Path, notes: list[list[float]]) -> list[list[float]]:
    """The notes that start inside the (cut) fixture's audio, offsets clipped to its end
    (GuitarSet's fixture also holds placeholder notes at MIDI 120: dropped)."""
    seconds = sf.info(str(audio)).duration
    return [[a, min(b, seconds), p] for a, b, p in notes if a < seconds - 0.05 and 20 < p < 109]


def mirdata(root: Path) -> list[dict]:
    rows = []
    tonas = root / "tonas/Deblas/01-D_AMairena"
    lines = tonas.with_suffix(".notes.Corrected").read_text().splitlines()[1:]
    notes = [
        [float(a), float(a) + float(d), float(p)]
        for a, d, p, _ in (line.split(",") for line in lines if line.strip())
    ]
    rows.append(
        {
            "audio": str(tonas.with_suffix(".wav")),
            "notes": notes,
            "origin": "mirdata fixture tonas/Deblas/01-D_AMairena",
        }
    )
    jams = json.loads((root / "guitarset/annotation/03_BN3-119-G_solo.jams").read_text())
    notes = sorted(
        [d["time"], d["time"] + d["duration"], d["value"]]
        for a in jams["annotations"]
        if a["namespace"] == "note_midi"
        for d in a["data"]
    )
    audio = root / "guitarset/audio_mono-mic/03_BN3-119-G_solo_mic.wav"
    rows.append(
        {
            "audio": str(audio),
            "notes": notes,
            "origin": "mirdata fixture guitarset 03_BN3-119-G_solo (mic)",
        }
    )
    for sax in sorted(root.glob("filosax/Participant */*/Sax.wav")):
        data = json.loads((sax.parent / "annotations.json").read_text())["notes"]
        notes = [[n["a_start_time"], n["a_end_time"], n["midi_pitch"]] for n in data]
        rows.append(
            {
                "audio": str(sax),
                "notes": notes,
                "origin": f"mirdata fixture filosax/{sax.parent.parent.name}/{sax.parent.name}",
            }
        )
    for row in rows:
        row["notes"] = inside(Path(row["audio"]), row["notes"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ssvd", type=Path, required=True)
    parser.add_argument("--mirdata", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = {
        "ssvd_dev": ssvd(args.ssvd / "train&valid"),
        "ssvd_test": ssvd(args.ssvd / "test"),
        "mirdata_dev": mirdata(args.mirdata),
    }
    for name, rows in sets.items():
        path = args.out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        print(f"{path}: {len(rows)} recordings, {sum(len(r['notes']) for r in rows)} notes")


if __name__ == "__main__":
    main()
