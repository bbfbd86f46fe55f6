"""A tiny synthetic classification set: noisy sine tones, one pitch band per label.

Small enough to train on in seconds, hard enough that an untrained model scores at
chance; the tiny recipe (``seqpipe/recipes/tiny.yaml``, ``data: {generate: tones}``) and the training tests use it.
``python -m seqpipe.data.tones data/tones`` writes ``train.jsonl`` / ``valid.jsonl``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

TONES = {"low": 300.0, "mid": 900.0, "high": 2000.0}


def write_tone_dataset(
    folder: str | os.PathLike,
    per_label: dict[str, int] | None = None,
    sample_rate: int = 8000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write wavs and one manifest per split (``{"audio", "label"}`` lines); returns the manifests."""
    from seqpipe.atomic import write_text
    from seqpipe.audio import write_audio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    manifests = {}
    for split, count in (per_label or {"train": 8, "valid": 3}).items():
        lines = []
        for label, freq in TONES.items():
            for i in range(count):
                t = np.arange(int(sample_rate * rng.uniform(0.2, 0.5))) / sample_rate
                wave = 0.5 * np.sin(2 * np.pi * freq * rng.uniform(0.95, 1.05) * t)
                wave += 0.05 * rng.standard_normal(len(t))
                name = f"{split}_{label}_{i}.wav"
                write_audio(folder / name, wave.astype(np.float32), sample_rate)
                lines.append(json.dumps({"audio": name, "label": label}))
        manifests[split] = folder / f"{split}.jsonl"
        write_text(manifests[split], "\n".join(lines) + "\n")
    return manifests


if __name__ == "__main__":
    for split, path in write_tone_dataset(
        sys.argv[1] if len(sys.argv) > 1 else "data/tones"
    ).items():
        print(f"{split}: {path}")
