"""``melody_events``: NOTE pitch, DURATION and TIME-SHIFT tokens, exact to 1/24 of a quarter.

A note is ``note:P dur:D`` (time moves on by D); a rest is ``shift:S``. Durations and
shifts come from every multiple of a 32nd (3 ticks) or a 16th triplet (4 ticks) up
to a whole note, so straight, dotted, double-dotted and triplet values are all exact;
longer values are written as several tokens that add up (``dur:96 dur:48``). Unlike
the grid encoding this never rounds triplets onto 16ths, and a note costs two
tokens however long it is.
"""

from __future__ import annotations

from seqpipe.features.melody_tokens import MelodyEncoding
from seqpipe.midi import TPQ, Note

MAX_TICKS = 4 * TPQ
VALUES = [d for d in range(1, MAX_TICKS + 1) if d % 3 == 0 or d % 4 == 0]


def split_ticks(ticks: int) -> list[int]:
    """Greedy sum of allowed values; a remainder under 3 ticks (a 32nd) is rounded away."""
    parts: list[int] = []
    while ticks >= 3:
        part = max(v for v in VALUES if v <= ticks)
        parts.append(part)
        ticks -= part
    return parts


class EventEncoding(MelodyEncoding):
    """Pitch, duration and time-shift tokens (see module docstring)."""

    def __init__(self, min_pitch: int = 36, max_pitch: int = 96):
        super().__init__(min_pitch, max_pitch)

    def _add_body(self) -> None:
        self.dur_base = self._add("dur", [f"dur:{v}" for v in VALUES])
        self.shift_base = self._add("shift", [f"shift:{v}" for v in VALUES])

    def encode_notes(self, notes: list[Note]) -> list[int]:
        tokens: list[int] = []
        time = 0
        for n in notes:
            start = max(n.start, time)
            for part in split_ticks(start - time):
                tokens.append(self.shift_base + VALUES.index(part))
                time += part
            duration = max(n.end - time, 3)
            tokens.append(self.pitch_base + self.fold_pitch(n.pitch) - self.min_pitch)
            for part in split_ticks(duration):
                tokens.append(self.dur_base + VALUES.index(part))
                time += part
        return tokens

    def decode_notes(self, tokens: list[int]) -> list[Note]:
        notes: list[Note] = []
        time = 0
        pitch = None  # a note token waiting for (more of) its duration
        for t in tokens:
            kind = self.kinds[t]
            if kind == "pitch":
                pitch = self.min_pitch + t - self.pitch_base
                notes.append(Note(pitch, time, 0))
            elif kind == "dur" and pitch is not None:
                last = notes[-1]
                notes[-1] = Note(last.pitch, last.start, last.duration + VALUES[t - self.dur_base])
                time += VALUES[t - self.dur_base]
            elif kind == "shift":
                pitch = None
                time += VALUES[t - self.shift_base]
        return [n for n in notes if n.duration > 0]

    def _advance_of(self, token: int) -> int:
        kind = self.kinds[token]
        if kind == "dur":
            return VALUES[token - self.dur_base]
        if kind == "shift":
            return VALUES[token - self.shift_base]
        return 0

    def _may_follow(self, prev_kind: str, kind: str) -> bool:
        if prev_kind == "pitch":
            return kind == "dur"
        if prev_kind == "dur":
            return kind in ("pitch", "dur", "shift", "eos")
        return kind in ("pitch", "shift", "eos")  # after tempo or shift
