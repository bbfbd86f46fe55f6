"""Per-word start/end times and confidences from CTC posteriors.

A decoder says which frame *emitted* each character; that is a spike, not a span.
Forced alignment (``torchaudio.functional.forced_align``) of the decoded transcript
against the same posteriors gives every token the frames it owns, so a word runs
from its first character's first frame to its last character's last frame. The
confidence is the mean posterior of the word's characters over those frames: a
number in [0, 1] that is low where the model hesitated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from seqpipe.decoders.hypothesis import Hypothesis, TokenText


@dataclass
class Word:
    word: str
    start: float  # seconds
    end: float
    confidence: float

    def to_dict(self) -> dict:
        """Ours (``confidence``) and whisper's (``probability``) key for the same number;
        an unknown confidence (NaN) is null, which JSON can hold."""
        d = asdict(self)
        d["start"], d["end"] = round(self.start, 3), round(self.end, 3)
        known = not math.isnan(self.confidence)
        d["confidence"] = d["probability"] = round(self.confidence, 3) if known else None
        return d


def align_tokens(
    log_probs: torch.Tensor, tokens: list[int], blank: int
) -> list[tuple[int, int, float]] | None:
    """(start, end, mean posterior) in frames for each token, or None if it cannot align.

    ``log_probs`` is one utterance [T, V]. CTC needs at least one frame per token plus
    one between repeats; an impossible alignment returns None so callers fall back.
    """
    import torchaudio.functional as F

    T = log_probs.shape[0]
    repeats = sum(1 for a, b in zip(tokens, tokens[1:], strict=False) if a == b)
    if not tokens or len(tokens) + repeats > T:
        return None
    targets = torch.tensor([tokens], dtype=torch.int32)
    try:
        path, scores = F.forced_align(log_probs[None].float(), targets, blank=blank)
    except RuntimeError:
        return None
    spans = F.merge_tokens(path[0], scores[0].exp(), blank=blank)
    if len(spans) != len(tokens):
        return None
    return [(s.start, s.end, float(s.score)) for s in spans]


def word_timings(
    hyp: Hypothesis,
    text: TokenText,
    log_probs: torch.Tensor | None,
    seconds_per_frame: float,
    offset: float = 0.0,
    limit: float | None = None,
    floor: float | None = None,
) -> list[Word]:
    """Words of ``hyp`` with global times (``offset`` + frames * ``seconds_per_frame``).

    ``log_probs`` [T, V] are the utterance's CTC posteriors; without them (attention
    decoders) the frames in ``hyp.frames`` give the times and ``hyp.confidences`` the
    confidence.
    Times are clipped to [``floor``, ``limit``] (the chunk's span in the audio) and never
    run backwards.
    """
    tokens = hyp.tokens
    spans = align_tokens(log_probs, tokens, text.blank) if log_probs is not None else None
    if spans is None:
        # spikes: a token owns its emission frame up to the next token's frame
        frames = hyp.frames if len(hyp.frames) == len(tokens) else list(range(len(tokens)))
        frames = [max(f, g) for f, g in zip(frames, [0, *frames], strict=False)]  # never backwards
        ends = [*frames[1:], (frames[-1] + 1) if frames else 0]
        if len(hyp.confidences) == len(tokens):
            probs = hyp.confidences
        elif log_probs is not None:  # posterior at the emission frame
            last = log_probs.shape[0] - 1
            probs = [
                float(log_probs[min(f, last), t].exp())
                for f, t in zip(frames, tokens, strict=False)
            ]
        else:
            probs = [float("nan")] * len(tokens)
        spans = [(f, max(f + 1, e), p) for f, e, p in zip(frames, ends, probs, strict=False)]
    words = []
    for group in text.word_groups(tokens):
        start = offset + spans[group[0]][0] * seconds_per_frame
        end = offset + spans[group[-1]][1] * seconds_per_frame
        confidence = sum(spans[i][2] for i in group) / len(group)
        if limit is not None:
            start, end = min(start, limit), min(end, limit)
        if floor is not None:
            start, end = max(start, floor), max(end, floor)
        if words:
            start = max(start, words[-1].end)
        word = (
            "".join(text.piece(tokens[i]) for i in group)
            if text.char_level
            else text.piece(tokens[group[0]])
        )
        words.append(Word(word, start, max(start, end), confidence))
    return words
