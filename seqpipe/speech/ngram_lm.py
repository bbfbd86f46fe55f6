"""Word n-gram language models in ARPA format, for ``ctc_beam``'s lexicon search.

Counting and smoothing are kaldingram's (Kaldi's ``make_kn_lm.py`` packaged by the
k2/icefall authors): interpolated-backoff Kneser-Ney that matches SRILM's
``ngram-count -ukndiscount``, with the discount capped at 0.9 so that tiny corpora
(no n-gram seen twice) still give seen n-grams a probability. seqpipe adds the text normalisation the acoustic models
are trained with, an ``<unk>`` entry (so KenLM loads the file without complaint), the
lexicon flashlight needs, and atomic writes.

Count cutoffs (``min_counts``, SRILM's ``-gtNmin``) keep a large corpus's model small:
an n-gram seen fewer times (for lower orders: after fewer distinct words) is dropped and
its probability mass goes to the back-off, while every history keeps the full corpus's
denominators, so the model stays normalised (kaldingram's own ``apply_count_cutoffs``
also removes the dropped n-grams' contexts, which can leave kept n-grams with
probability zero).

A word list (``extra_words``, e.g. a spelling dictionary) widens the lexicon beyond the
corpus: a word the LM never saw can then still be recognised, scored as ``<unk>``. The
``<unk>`` probability is the corpus's own rate of new words (Good-Turing: the share of
tokens that are a word's only occurrence) spread evenly over the extra words.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from seqpipe.atomic import atomic_open, check_writable, write_text
from seqpipe.decoders.arpa import SPECIAL_WORDS, lexicon_text
from seqpipe.errors import ParameterError, SeqpipeError

UNK_LOG10 = -100.0  # what KenLM substitutes for a missing <unk>; written explicitly instead
MAX_ORDER = 6
MAX_DISCOUNT = 0.9


@dataclass
class LMStats:
    sentences: int
    words: int
    vocabulary: int
    ngrams: dict[int, int]
    extra_words: int = 0  # lexicon words from the word list that the corpus lacks


def corpus_lines(
    paths: Iterable[str | os.PathLike], stdin: io.TextIOBase | None = None
) -> Iterator[str]:
    """Lines of each corpus file in turn (``-`` reads ``stdin``), streamed."""
    import sys

    for path in paths:
        if str(path) == "-":
            yield from stdin or sys.stdin
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                yield from f
        except OSError as exc:
            raise SeqpipeError(f"{path}: cannot read corpus: {exc.strerror or exc}") from None


def build_arpa(
    lines: Iterable[str],
    output: str | os.PathLike,
    order: int = 3,
    normalize: bool = True,
    lexicon: bool = True,
    extra_words: Iterable[str] = (),
    min_counts: Sequence[int] = (),
) -> LMStats:
    """Count ``lines`` (one sentence each), write ``output`` (ARPA) and ``<output>.lexicon``.

    ``extra_words`` join the lexicon (not the n-grams) and are scored as ``<unk>``.
    ``min_counts`` (one per order, missing ones 0) drop the n-grams seen fewer times.
    """
    if not 1 <= order <= MAX_ORDER:
        raise ParameterError("order", f"expected 1..{MAX_ORDER}", order)
    if (
        len(min_counts) > order
        or any(m < 0 for m in min_counts)
        or tuple(min_counts[:1]) not in ((), (0,))
    ):
        raise ParameterError(
            "min_counts",
            f"expected up to {order} counts >= 0, the first 0 (every word stays in the LM)",
            ",".join(map(str, min_counts)),
        )
    try:
        import kaldingram.train  # noqa: F401
    except ImportError:
        raise SeqpipeError(
            "building an LM needs kaldingram, which is not installed (pip install 'seqpipe[lm]')"
        ) from None
    check_writable(Path(output).parent)  # before counting a large corpus
    with _quiet_tqdm():
        from kaldingram.train import NgramCounts

        counts = NgramCounts(order)
        vocab: Counter[str] = Counter()
        sentences = 0
        if normalize:
            from seqpipe.text import normalize as normalize_text
        for line in lines:
            text = normalize_text(line) if normalize else " ".join(line.split())
            if not text:
                continue
            counts.add_raw_counts_from_line(text)
            vocab.update(text.split())
            sentences += 1
        if not sentences:
            raise SeqpipeError("the corpus has no words (after normalisation)")
        extra = sorted(
            {w for w in map(normalize_text if normalize else str.strip, extra_words)
             if w and " " not in w and w not in vocab and w not in SPECIAL_WORDS}
        )  # fmt: skip
        counts.cal_discounting_constants()
        # D = n1 / (n1 + 2 n2) reaches 1 when no n-gram of an order was seen twice (small
        # corpora), which would give every seen n-gram of that order probability 0.
        counts.d = [min(d, MAX_DISCOUNT) for d in counts.d]
        if any(min_counts):
            _smooth(counts, _apply_min_counts(counts, min_counts))
        else:
            counts.cal_f()
        counts.cal_bow()
    ngrams = {n + 1: sum(len(h.word_to_f) for h in counts.counts[n].values()) for n in range(order)}
    output = Path(output)
    with atomic_open(output) as out, tempfile.TemporaryFile("w+", encoding="utf-8") as raw:
        with _quiet_tqdm():
            counts.print_as_arpa(fout=raw)
        raw.seek(0)
        _copy_with_unk(raw, out, add_unk="<unk>" not in vocab, unk_score=unk_log10(vocab, extra))
    if lexicon:
        write_text(output.with_suffix(".lexicon"), lexicon_text(sorted([*vocab, *extra])))
    ngrams[1] += "<unk>" not in vocab
    return LMStats(sentences, sum(vocab.values()), len(vocab), ngrams, len(extra))


def _denominators(counts) -> list[dict[tuple, tuple[int, int]]]:
    """Per order and history: (distinct (left word, word) pairs, tokens), before any cutoff."""
    top = counts.ngram_order - 1
    return [
        {
            history: (
                sum(map(len, c.word_to_context.values())) if k < top else 0,
                c.total_count,
            )
            for history, c in counts.counts[k].items()
        }
        for k in range(counts.ngram_order)
    ]


def _apply_min_counts(counts, min_counts: Sequence[int]) -> list[dict[tuple, tuple[int, int]]]:
    """Drop the n-grams under ``min_counts`` from kaldingram's counts, in place.

    The highest order is cut by raw count, lower orders by continuation count (distinct
    words before them), as Kneser-Ney scores them. An n-gram that a kept longer one needs
    as its history or back-off is kept whatever its count. Returns the full counts'
    denominators, for :func:`_smooth`.
    """
    denominators = _denominators(counts)
    top = counts.ngram_order - 1
    needed: set[tuple] = set()
    for k in range(top, 0, -1):  # k words of history: the (k + 1)-grams
        least = min_counts[k] if k < len(min_counts) else 0
        for history in list(counts.counts[k]):
            c = counts.counts[k][history]
            for word, raw in list(c.word_to_count.items()):
                contexts = c.word_to_context.get(word) if k < top else None
                ngram = (*history, word)
                if (len(contexts) if contexts else raw) >= least or ngram in needed:
                    needed.update((history, ngram[1:]))
                else:
                    del c.word_to_count[word]
                    c.word_to_context.pop(word, None)
            if not c.word_to_count:
                del counts.counts[k][history]
        needed = {ngram for ngram in needed if len(ngram) <= k}
    return denominators


def _smooth(counts, denominators: list[dict[tuple, tuple[int, int]]]) -> None:
    """kaldingram's ``cal_f`` (discounted probabilities) over the full corpus's denominators,
    so what the cutoffs removed goes to the back-off weight."""
    top = counts.ngram_order - 1
    for k in range(counts.ngram_order):
        discount = counts.d[k]
        for history, c in counts.counts[k].items():
            pairs, tokens = denominators[k][history]
            for word, raw in c.word_to_count.items():
                if k < top and pairs:
                    c.word_to_f[word] = max(len(c.word_to_context[word]) - discount, 0) / pairs
                else:
                    c.word_to_f[word] = max(raw - discount, 0) / tokens


def unk_log10(vocab: Counter[str], extra: list[str]) -> float:
    """log10 P(<unk>): the corpus's new-word rate per extra word (no extra words: never)."""
    if not extra:
        return UNK_LOG10
    tokens = sum(vocab.values())
    once = max(1, sum(1 for c in vocab.values() if c == 1))
    return math.log10(once / tokens / len(extra))


def _copy_with_unk(
    src: io.TextIOBase, dst: io.TextIOBase, add_unk: bool = True, unk_score: float = UNK_LOG10
) -> None:
    """Copy an ARPA file adding ``<unk>`` to the unigrams (KenLM wants it), streamed."""
    for line in src:
        if not add_unk:
            dst.write(line)
            continue
        if line.startswith("ngram 1="):
            line = f"ngram 1={int(line.split('=')[1]) + 1}\n"
        dst.write(line)
        if line.startswith("\\1-grams:"):
            dst.write(f"{unk_score:.7f}\t<unk>\n")


@contextlib.contextmanager
def _quiet_tqdm():
    """kaldingram draws tqdm bars on stderr; seqpipe's CLI reports on its own."""
    import functools

    import kaldingram.train as train

    original = train.tqdm
    train.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        train.tqdm = original


def build_lm(
    corpus: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    order: int = 3,
    normalize: bool = True,
    words: Iterable[str | os.PathLike] = (),
    min_counts: Sequence[int] = (),
) -> LMStats:
    """:func:`build_arpa` over ``corpus`` files (``-``: standard input), with the words of
    the ``words`` lists (one a line) joining the lexicon: ``seqpipe lm build``."""
    return build_arpa(
        corpus_lines(corpus), output, order=order, normalize=normalize,
        extra_words=corpus_lines(words), min_counts=min_counts,
    )  # fmt: skip
