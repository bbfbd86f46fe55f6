"""``seqpipe lm build``: a word n-gram LM (ARPA) and its lexicon from text, for ``ctc_beam``."""

from __future__ import annotations

import click


@click.group("lm")
def command() -> None:
    """Word n-gram language models for beam-search decoding."""


@command.command("build")
@click.argument("corpus", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="ARPA file to write; the lexicon goes beside it as .lexicon.",
)
@click.option(
    "--order", default=3, show_default=True, type=click.IntRange(1, 6), help="n-gram order."
)
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="Apply the speech models' text normalisation (lower-case, digits spelled out, punctuation dropped).",
)
def build(corpus: tuple[str, ...], output: str, order: int, normalize: bool) -> None:
    """Build a Kneser-Ney n-gram LM from CORPUS files (one sentence per line; - for stdin).

    \b
    Example:
      seqpipe lm build sentences.txt -o lm.arpa --order 3
      seqpipe transcribe talk.wav --beam-size 50 --lm lm.arpa
    """
    from pathlib import Path

    from seqpipe.lm import build_arpa, corpus_lines

    stats = build_arpa(corpus_lines(corpus), output, order=order, normalize=normalize)
    counts = ", ".join(f"{n}-grams {c}" for n, c in stats.ngrams.items())
    click.echo(
        f"wrote {output} ({stats.sentences} sentences, {stats.words} words, "
        f"vocabulary {stats.vocabulary}; {counts}) and {Path(output).with_suffix('.lexicon')}",
        err=True,
    )
