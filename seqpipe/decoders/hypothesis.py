"""What every speech decoder returns, and how token ids become words.

Decoders share one result type so ``seqpipe transcribe`` can time and score words
the same way whichever search produced them. ``frames`` holds the output frame at
which each token was emitted (CTC) or attended most (attention); word timings are
refined from the posteriors by :mod:`seqpipe.speech.alignment` when those exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: tokens that separate words in a character vocabulary
WORD_SEPARATORS = (" ", "|", "\u2581")


@dataclass
class Hypothesis:
    """One decoded utterance: text, token ids (no blanks), score, emission frames and
    (attention decoders) each token's probability."""

    text: str
    tokens: list[int]
    score: float = 0.0
    frames: list[int] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)  # per token, when known


@dataclass
class DecodeOutput:
    """A batch of hypotheses plus the CTC posteriors used to time words (None if absent)."""

    hypotheses: list[Hypothesis]
    log_probs: torch.Tensor | None = None  # [B, T', V] on the CPU
    lengths: torch.Tensor | None = None  # [B] valid output frames
    frame_ratio: float = 1.0  # feature frames per output frame (subsampling)


class TokenText:
    """Turns token ids into text for a character or a word vocabulary.

    A vocabulary with a separator token (space, ``|`` or ``▁``) is spelled out
    character by character; one without is a word vocabulary joined by spaces.
    """

    def __init__(self, vocab: Sequence[str], blank: int = 0):
        self.vocab = list(vocab)
        self.blank = blank
        self.separator = next(
            (i for i, t in enumerate(self.vocab) if t in WORD_SEPARATORS and i != blank), None
        )

    @property
    def char_level(self) -> bool:
        return self.separator is not None

    def piece(self, token: int) -> str:
        if self.separator is not None and token == self.separator:
            return " "
        return self.vocab[token] if 0 <= token < len(self.vocab) else ""

    def text(self, tokens: Sequence[int]) -> str:
        """Token ids (blanks already removed or not) -> normalised text."""
        pieces = [self.piece(t) for t in tokens if t != self.blank]
        joined = "".join(pieces) if self.char_level else " ".join(pieces)
        return " ".join(joined.split())

    def word_groups(self, tokens: Sequence[int]) -> list[list[int]]:
        """Indices into ``tokens`` grouped by word (separators dropped)."""
        groups: list[list[int]] = []
        current: list[int] = []
        for i, token in enumerate(tokens):
            if token == self.blank:
                continue
            if self.char_level and token == self.separator:
                if current:
                    groups.append(current)
                current = []
                continue
            current.append(i)
            if not self.char_level:
                groups.append(current)
                current = []
        if current:
            groups.append(current)
        return groups


class SettledText:
    """A stream's final token ids and the words they complete, for streaming decoders.

    In a character vocabulary a word is complete once a separator follows it; in a word
    vocabulary every token is a word. ``settle()`` hands out each complete word once.
    """

    def __init__(self, text: TokenText):
        self.text = text
        self.tokens: list[int] = []
        self.reported = 0  # words handed out by settle()

    def words(self) -> list[str]:
        return self.text.text(self.tokens).split()

    def settle(self, everything: bool = False) -> list[str]:
        """The complete words not handed out yet (``everything``: the last one too)."""
        words = self.words()
        open_word = self.text.char_level and self.tokens and self.tokens[-1] != self.text.separator
        complete = words if everything or not open_word else words[:-1]
        new = complete[self.reported :]
        self.reported = max(self.reported, len(complete))
        return new

    def tail(self) -> list[str]:
        """The words not handed out yet: at most the one still being spelled."""
        return self.words()[self.reported :]
