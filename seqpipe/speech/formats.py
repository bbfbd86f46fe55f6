"""A file's transcript (segments, words, times, confidences) and its output formats.

``txt`` is the text alone; ``json`` everything, in whisper's shape (``text``,
``language``, ``segments[]`` with ``id``/``start``/``end``/``text``/``words[]``, each word
with ``word``/``start``/``end``/``probability``) plus our own keys (``file``, ``duration``,
``model``, ``confidence``); ``tsv`` one segment a line (start and end in integer
milliseconds, as whisper writes it, then the text and its confidence); ``srt``/``vtt``
subtitle cues laid out by :class:`Layout`. Every confidence is the mean of word
confidences, so the file's, a segment's and a cue's agree in every format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from seqpipe.speech.alignment import Word

FORMATS = ("txt", "json", "srt", "vtt", "tsv")


@dataclass(frozen=True)
class Layout:
    """How subtitle cues are cut: at most ``max_line_count`` lines of ``max_line_width``
    characters and ``max_seconds`` long; a cue also closes at a pause of ``pause_seconds``
    and at a segment's end. Lines break between words, never inside one (a word longer
    than a line gets a line of its own)."""

    max_line_width: int = 42
    max_line_count: int = 2
    max_seconds: float = 6.0
    pause_seconds: float = 0.5


def mean_confidence(words: list[Word]) -> float | None:
    """The mean of the words' confidences (NaN ones left out), or None without any."""
    known = [w.confidence for w in words if not math.isnan(w.confidence)]
    return round(sum(known) / len(known), 3) if known else None


def wrap(words: list[str], width: int) -> list[str]:
    """``words`` as lines of at most ``width`` characters, broken between words."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def fits(words: list[Word], layout: Layout) -> bool:
    lines = wrap([w.word for w in words], layout.max_line_width)
    return len(lines) <= layout.max_line_count and (
        words[-1].end - words[0].start <= layout.max_seconds or len(words) == 1
    )


def cue_groups(words: list[Word], layout: Layout) -> list[list[Word]]:
    """``words`` in cues: a new cue at a pause, or where the next word would not fit."""
    groups: list[list[Word]] = []
    for word in words:
        if groups:
            current = groups[-1]
            paused = word.start - current[-1].end >= layout.pause_seconds
            if not paused and fits([*current, word], layout):
                current.append(word)
                continue
        groups.append([word])
    return groups


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)

    def to_dict(self, id: int = 0) -> dict:
        return {
            "id": id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "confidence": mean_confidence(self.words),
            "words": [w.to_dict() for w in self.words],
        }


@dataclass
class Transcript:
    path: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    model: str = ""
    language: str = "en"

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict:
        return {
            "file": self.path,
            "duration": round(self.duration, 3),
            "model": self.model,
            "language": self.language,
            "text": self.text,
            "confidence": mean_confidence([w for s in self.segments for w in s.words]),
            "segments": [s.to_dict(i) for i, s in enumerate(self.spoken())],
        }

    def spoken(self) -> list[Segment]:
        """The segments with text (a chunk the model heard nothing in has none)."""
        return [s for s in self.segments if s.text]

    def cues(self, layout: Layout | None = None) -> list[tuple[float, float, str]]:
        """(start, end, text) subtitle cues laid out by ``layout``, monotonic and inside
        [0, duration]; a cue's lines are joined by newlines."""
        layout = layout or Layout()
        cues: list[tuple[float, float, str]] = []
        for seg in self.spoken():
            groups = cue_groups(seg.words, layout)
            spans = [(g[0].start, g[-1].end, [w.word for w in g]) for g in groups]
            for start, end, words in spans or [(seg.start, seg.end, seg.text.split())]:
                start = min(max(start, cues[-1][1] if cues else 0.0), self.duration)
                end = min(max(end, start + 0.01), self.duration)
                cues.append((start, end, "\n".join(wrap(words, layout.max_line_width))))
        return cues

    def tsv(self) -> str:
        """whisper's tsv (start, end in ms, text) with each segment's confidence added."""
        rows = ["start\tend\ttext\tconfidence"]
        for seg in self.spoken():
            conf = mean_confidence(seg.words)
            shown = "" if conf is None else f"{conf:.3f}"
            text = seg.text.replace("\t", " ")
            rows.append(f"{round(seg.start * 1000)}\t{round(seg.end * 1000)}\t{text}\t{shown}")
        return "\n".join(rows) + "\n"

    def render(self, fmt: str, layout: Layout | None = None) -> str:
        """The transcript as ``fmt`` (one of ``FORMATS``); ``layout``: subtitle cues."""
        if fmt == "txt":
            return self.text + "\n"
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2) + "\n"
        if fmt == "srt":  # index, times with a comma, text, blank line (as srt.compose)
            return "".join(
                f"{i}\n{_time(s, ',')} --> {_time(e, ',')}\n{t}\n\n"
                for i, (s, e, t) in enumerate(self.cues(layout), 1)
            )
        if fmt == "vtt":
            body = "".join(f"{_time(s)} --> {_time(e)}\n{t}\n\n" for s, e, t in self.cues(layout))
            return "WEBVTT\n\n" + body
        if fmt == "tsv":
            return self.tsv()
        raise ValueError(f"unknown format {fmt!r}")


def _time(seconds: float, decimal: str = ".") -> str:
    """HH:MM:SS.mmm (WebVTT), or with ``decimal=","`` HH:MM:SS,mmm (SubRip)."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"
