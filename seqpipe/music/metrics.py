"""Melody statistics for judging generated tunes against real ones.

Distribution similarity follows Yang & Lerch (2018), "On the evaluation of generative
models in music": each melody gets a feature vector; for each feature we collect the
intra-set distances (between held-out melodies) and the inter-set distances (held-out
vs generated), smooth both with a Gaussian KDE, and report their KL divergence and
overlapping area. Overlap 1 / KL 0 means the generated set is as close to the
held-out set as the held-out melodies are to each other.

Form is measured per melody (:data:`STRUCTURE`): the longest phrase it repeats within
itself, the share of its bars that repeat an earlier bar note for note, and how many
notes and distinct pitch classes its bars hold. :func:`crop` cuts real tunes to the
generated melodies' length first, so both are measured over the same span.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from seqpipe.midi import TPQ, Melody, Note

LENGTH_CLASSES = [3, 4, 6, 8, 9, 12, 16, 18, 24, 36, 48, 72, 96]  # ticks: 32nd .. whole


def pitch_class_histogram(m: Melody) -> np.ndarray:
    h = np.zeros(12)
    for n in m.notes:
        h[n.pitch % 12] += 1
    return h / max(h.sum(), 1)


def pitch_range(m: Melody) -> np.ndarray:
    pitches = [n.pitch for n in m.notes]
    return np.array([max(pitches) - min(pitches) if pitches else 0.0])


def interval_histogram(m: Melody) -> np.ndarray:
    """Successive pitch intervals, -12..+12 semitones (larger ones clipped)."""
    h = np.zeros(25)
    for a, b in zip(m.notes, m.notes[1:], strict=False):
        h[int(np.clip(b.pitch - a.pitch, -12, 12)) + 12] += 1
    return h / max(h.sum(), 1)


def note_length_histogram(m: Melody) -> np.ndarray:
    """Durations snapped to the nearest of 13 classes from a 32nd to a whole note."""
    h = np.zeros(len(LENGTH_CLASSES))
    classes = np.array(LENGTH_CLASSES)
    for n in m.notes:
        h[int(np.abs(classes - n.duration).argmin())] += 1
    return h / max(h.sum(), 1)


FEATURES: dict[str, Callable[[Melody], np.ndarray]] = {
    "pitch-class histogram": pitch_class_histogram,
    "pitch range": pitch_range,
    "interval histogram": interval_histogram,
    "note-length histogram": note_length_histogram,
}


def _distances(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Pairwise Euclidean distances within ``a`` (upper triangle) or between ``a`` and ``b``."""
    if b is None:
        d = np.linalg.norm(a[:, None] - a[None], axis=-1)
        return d[np.triu_indices(len(a), 1)]
    return np.linalg.norm(a[:, None] - b[None], axis=-1).ravel()


def _kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    from scipy.stats import gaussian_kde

    if values.size < 3 or np.ptp(values) == 0:  # a KDE needs spread: jitter a few copies
        values = np.concatenate([values] * 3) + np.random.default_rng(0).normal(
            0, 1e-3, 3 * values.size
        )
    density = gaussian_kde(values)(grid)
    return density / max(density.sum(), 1e-12)


def similarity(reference: list[Melody], other: list[Melody]) -> dict[str, tuple[float, float]]:
    """Per feature: (KL(intra-reference || inter), overlapping area), as in Yang & Lerch 2018."""
    out = {}
    for name, feature in FEATURES.items():
        ref = np.stack([feature(m) for m in reference])
        oth = np.stack([feature(m) for m in other])
        intra, inter = _distances(ref), _distances(ref, oth)
        grid = np.linspace(0, max(intra.max(), inter.max()) * 1.1 + 1e-9, 512)
        p, q = _kde(intra, grid), _kde(inter, grid)
        kl = float(np.sum(p * np.log((p + 1e-10) / (q + 1e-10))))
        out[name] = (kl, float(np.minimum(p, q).sum()))
    return out


def mean_feature(melodies: list[Melody], name: str) -> float:
    """A readable summary next to the table: mean pitch range in semitones etc."""
    return float(np.mean([FEATURES[name](m)[0] for m in melodies]))


def _steps(melody: Melody) -> list[tuple[int, int]]:
    """A melody as (interval, duration) steps, so transposed copies match too."""
    notes = melody.notes
    return [(b.pitch - a.pitch, a.duration) for a, b in zip(notes, notes[1:], strict=False)]


class NgramIndex:
    """Longest run of notes a melody shares with any training tune (transposition-invariant).

    Training tunes are indexed by every run of ``K`` steps; a query extends each seed
    hit as far as it goes. Shorter matches are checked with plain sets.
    """

    K = 4

    def __init__(self, training: list[Melody]):
        self.steps = [_steps(m) for m in training]
        self.index: dict[tuple, list[tuple[int, int]]] = {}
        self.short: list[set[tuple]] = [set() for _ in range(self.K)]
        for t, steps in enumerate(self.steps):
            for i in range(len(steps)):
                for k in range(1, self.K):
                    if i + k <= len(steps):
                        self.short[k].add(tuple(steps[i : i + k]))
                if i + self.K <= len(steps):
                    self.index.setdefault(tuple(steps[i : i + self.K]), []).append((t, i))

    def longest_match(self, melody: Melody) -> int:
        """In notes: a run of s matching steps is s + 1 notes."""
        steps = _steps(melody)
        best = 0
        for k in range(1, self.K):
            if any(tuple(steps[i : i + k]) in self.short[k] for i in range(len(steps) - k + 1)):
                best = k
        for i in range(len(steps) - self.K + 1):
            for t, j in self.index.get(tuple(steps[i : i + self.K]), ()):
                other, n = self.steps[t], self.K
                while i + n < len(steps) and j + n < len(other) and steps[i + n] == other[j + n]:
                    n += 1
                best = max(best, n)
        return best + 1 if melody.notes else 0


def crop(melody: Melody, bars: int) -> Melody:
    """The melody's first ``bars`` bars (notes starting in them, cut at the bar line)."""
    from dataclasses import replace

    end = bars * melody.ticks_per_bar
    notes = [replace(n, duration=min(n.end, end) - n.start) for n in melody.notes if n.start < end]
    return replace(melody, notes=notes)


def _bars_of(melody: Melody) -> list[list[Note]]:
    """Notes grouped by the bar they start in (empty bars included), up to the last note."""
    if not melody.notes:
        return []
    size = melody.ticks_per_bar
    out: list[list[Note]] = [[] for _ in range(-(-melody.end // size))]
    for n in melody.notes:
        out[n.start // size].append(n)
    return out


def longest_self_repeat(melody: Melody) -> int:
    """In notes: the longest phrase that occurs twice in the melody without overlapping.

    Phrases are compared as (interval, duration) steps, so a repeat a tone higher (a
    sequence) counts too. For every shift ``d``, the longest run of steps equal to
    those ``d`` earlier, capped at ``d`` (a longer run would overlap itself).
    """
    steps = np.array([i * 1000 + d for i, d in _steps(melody)], dtype=np.int64)
    best = 0
    for d in range(1, len(steps)):
        same = np.concatenate([[False], steps[d:] == steps[:-d], [False]])
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        if edges.size:
            best = max(best, min(int((edges[1::2] - edges[::2]).max()), d))
    return best + 1 if best else min(len(melody.notes), 1)


def repeated_bar_share(melody: Melody) -> float:
    """Share of the bars holding notes that repeat an earlier bar exactly (pitches,
    onsets within the bar, durations)."""
    seen, repeats, filled = set(), 0, 0
    size = melody.ticks_per_bar
    for i, bar in enumerate(_bars_of(melody)):
        if not bar:
            continue
        content = tuple((n.pitch, n.start - i * size, n.duration) for n in bar)
        filled += 1
        repeats += content in seen
        seen.add(content)
    return repeats / max(filled, 1)


def notes_per_bar(melody: Melody) -> float:
    bars_ = _bars_of(melody)
    return len(melody.notes) / max(len(bars_), 1)


def pitch_classes_per_bar(melody: Melody) -> float:
    """Mean number of distinct pitch classes in the bars that hold notes."""
    counts = [len({n.pitch % 12 for n in bar}) for bar in _bars_of(melody) if bar]
    return float(np.mean(counts)) if counts else 0.0


STRUCTURE: dict[str, Callable[[Melody], float]] = {
    "longest self-repeated phrase (notes)": longest_self_repeat,
    "bars repeating an earlier bar (%)": lambda m: 100 * repeated_bar_share(m),
    "notes per bar": notes_per_bar,
    "pitch classes per bar": pitch_classes_per_bar,
}


def bars(melody: Melody) -> float:
    return melody.end / melody.ticks_per_bar if melody.notes else 0.0


def seconds_per_tick(melody: Melody) -> float:
    return 60.0 / melody.tempo / TPQ
