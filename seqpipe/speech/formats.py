"""A file's transcript (segments, words, times, confidences) and its output formats.

``txt`` is the text alone, ``json`` everything, ``srt``/``vtt`` subtitle cues built
from the word timings: a cue closes at a segment boundary, after ``CUE_SECONDS`` or
``CUE_CHARS``, so subtitles stay readable however long a VAD segment is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from seqpipe.speech.alignment import Word

FORMATS = ("txt", "json", "srt", "vtt")
CUE_SECONDS = 6.0
CUE_CHARS = 84


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        confidences = [w.confidence for w in self.words if w.confidence == w.confidence]
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "confidence": round(sum(confidences) / len(confidences), 3) if confidences else None,
            "words": [w.to_dict() for w in self.words],
        }


@dataclass
class Transcript:
    path: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    model: str = ""

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
            "text": self.text,
            "segments": [s.to_dict() for s in self.segments],
        }

    def cues(self) -> list[tuple[float, float, str]]:
        """(start, end, text) subtitle cues, monotonic and inside [0, duration]."""
        cues: list[tuple[float, float, str]] = []
        for seg in self.segments:
            if not seg.text:
                continue
            groups: list[list[Word]] = []
            for word in seg.words:
                if groups:
                    current = groups[-1]
                    text_len = sum(len(w.word) + 1 for w in current) + len(word.word)
                    if word.end - current[0].start <= CUE_SECONDS and text_len <= CUE_CHARS:
                        current.append(word)
                        continue
                groups.append([word])
            spans = [(g[0].start, g[-1].end, " ".join(w.word for w in g)) for g in groups]
            for start, end, text in spans or [(seg.start, seg.end, seg.text)]:
                start = min(max(start, cues[-1][1] if cues else 0.0), self.duration)
                end = min(max(end, start + 0.01), self.duration)
                cues.append((start, end, text))
        return cues

    def render(self, fmt: str) -> str:
        if fmt == "txt":
            return self.text + "\n"
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2) + "\n"
        if fmt == "srt":  # index, times with a comma, text, blank line (as srt.compose)
            return "".join(
                f"{i}\n{_time(s, ',')} --> {_time(e, ',')}\n{t}\n\n"
                for i, (s, e, t) in enumerate(self.cues(), 1)
            )
        if fmt == "vtt":
            body = "".join(f"{_time(s)} --> {_time(e)}\n{t}\n\n" for s, e, t in self.cues())
            return "WEBVTT\n\n" + body
        raise ValueError(f"unknown format {fmt!r}")


def _time(seconds: float, decimal: str = ".") -> str:
    """HH:MM:SS.mmm (WebVTT), or with ``decimal=","`` HH:MM:SS,mmm (SubRip)."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"
