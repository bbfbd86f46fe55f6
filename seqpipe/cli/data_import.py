"""``seqpipe data import``: manifests from public corpora in their own layouts."""

import click

from seqpipe.cli.data_manifest import (
    absolute_option,
    held_out_output_option,
    hold_out_option,
    output_option,
)

# format -> (reader in seqpipe.data.corpora, what SOURCE is)
FORMATS = {
    "librispeech": ("read_librispeech", "a subset folder (train-clean-5, dev-clean, ...)"),
    "sphinx": (
        "read_sphinx",
        "a CMU Sphinx .transcription file (AN4: etc/an4_train.transcription)",
    ),
    "ljspeech": ("read_ljspeech", "the folder holding metadata.csv and wavs/"),
    "commonvoice": ("read_commonvoice", "a clip list (train.tsv, validated.tsv, ...)"),
    "speechcommands": ("read_speechcommands", "the folder of word folders (yes/, no/, ...)"),
    "kaldi": ("read_kaldi", "a Kaldi data directory (text, wav.scp, utt2spk, spk2gender)"),
}


@click.command("import")
@click.argument("format", type=click.Choice(sorted(FORMATS)))
@click.argument("source", type=click.Path(exists=True))
@output_option
@click.option(
    "--hold-out-speakers",
    type=click.IntRange(min=1),
    metavar="N",
    help="hold out N whole speakers drawn with --seed, taking turns between the sexes where "
    "the corpus gives them",
)
@hold_out_option
@held_out_output_option
@click.option("--seed", default=0, show_default=True, help="seed of the --hold-out-speakers draw")
@absolute_option
def command(format, source, output, hold_out_speakers, hold_out, held_out_output, seed, absolute):
    """Write a JSONL manifest (audio, text, duration, speaker) from a corpus in its own layout.

    \b
    FORMAT and SOURCE:
    """
    from seqpipe.data import corpora
    from seqpipe.data.manifest import choose_speakers, write_split

    entries = getattr(corpora, FORMATS[format][0])(source)
    held = set(hold_out)
    if hold_out_speakers:
        rest = [e for e in entries if e["speaker"] not in held]
        held.update(choose_speakers(rest, hold_out_speakers, seed))
    for line in write_split(output, entries, held, held_out_output, relative=not absolute):
        click.echo(line)


command.help += "".join(f"\n      {name:<12} {what}" for name, (_, what) in FORMATS.items())
