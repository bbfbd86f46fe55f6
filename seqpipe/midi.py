"""Monophonic melodies: the note list every music component shares, and MIDI I/O.

Times are integer ticks at :data:`TPQ` ticks per quarter note, so straight 32nds
(3), 16ths (6), 16th triplets (4) and 8th triplets (8) are all exact and grid
arithmetic never suffers from float rounding. MIDI goes through pretty_midi.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seqpipe.atomic import atomic_write
from seqpipe.errors import SeqpipeError

TPQ = 24  # ticks per quarter note


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI number
    start: int  # ticks
    duration: int  # ticks, > 0

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass
class Melody:
    """One monophonic line plus the facts used as conditioning tokens."""

    notes: list[Note]
    key: str | None = None  # canonical name from seqpipe.theory, e.g. "G major"
    time_signature: tuple[int, int] = (4, 4)
    tempo: float = 120.0  # quarter notes per minute
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.notes[-1].end if self.notes else 0

    @property
    def ticks_per_bar(self) -> int:
        num, den = self.time_signature
        return num * TPQ * 4 // den

    def transpose(self, semitones: int) -> Melody:
        from seqpipe.theory import transpose_key

        notes = [replace(n, pitch=n.pitch + semitones) for n in self.notes]
        key = transpose_key(self.key, semitones) if self.key else None
        return replace(self, notes=notes, key=key)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "time_signature": list(self.time_signature),
            "tempo": round(self.tempo, 2),
            "notes": [[n.pitch, n.start, n.duration] for n in self.notes],
            **({"meta": self.meta} if self.meta else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Melody:
        return cls(
            notes=[Note(int(p), int(s), int(d)) for p, s, d in data["notes"]],
            key=data.get("key"),
            time_signature=tuple(data.get("time_signature") or (4, 4)),
            tempo=float(data.get("tempo") or 120.0),
            name=data.get("name", ""),
            meta=data.get("meta") or {},
        )


def skyline(notes: list[Note]) -> list[Note]:
    """Keep the highest voice: at each onset the top note, cutting notes that a higher one interrupts."""
    out: list[Note] = []
    for note in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        if note.duration <= 0:
            continue
        if out and note.start == out[-1].start:
            continue  # a lower note of the same chord
        if out and note.start < out[-1].end:
            if note.pitch <= out[-1].pitch:
                continue  # under a sounding higher note
            out[-1] = replace(out[-1], duration=note.start - out[-1].start)
        out.append(note)
    return out


def polyphony(notes: list[Note]) -> float:
    """Mean number of notes starting together: 1.0 for a melody, about 3+ for block chords."""
    onsets: dict[int, int] = {}
    for n in notes:
        onsets[n.start] = onsets.get(n.start, 0) + 1
    return sum(onsets.values()) / max(len(onsets), 1)


def read_midi(path: str | os.PathLike, instrument: int | None = None) -> Melody:
    """Read a MIDI file into a melody (highest voice of all pitched tracks, or one instrument).

    Raises SeqpipeError for unreadable, empty or drum-only files.
    """
    import pretty_midi

    path = Path(path)
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types on corrupt files
        reason = "the file ends early" if isinstance(exc, EOFError) else str(exc).strip()
        raise SeqpipeError(
            f"{path}: cannot read MIDI ({type(exc).__name__}: {reason or 'no detail'})"
        ) from None
    if not any(inst.notes for inst in pm.instruments):
        raise SeqpipeError(f"{path}: no notes")
    pitched = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    if not pitched:
        raise SeqpipeError(f"{path}: drums only")
    if instrument is not None:
        if not 0 <= instrument < len(pitched):
            raise SeqpipeError(
                f"{path}: no instrument {instrument} (it has {len(pitched)} pitched instruments)"
            )
        pitched = [pitched[instrument]]

    def tick(seconds: float) -> int:
        return round(pm.time_to_tick(seconds) * TPQ / pm.resolution)

    notes = []
    for inst in pitched:
        for n in inst.notes:
            start, end = tick(n.start), tick(n.end)
            if end > start:
                notes.append(Note(n.pitch, start, end - start))
    if not notes:
        raise SeqpipeError(f"{path}: no notes")
    poly = polyphony(notes)
    melody = skyline(notes)
    first = melody[0].start
    melody = [replace(n, start=n.start - first) for n in melody]
    tempo = pm.get_tempo_changes()[1]
    ts = pm.time_signature_changes
    key = None
    if pm.key_signature_changes:
        from seqpipe.theory import key_from_midi_number

        key = key_from_midi_number(pm.key_signature_changes[0].key_number)
    return Melody(
        notes=melody,
        key=key,
        time_signature=(ts[0].numerator, ts[0].denominator) if ts else (4, 4),
        tempo=float(tempo[0]) if len(tempo) else 120.0,
        name=path.stem,
        meta={"polyphony": round(poly, 2)},
    )


def to_pretty_midi(melody: Melody, program: int = 0, velocity: int = 90):
    """A one-instrument PrettyMIDI object with tempo, meter and key signature."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=melody.tempo)
    seconds_per_tick = 60.0 / melody.tempo / TPQ
    num, den = melody.time_signature
    pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    if melody.key:
        from seqpipe.theory import key_to_midi_number

        pm.key_signature_changes.append(
            pretty_midi.KeySignature(key_to_midi_number(melody.key), 0.0)
        )
    inst = pretty_midi.Instrument(program=program, name=melody.name or "melody")
    for n in melody.notes:
        inst.notes.append(
            pretty_midi.Note(
                velocity=velocity,
                pitch=n.pitch,
                start=n.start * seconds_per_tick,
                end=n.end * seconds_per_tick,
            )
        )
    pm.instruments.append(inst)
    return pm


def write_midi(melody: Melody, path: str | os.PathLike, program: int = 0) -> Path:
    """Write a Standard MIDI file atomically (temp file + rename)."""
    path = Path(path)
    pm = to_pretty_midi(melody, program=program)
    return atomic_write(path, pm.write)
