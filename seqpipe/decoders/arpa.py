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


MAX_ARPA_NGRAMS = 50_000_000  # a limit for untrusted files (en-small's LM has 0.93 million)


def read_arpa(path: Path) -> list[dict[tuple[str, ...], tuple[float, float]]]:
    """An ARPA back-off model's n-grams, one dict per order: ``words -> (log10 p, log10
    back-off weight)`` (0.0 where the file gives none). Loads the whole model."""
    orders: list[dict[tuple[str, ...], tuple[float, float]]] = []
    declared: list[int] = []
    section = None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                if line == "\\data\\" or line == "\\end\\":
                    section = line
                elif line.endswith("-grams:") and line.startswith("\\"):
                    n = line[1:].split("-")[0]
                    if not n.isdigit() or int(n) != len(orders) + 1:
                        raise SeqpipeError(f"{path}:{number}: unexpected section {line}")
                    orders.append({})
                    section = "ngrams"
                elif section == "\\data\\" and line.startswith("ngram "):
                    declared.append(int(line.split("=")[1]))
                    if sum(declared) > MAX_ARPA_NGRAMS:
                        raise SeqpipeError(
                            f"{path}: more than {MAX_ARPA_NGRAMS} n-grams; too large to load"
                        )
                elif section == "ngrams":
                    parts = line.split()
                    n = len(orders)
                    if len(parts) not in (n + 1, n + 2):
                        raise SeqpipeError(f"{path}:{number}: expected a {n}-gram line")
                    bow = float(parts[n + 1]) if len(parts) == n + 2 else 0.0
                    orders[-1][tuple(parts[1 : n + 1])] = (float(parts[0]), bow)
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read language model: {exc.strerror}") from None
    except ValueError:
        raise SeqpipeError(f"{path}:{number}: not a number where ARPA needs one") from None
    if not orders:
        raise SeqpipeError(f"{path}: not an ARPA language model (no \\1-grams: section)")
    return orders
