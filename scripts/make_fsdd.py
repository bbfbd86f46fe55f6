"""Manifests for spoken-digit classification from the Free Spoken Digit Dataset.

    python scripts/make_fsdd.py /work/shared/data/fsdd/recordings --out data/fsdd

Writes ``train.jsonl`` (speakers george, jackson, nicolas, yweweler; takes 0-44),
``valid.jsonl`` (the same speakers, takes 45-49: for early stopping) and ``test.jsonl``
(speaker theo, never trained on: the number to report). Lines are
``{"audio", "label", "speaker"}`` with the digit's word as label.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from seqpipe.data.manifest import write_manifest
from seqpipe.text import ONES

NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
TEST_SPEAKER = "theo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", type=Path)
    parser.add_argument("--out", type=Path, default=Path("data/fsdd"))
    args = parser.parse_args()
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for wav in sorted(args.recordings.glob("*.wav")):
        match = NAME.match(wav.stem)
        if not match:
            continue
        digit, speaker, take = int(match.group(1)), match.group(2), int(match.group(3))
        split = "test" if speaker == TEST_SPEAKER else ("valid" if take >= 45 else "train")
        splits[split].append({"audio": str(wav), "label": ONES[digit], "speaker": speaker})
    for split, entries in splits.items():
        path = write_manifest(args.out / f"{split}.jsonl", entries)
        print(f"{path}: {len(entries)} recordings")


if __name__ == "__main__":
    main()
