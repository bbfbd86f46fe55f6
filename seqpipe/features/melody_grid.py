"""``melody_grid``: Magenta's melody encoding, one token per 16th-note grid step."""

from __future__ import annotations

from seqpipe.features.melody_tokens import MelodyEncoding
from seqpipe.midi import TPQ, Note
from seqpipe.types import PositiveInt


class GridEncoding(MelodyEncoding):
    """Magenta's melody encoding: one token per grid step, NOTE-on pitch / HOLD / REST.

    A 16th-note grid by default (``steps_per_quarter: 4``); onsets and offsets are
    rounded to it, so triplets are approximated (use ``melody_events`` to keep them).
    """

    def __init__(
        self, steps_per_quarter: PositiveInt = 4, min_pitch: int = 36, max_pitch: int = 96
    ):
        if TPQ % steps_per_quarter:
            from seqpipe.errors import SeqpipeError

            raise SeqpipeError(f"melody_grid: steps_per_quarter must divide {TPQ}")
        self.step_ticks = TPQ // steps_per_quarter
        super().__init__(min_pitch, max_pitch)

    def _add_body(self) -> None:
        self.hold = self._add("hold", ["hold"])
        self.rest = self._add("rest", ["rest"])

    def quantize(self, notes: list[Note]) -> list[tuple[int, int, int]]:
        """Notes -> (pitch, start step, end step) on the grid, still monophonic."""
        out: list[tuple[int, int, int]] = []
        for n in notes:
            start = round(n.start / self.step_ticks)
            end = max(start + 1, round(n.end / self.step_ticks))
            if out and start <= out[-1][1]:
                out.pop()  # two onsets on one step: the later note wins
            if out and out[-1][2] > start:
                out[-1] = (out[-1][0], out[-1][1], start)
            out.append((self.fold_pitch(n.pitch), start, end))
        return out

    def encode_notes(self, notes: list[Note]) -> list[int]:
        tokens: list[int] = []
        for pitch, start, end in self.quantize(notes):
            tokens += [self.rest] * (start - len(tokens))
            tokens.append(self.pitch_base + pitch - self.min_pitch)
            tokens += [self.hold] * (end - start - 1)
        return tokens

    def decode_notes(self, tokens: list[int]) -> list[Note]:
        notes: list[Note] = []
        sounding = False
        for step, t in enumerate(tokens):
            if self.kinds[t] == "pitch":
                pitch = self.min_pitch + t - self.pitch_base
                notes.append(Note(pitch, step * self.step_ticks, self.step_ticks))
                sounding = True
            elif t == self.hold and sounding:
                last = notes[-1]
                notes[-1] = Note(last.pitch, last.start, last.duration + self.step_ticks)
            else:
                sounding = False
        return notes

    def _advance_of(self, token: int) -> int:
        return self.step_ticks if self.kinds[token] in ("pitch", "hold", "rest") else 0

    def _may_follow(self, prev_kind: str, kind: str) -> bool:
        if prev_kind in ("tempo", "rest"):
            return kind in ("pitch", "rest", "eos")
        return kind in ("pitch", "hold", "rest", "eos")
