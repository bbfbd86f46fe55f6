"""JSONL speech manifests: one ``{"audio": path, "text": ..., "duration": ...}`` per line.

Relative audio paths are resolved against the manifest's own folder, so a data folder
can be moved or shared with its manifests intact.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from seqpipe.atomic import write_text
from seqpipe.errors import SeqpipeError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


def read_manifest(
    path: str | os.PathLike, required: tuple[str, ...] = ("audio", "text")
) -> list[dict[str, Any]]:
    """Read a manifest; audio paths come back absolute. Bad lines fail naming file:line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read manifest: {exc.strerror or exc}") from None
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SeqpipeError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
        if not isinstance(entry, dict) or any(key not in entry for key in required):
            expected = " and ".join(f"'{key}'" for key in required)
            raise SeqpipeError(f"{path}:{number}: expected an object with {expected}")
        audio = Path(entry["audio"])
        entry["audio"] = str(audio if audio.is_absolute() else path.parent / audio)
        entries.append(entry)
    return entries


def write_manifest(
    path: str | os.PathLike, entries: Iterable[dict[str, Any]], relative: bool = True
) -> Path:
    """Write entries atomically; audio paths are stored relative to the manifest when possible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    lines = []
    for entry in entries:
        entry = dict(entry)
        audio = Path(entry["audio"]).resolve()
        if relative:
            entry["audio"] = os.path.relpath(audio, base)
        else:
            entry["audio"] = str(audio)
        lines.append(json.dumps(entry, ensure_ascii=False))
    write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return path


def speaker_of(audio: str | os.PathLike) -> str | None:
    """The speaker in an FSDD-style name (``7_jackson_32.wav`` -> ``jackson``), else None."""
    match = FSDD_NAME.match(Path(audio).stem)
    return match.group(2) if match else None


def scan_directory(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """Find utterances under ``directory`` (recursive), sorted by path.

    An audio file with a same-named ``.txt`` beside it is transcribed by that file; an
    audio file named like the Free Spoken Digit Dataset (``{digit}_{speaker}_{take}``)
    is transcribed by its digit. Others are skipped.
    """
    from seqpipe.audio import audio_duration
    from seqpipe.text import ONES

    directory = Path(directory)
    if not directory.is_dir():
        raise SeqpipeError(f"{directory}: not a directory")
    entries = []
    for audio in sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        transcript = audio.with_suffix(".txt")
        fsdd = FSDD_NAME.match(audio.stem)
        if transcript.exists():
            text = " ".join(transcript.read_text().split())
        elif fsdd:
            text = ONES[int(fsdd.group(1))]
        else:
            continue
        entry = {"audio": str(audio), "text": text, "duration": round(audio_duration(audio), 3)}
        speaker = speaker_of(audio)
        if speaker:
            entry["speaker"] = speaker
        entries.append(entry)
    return entries


def split_speakers(
    entries: list[dict[str, Any]], held_out: Iterable[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split entries into (kept, held out) by their ``speaker`` field."""
    held = set(held_out)
    keep = [e for e in entries if e.get("speaker") not in held]
    out = [e for e in entries if e.get("speaker") in held]
    return keep, out


def choose_speakers(entries: list[dict[str, Any]], count: int, seed: int = 0) -> list[str]:
    """``count`` speakers drawn with ``seed``, taking turns between the sexes where known.

    Speakers are grouped by their entries' ``gender`` (unknown as a group of its own) and
    drawn from each group in turn, so four held-out speakers from a corpus of both sexes
    are two women and two men.
    """
    groups: dict[str, set[str]] = {}
    for entry in entries:
        if "speaker" not in entry:
            raise SeqpipeError(f"{entry['audio']}: no speaker to hold out by")
        groups.setdefault(str(entry.get("gender", "")), set()).add(entry["speaker"])
    speakers = set().union(*groups.values())
    if not 0 < count < len(speakers):
        raise SeqpipeError(
            f"cannot hold out {count} speakers of {len(speakers)}: at least one must stay"
        )
    rng = random.Random(seed)
    queues = [rng.sample(sorted(group), len(group)) for _, group in sorted(groups.items())]
    chosen: list[str] = []
    while len(chosen) < count:
        for queue in queues:
            while queue and queue[-1] in chosen:  # a speaker listed under two sexes
                queue.pop()
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    return sorted(chosen)


def write_split(
    output: str | os.PathLike,
    entries: list[dict[str, Any]],
    held_out: Iterable[str] = (),
    held_out_output: str | os.PathLike | None = None,
    relative: bool = True,
) -> list[str]:
    """Write ``entries`` less the ``held_out`` speakers to ``output``, and those speakers'
    to ``held_out_output`` (default: OUTPUT with ``.heldout`` before the suffix).

    Returns one summary line per manifest written.
    """
    held_out = sorted(set(held_out))
    unknown = sorted(set(held_out) - {e.get("speaker") for e in entries})
    if unknown:
        raise SeqpipeError(f"no utterances by speaker(s) {', '.join(unknown)} to hold out")
    kept, held = split_speakers(entries, held_out)
    written = [(Path(output), kept)]
    if held_out:
        out = Path(output)
        written.append(
            (Path(held_out_output or out.with_name(f"{out.stem}.heldout{out.suffix}")), held)
        )
    lines = []
    for path, part in written:
        write_manifest(path, part, relative=relative)
        speakers = sorted({e["speaker"] for e in part if "speaker" in e})
        named = f": {', '.join(speakers)}" if part is held else ""
        lines.append(
            f"{path}: {len(part)} utterances, {sum(e['duration'] for e in part) / 3600:.2f} h, "
            f"{len(speakers)} speakers{named}"
        )
    return lines
