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
    merge: str | os.PathLike | None = None,
    merge_weight: float = 0.3,
) -> LMStats:
    """:func:`build_arpa` over ``corpus`` files (``-``: standard input), with the words of
    the ``words`` lists (one a line) joining the lexicon: ``seqpipe lm build``. With
    ``merge`` (an ARPA path, or a bundled LM's file name), the corpus's model is then
    interpolated with that one at ``merge_weight`` (:func:`mix_arpa`); the counts returned
    are the corpus's, the n-grams the merged model's."""
    lines, extra = corpus_lines(corpus), corpus_lines(words)
    if merge is None:
        return build_arpa(lines, output, order, normalize, extra_words=extra, min_counts=min_counts)
    from seqpipe.decoders.ctc_beam import resolve_path

    base = resolve_path(merge, "language model")
    with tempfile.TemporaryDirectory() as tmp:
        own = Path(tmp) / "corpus.arpa"
        stats = build_arpa(lines, own, order, normalize, extra_words=extra, min_counts=min_counts)
        stats.ngrams = mix_arpa(own, base, output, merge_weight).ngrams
    return stats


def mix_arpa(
    user: str | os.PathLike,
    base: str | os.PathLike,
    output: str | os.PathLike,
    weight: float = 0.5,
) -> LMStats:
    """Interpolate two ARPA back-off models into one (SRILM's ``ngram -mix-lm``, static):
    every n-gram either model lists gets ``weight * P_user + (1 - weight) * P_base``, each
    model backing off as usual (a word a model lacks has probability 0 there), and the
    back-off weights are computed again so that every history's probabilities sum to 1.
    ``output``'s lexicon joins both models' lexicons (``.lexicon`` beside each, else its
    words)."""
    from seqpipe.decoders.arpa import read_arpa, read_lexicon

    if not 0.0 < weight < 1.0:
        raise ParameterError("weight", "expected a number between 0 and 1 (exclusive)", weight)
    user, base, output = Path(user), Path(base), Path(output)
    check_writable(output.parent)
    models = [read_arpa(user), read_arpa(base)]
    order = max(len(m) for m in models)
    mixed: list[dict[tuple[str, ...], float]] = []  # per order: words -> log10 p
    for n in range(order):
        grams = set().union(*(m[n].keys() for m in models if n < len(m)))
        mixed.append({g: _mixed_log10(models, weight, g) for g in grams})
    backoffs = _backoffs(mixed)
    with atomic_open(output) as out:
        out.write("\\data\\\n" + "".join(f"ngram {n + 1}={len(m)}\n" for n, m in enumerate(mixed)))
        for n, grams in enumerate(mixed):
            out.write(f"\n\\{n + 1}-grams:\n")
            for g, logp in grams.items():
                bow = f"\t{backoffs[g]:.7f}" if n + 1 < order else ""
                out.write(f"{logp:.7f}\t{' '.join(g)}{bow}\n")
        out.write("\n\\end\\\n")
    spellings: dict[str, list[str]] = {}
    for path, model in ((base, models[1]), (user, models[0])):
        lexicon = path.with_suffix(".lexicon")
        if lexicon.exists():
            spellings.update((w, s) for w, s in read_lexicon(lexicon) if w not in spellings)
        else:
            spellings.update((w, list(w)) for (w,) in model[0] if w not in SPECIAL_WORDS)
    write_text(
        output.with_suffix(".lexicon"),
        "".join(f"{w}\t{' '.join(s)}\n" for w, s in spellings.items()),
    )
    words = [g[0] for g in mixed[0] if g[0] not in SPECIAL_WORDS]
    ngrams = {n + 1: len(m) for n, m in enumerate(mixed)}
    return LMStats(0, 0, len(words), ngrams, len(spellings) - len(words))


def _backoff_log10(model, words: tuple[str, ...]) -> float | None:
    """log10 P(words[-1] | words[:-1]) under an ARPA back-off model (a dict per order);
    None when the model does not know the word."""
    backoff = 0.0
    for start in range(len(words)):
        gram = words[start:]
        if len(gram) <= len(model) and gram in model[len(gram) - 1]:
            return backoff + model[len(gram) - 1][gram][0]
        history = gram[:-1]
        if len(history) <= len(model):
            backoff += model[len(history) - 1].get(history, (0.0, 0.0))[1]
    return None


def _mixed_log10(models, weight: float, words: tuple[str, ...]) -> float:
    p = 0.0
    for model, w in zip(models, (weight, 1.0 - weight), strict=True):
        logp = _backoff_log10(model, words)
        if logp is not None and logp > UNK_LOG10 + 1:  # -99 (<s>) is "never"
            p += w * 10.0**logp
    return math.log10(p) if p > 0 else -99.0


def _or_never(logp: float | None) -> float:
    return -99.0 if logp is None else logp


def _backoffs(mixed: list[dict[tuple[str, ...], float]]) -> dict[tuple[str, ...], float]:
    """log10 back-off weight of every history, lowest order first, so that each history's
    explicit n-grams and its backed-off rest sum to probability 1 (floors keep it finite)."""
    backoffs: dict[tuple[str, ...], float] = {}
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for grams in mixed[1:]:
        for g in grams:
            children.setdefault(g[:-1], []).append(g)
    model = [{g: (p, 0.0) for g, p in grams.items()} for grams in mixed]
    for n, grams in enumerate(mixed[:-1]):
        for history in grams:
            seen = children.get(history, [])
            left = 1.0 - sum(10.0 ** mixed[n + 1][g] for g in seen)
            lower = 1.0 - sum(10.0 ** _or_never(_backoff_log10(model, g[1:])) for g in seen)
            bow = math.log10(max(left, 1e-12) / max(lower, 1e-12)) if seen else 0.0
            backoffs[history] = bow
            model[n][history] = (grams[history], bow)
    return backoffs
