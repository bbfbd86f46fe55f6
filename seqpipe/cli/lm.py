"""``seqpipe lm build``: a word n-gram LM (ARPA) and its lexicon from text, for ``ctc_beam``."""

from __future__ import annotations

import click


@click.group("lm")
def command() -> None:
    """Word n-gram language models for beam-search decoding."""


@command.command("build")
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="ARPA file to write; the lexicon goes beside it as .lexicon.")  # fmt: skip
@click.option("--order", default=3, show_default=True, type=click.IntRange(1, 6), help="n-gram order.")  # fmt: skip
@click.option("--normalize/--no-normalize", default=True, show_default=True,
              help="Apply the speech models' text normalisation (lower-case, digits spelled "
              "out, punctuation dropped).")  # fmt: skip
@click.option("--words", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A word list (one word per line, e.g. /usr/share/dict/words) whose words the "
              "corpus lacks join the lexicon, scored as <unk> by the corpus's new-word rate. "
              "Repeatable.")  # fmt: skip
@click.option("--min-counts", metavar="0,N2,N3",
              help="Count cutoffs per order (SRILM's -gtNmin), e.g. 0,4,4: bigrams and trigrams "
              "seen fewer times are dropped (their mass goes to the back-off) to keep a large "
              "corpus's LM small. Every word stays.")  # fmt: skip
@click.option("--merge", metavar="ARPA",
              help="Interpolate the corpus's LM with this one (a file, or a bundled LM's name: "
              "en-small.arpa): the bundled model keeps its English and learns your domain.")  # fmt: skip
@click.option("--merge-weight", default=0.3, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="With --merge: the weight of the corpus's LM (the other model gets the rest).")  # fmt: skip
def build(
    corpus: tuple[str, ...],
    output: str,
    order: int,
    normalize: bool,
    words: tuple[str, ...],
    min_counts: str | None,
    merge: str | None,
    merge_weight: float,
) -> None:
    """Build a Kneser-Ney n-gram LM from CORPUS files (one sentence per line; - for stdin).

    \b
    Example:
      seqpipe lm build sentences.txt -o lm.arpa --order 3
      seqpipe lm build sentences.txt -o lm.arpa --words /usr/share/dict/american-english
      seqpipe lm build books.txt transcripts.txt -o lm.arpa --min-counts 0,4,4
      seqpipe lm build notes.txt -o mine.arpa --merge en-small.arpa
      seqpipe transcribe talk.wav --lm mine.arpa
    """
    from pathlib import Path

    from seqpipe.speech.ngram_lm import build_lm

    try:
        cutoffs = tuple(int(n) for n in min_counts.split(",")) if min_counts else ()
    except ValueError:
        raise click.BadParameter(f"{min_counts!r}: expected counts like 0,4,4") from None
    stats = build_lm(corpus, output, order, normalize, words, cutoffs, merge, merge_weight)
    counts = ", ".join(f"{n}-grams {c}" for n, c in stats.ngrams.items())
    extra = f" + {stats.extra_words} words from --words" if words else ""
    extra += f"; merged with {merge} at weight {1 - merge_weight:.2g}" if merge else ""
    lexicon = Path(output).with_suffix(".lexicon")
    click.echo(
        f"wrote {output} ({stats.sentences} sentences, {stats.words} words, "
        f"vocabulary {stats.vocabulary}{extra}; {counts}) and {lexicon}",
        err=True,
    )
