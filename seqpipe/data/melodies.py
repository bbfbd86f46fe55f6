"""Melody corpora: MIDI / ABC / MusicXML / kern files -> a JSONL file of note lists.

One tune per line (``seqpipe.midi.Melody.to_json``): loading 4,000 tunes takes well
under a second, and the split is a pure function of each tune's notes, so duplicates
(the same tune printed in two collections) always land in the same split and
re-running the conversion gives the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from seqpipe.atomic import atomic_open
from seqpipe.errors import ParameterError, SeqpipeError
from seqpipe.midi import TPQ, Melody, Note, polyphony, read_midi, skyline

MIDI_SUFFIXES = {".mid", ".midi"}
MUSIC21_SUFFIXES = {".abc", ".xml", ".musicxml", ".mxl", ".krn"}
FOLK_CORPORA = ("ryansMammoth", "oneills1850", "airdsAirs", "miscFolk")
MIN_NOTES = 8
MAX_POLYPHONY = 2.5  # mean notes per onset above this: chords, no melody line
SPLITS = {"test": 10, "valid": 5}  # percent; the rest is train


@dataclass
class Converted:
    """What one source file gave: tunes, and a one-line reason for each tune skipped."""

    melodies: list[Melody]
    skipped: list[str]


def music21_available() -> bool:
    try:
        import music21  # noqa: F401
    except ImportError:
        return False
    return True


def require_music21(what: str) -> None:
    if not music21_available():
        raise SeqpipeError(f"{what}: needs music21 (pip install 'seqpipe[music]')")


def find_files(folder: str | os.PathLike) -> list[Path]:
    """Every supported music file under ``folder``, sorted for a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SeqpipeError(f"{folder}: not a folder")
    suffixes = MIDI_SUFFIXES | MUSIC21_SUFFIXES
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def corpus_files(name: str) -> list[Path]:
    """The files of one of music21's bundled collections (e.g. 'oneills1850')."""
    require_music21(f"corpus '{name}'")
    from music21 import corpus

    files = sorted(Path(p) for p in corpus.getComposer(name))
    if not files:
        raise SeqpipeError(f"music21 corpus '{name}': no such collection")
    return files


def check(melody: Melody, where: str) -> str | None:
    """Why a melody is unusable, or None."""
    poly = melody.meta.pop("polyphony", 1.0)
    if poly > MAX_POLYPHONY:
        return f"{where}: polyphony only (mean {poly:.1f} notes per onset, no melody line)"
    if not melody.notes:
        return f"{where}: empty (no notes)"
    if len(melody.notes) < MIN_NOTES:
        return f"{where}: too short ({len(melody.notes)} notes)"
    return None


def convert_file(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Converted:
    """Read one file (a MIDI file, or a score/opus music21 can parse) into melodies."""
    path = Path(path)
    where = str(path.relative_to(root)) if root else str(path)
    if path.suffix.lower() in MIDI_SUFFIXES:
        try:
            melody = read_midi(path)
        except SeqpipeError as exc:
            return Converted([], [f"{where}: {str(exc).split(': ', 1)[-1]}"])
        melody.name = where
        reason = check(melody, where)
        return Converted([] if reason else [melody], [reason] if reason else [])
    require_music21(where)
    from music21 import converter

    try:
        parsed = converter.parse(str(path))
    except Exception as exc:  # music21 raises many types on bad input
        return Converted([], [f"{where}: cannot parse ({type(exc).__name__}: {exc})"[:200]])
    scores = list(parsed.scores) if hasattr(parsed, "scores") else [parsed]
    out = Converted([], [])
    for i, score in enumerate(scores):
        number = getattr(score.metadata, "number", None) if score.metadata else None
        tune = f"{where}#{number or i + 1}" if len(scores) > 1 else where
        try:
            melody = melody_from_score(score, tune)
        except Exception as exc:
            out.skipped.append(f"{tune}: cannot convert ({type(exc).__name__}: {exc})"[:200])
            continue
        reason = check(melody, tune)
        if reason:
            out.skipped.append(reason)
        else:
            out.melodies.append(melody)
    return out


def melody_from_score(score, name: str) -> Melody:
    """A music21 score -> the highest voice, with ties merged and grace notes dropped."""
    from music21 import key as m21key
    from music21 import meter, tempo

    from seqpipe.theory import parse_key

    flat = score.flatten()
    notes: list[Note] = []
    last_by_pitch: dict[int, int] = {}
    for element in flat.notes:
        if element.duration.isGrace or element.quarterLength <= 0:
            continue
        start = round(float(element.offset) * TPQ)
        length = round(float(element.quarterLength) * TPQ)
        tie = element.tie.type if element.tie is not None else None
        for pitch in element.pitches:
            midi = int(pitch.midi)
            prev = last_by_pitch.get(midi)
            if tie in ("stop", "continue") and prev is not None and notes[prev].end == start:
                notes[prev] = Note(midi, notes[prev].start, notes[prev].duration + length)
                continue
            last_by_pitch[midi] = len(notes)
            notes.append(Note(midi, start, length))
    poly = polyphony(notes)
    melody = skyline(notes)
    if melody:
        first = melody[0].start
        melody = [Note(n.pitch, n.start - first, n.duration) for n in melody]
    key = None
    for k in flat.getElementsByClass(m21key.KeySignature):
        k = k if isinstance(k, m21key.Key) else k.asKey("major")
        try:
            key = parse_key(f"{k.tonic.name.replace('-', 'b')} {k.mode}")
        except SeqpipeError:
            continue
        break
    signature = (4, 4)
    for ts in flat.getElementsByClass(meter.TimeSignature):
        if ts.numerator > 1:  # ABC pickups show up as a 1/16 "meter"
            signature = (ts.numerator, ts.denominator)
            break
    bpm = 120.0
    for mark in flat.getElementsByClass(tempo.MetronomeMark):
        if mark.number:
            bpm = float(mark.getQuarterBPM())
            break
    return Melody(melody, key, signature, bpm, name, meta={"polyphony": round(poly, 2)})


def fingerprint(melody: Melody) -> str:
    """Same tune (in any key, starting anywhere in time) -> same hash."""
    if not melody.notes:
        return "empty"
    p0 = melody.notes[0].pitch
    text = ";".join(f"{n.pitch - p0},{n.start},{n.duration}" for n in melody.notes)
    return hashlib.sha1(text.encode()).hexdigest()


def split_of(melody: Melody) -> str:
    """Deterministic split from the tune's notes: test 10%, valid 5%, train 85%."""
    bucket = int(fingerprint(melody)[:8], 16) % 100
    edge = 0
    for name, percent in SPLITS.items():
        edge += percent
        if bucket < edge:
            return name
    return "train"


def write_jsonl(melodies: list[Melody], path: str | os.PathLike) -> Path:
    with atomic_open(path) as f:
        for m in melodies:
            f.write(json.dumps(m.to_json(), separators=(",", ":")) + "\n")
    return Path(path)


def read_jsonl(path: str | os.PathLike) -> list[Melody]:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read melodies: {exc.strerror or exc}") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(Melody.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise SeqpipeError(f"{path}: line {number}: not a melody record ({exc})") from None
    return out


def load_melodies(source: str | os.PathLike) -> list[Melody]:
    """A ``.jsonl`` written by ``seqpipe data melodies``, a music file, or a folder of them."""
    source = Path(source)
    if source.suffix == ".jsonl":
        return read_jsonl(source)
    if source.is_dir():
        melodies = []
        for path in find_files(source):
            melodies.extend(convert_file(path, source).melodies)
        if not melodies:
            raise SeqpipeError(f"{source}: no usable melodies found")
        return melodies
    if not source.exists():
        raise SeqpipeError(f"{source}: no such file or folder")
    converted = convert_file(source)
    if not converted.melodies:
        raise SeqpipeError(converted.skipped[0] if converted.skipped else f"{source}: no melodies")
    return converted.melodies


def deduplicate(melodies: list[Melody]) -> tuple[list[Melody], int]:
    """Drop exact repeats (same notes up to transposition); returns (kept, number dropped)."""
    seen: set[str] = set()
    kept = []
    for m in melodies:
        fp = fingerprint(m)
        if fp not in seen:
            seen.add(fp)
            kept.append(m)
    return kept, len(melodies) - len(kept)


def iter_converted(jobs: list[tuple[Path, Path | None]], workers: int = 1) -> Iterator[Converted]:
    """Convert files in order, in ``workers`` processes (music21 parsing is the slow part)."""
    if workers <= 1:
        for path, root in jobs:
            yield convert_file(path, root)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(convert_file, *zip(*jobs, strict=False), chunksize=4)


def build_dataset(
    folders: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    corpora: Iterable[str] = (),
    jobs: int = 1,
    on_file: Callable[[Converted], None] | None = None,
) -> dict:
    """Convert ``folders`` (recursive music files) and music21 ``corpora`` (default with
    neither: :data:`FOLK_CORPORA`) into OUT/train|valid|test.jsonl and OUT/stats.json;
    returns the stats. ``on_file`` sees each file's result (its tunes and skip reasons)."""
    from seqpipe.atomic import write_text

    folders, corpora = list(folders), list(corpora)
    if not folders and not corpora:
        corpora = list(FOLK_CORPORA)
    jobs_list = [(f, f.parent.parent) for name in corpora for f in corpus_files(name)]
    jobs_list += [(f, Path(folder)) for folder in folders for f in find_files(folder)]
    if not jobs_list:
        raise ParameterError("folders", "no music files found")
    tunes, skipped = [], 0
    for converted in iter_converted(jobs_list, workers=jobs):
        tunes += converted.melodies
        skipped += len(converted.skipped)
        if on_file is not None:
            on_file(converted)
    tunes, duplicates = deduplicate(tunes)
    splits: dict[str, list] = {"train": [], "valid": [], "test": []}
    for tune in tunes:
        splits[split_of(tune)].append(tune)
    for name, items in splits.items():
        write_jsonl(items, Path(out) / f"{name}.jsonl")
    stats = {
        "sources": corpora + [str(f) for f in folders],
        "files": len(jobs_list),
        "tunes": len(tunes),
        "skipped": skipped,
        "duplicates_dropped": duplicates,
        "notes": sum(len(t.notes) for t in tunes),
        **{f"{name}_tunes": len(items) for name, items in splits.items()},
    }
    write_text(Path(out) / "stats.json", json.dumps(stats, indent=2) + "\n")
    return stats
