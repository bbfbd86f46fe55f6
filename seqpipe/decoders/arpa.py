"""ARPA language models and flashlight lexicons: the files ``seqpipe lm build`` writes
(:mod:`seqpipe.speech.ngram_lm`) and ``ctc_beam`` reads, in one place."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from seqpipe.errors import SeqpipeError

SPECIAL_WORDS = {"<s>", "</s>", "<unk>"}  # ARPA markers, never lexicon words


def arpa_unigrams(path: Path) -> Iterator[str]:
    """Stream the words of an ARPA file's 1-gram section (never loads the whole file)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            inside = False
            for line in f:
                line = line.strip()
                if line == "\\1-grams:":
                    inside = True
                elif inside and (not line or line.startswith("\\")):
                    return
                elif inside:
                    parts = line.split()
                    if len(parts) >= 2:
                        yield parts[1]
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read language model: {exc.strerror}") from None
    if not inside:
        raise SeqpipeError(f"{path}: not an ARPA language model (no \\1-grams: section)")


def read_lexicon(path: Path) -> Iterator[tuple[str, list[str]]]:
    """``word spelling...`` lines (tab or space separated), as written by ``seqpipe lm build``."""
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) < 2:
                    raise SeqpipeError(f"{path}:{number}: lexicon line has a word but no spelling")
                yield parts[0], parts[1:]
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read lexicon: {exc.strerror}") from None


def lexicon_text(words: Iterable[str]) -> str:
    """flashlight's lexicon: each word spelled in characters, ``|`` closing the word."""
    return "".join(f"{w}\t{' '.join(w)}\n" for w in words)
