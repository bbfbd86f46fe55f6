"""The Markov-chain baseline the melody models must beat: order-k chains over (pitch, duration) events.

An event is a note ``(pitch, duration)`` or a rest ``(REST, duration)``, and every tune
ends with ``END``. Probabilities use interpolated Witten-Bell smoothing, backing off
from the last ``order`` events down to the unigram and finally to a uniform
distribution over every possible event (128 pitches + rest, times durations up to
``MAX_TICKS``), so an event never seen in training still gets a finite cost.
NLL per note = a tune's total NLL (nats) / its number of notes, as for the models.
:meth:`MarkovBaseline.sample` draws melodies from the fitted chain (from its seen events
only), so the chain's tunes can be scored like a model's.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from seqpipe.midi import Melody, Note

REST = -1
END = (None, None)
START = ("<s>", "<s>")
MAX_TICKS = 4 * 24 * 8  # uniform floor: durations up to 8 whole notes


def events(melody: Melody) -> list[tuple]:
    """Notes and rests in order, then END."""
    out: list[tuple] = []
    time = 0
    for n in melody.notes:
        if n.start > time:
            out.append((REST, n.start - time))
        out.append((n.pitch, n.duration))
        time = max(time, n.end)
    return [*out, END]


class MarkovBaseline:
    """Interpolated Witten-Bell n-gram model over events (``order`` = events of context)."""

    def __init__(self, order: int = 2):
        if order < 0:
            raise ValueError("order must be >= 0")
        self.order = order
        # counts[k][context of length k] = Counter of next events
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order + 1)]

    def fit(self, melodies: Iterable[Melody]) -> MarkovBaseline:
        for melody in melodies:
            seq = [START] * self.order + events(melody)
            for i in range(self.order, len(seq)):
                for k in range(self.order + 1):
                    self.counts[k][tuple(seq[i - k : i])][seq[i]] += 1
        # (counter, total count, distinct next events) per context, for fast lookups
        self.tables = [
            {ctx: (c, sum(c.values()), len(c)) for ctx, c in level.items()} for level in self.counts
        ]
        self.floor = 1.0 / ((128 + 1) * MAX_TICKS + 1)
        return self

    def prob(self, context: tuple, event: tuple) -> float:
        p = self.floor
        for k in range(self.order + 1):  # from the unigram up to the full context
            entry = self.tables[k].get(context[len(context) - k :] if k else ())
            if entry is None:
                break
            counter, total, types = entry
            p = (counter[event] + types * p) / (total + types)
        return p

    def nll(self, melody: Melody) -> float:
        """Total negative log-likelihood of one tune, in nats."""
        seq = [START] * self.order + events(melody)
        return -sum(
            math.log(self.prob(tuple(seq[i - self.order : i]), seq[i]))
            for i in range(self.order, len(seq))
        )

    def nll_per_note(self, melodies: Iterable[Melody]) -> float:
        """Sum of the tunes' NLL / sum of their notes (nats per note)."""
        total, notes = 0.0, 0
        for m in melodies:
            total += self.nll(m)
            notes += len(m.notes)
        return total / max(notes, 1)

    def sample(self, ticks: int, rng, time_signature=(4, 4)) -> Melody:
        """One melody of at most ``ticks`` ticks (the event that would overshoot ends it),
        drawn from the chain as its smoothing defines it: at each context length, from the
        counts with weight total / (total + types), else from the next shorter context,
        down to the unigram. ``END`` is never drawn. ``rng``: a :class:`random.Random`."""
        notes, time, seq = [], 0, [START] * self.order
        while True:
            event = self._draw(tuple(seq[len(seq) - self.order :]) if self.order else (), rng)
            pitch, duration = event
            if time + duration > ticks:
                return Melody(notes, time_signature=time_signature)
            if pitch != REST:
                notes.append(Note(pitch, time, duration))
            time += duration
            seq.append(event)

    def _draw(self, context: tuple, rng) -> tuple:
        levels = []
        for k in range(self.order + 1):
            entry = self.tables[k].get(context[len(context) - k :] if k else ())
            if entry is None:
                break
            levels.append(entry)
        while True:
            for counter, total, types in reversed(levels):
                if rng.random() < total / (total + types) or counter is levels[0][0]:
                    event = rng.choices(list(counter), list(counter.values()))[0]
                    break
            if event != END:
                return event
