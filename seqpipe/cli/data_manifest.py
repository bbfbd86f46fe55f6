"""``seqpipe data manifest``: a JSONL speech manifest from a folder of recordings."""

import click

output_option = click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="manifest to write (.jsonl)",
)
hold_out_option = click.option(
    "--hold-out",
    "hold_out",
    multiple=True,
    metavar="SPEAKER",
    help="leave this speaker out (repeatable); their utterances go to --held-out-output",
)
held_out_output_option = click.option(
    "--held-out-output",
    type=click.Path(dir_okay=False),
    help="manifest for the held-out speakers (default: OUTPUT with '.heldout' before .jsonl)",
)
absolute_option = click.option(
    "--absolute", is_flag=True, help="store absolute audio paths instead of relative"
)


@click.command("manifest")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@output_option
@hold_out_option
@held_out_output_option
@absolute_option
def manifest(directory, output, hold_out, held_out_output, absolute) -> None:
    """Build a manifest from audio + transcript pairs (x.wav + x.txt) or FSDD names.

    FSDD files (``{digit}_{speaker}_{take}.wav``) are transcribed by their digit and
    carry a ``speaker`` field, so ``--hold-out theo`` keeps a speaker for testing.
    """
    from seqpipe.data.manifest import scan_directory, write_split

    entries = scan_directory(directory)
    if not entries:
        raise click.ClickException(
            f"{directory}: no audio with a transcript (x.wav + x.txt) or an FSDD name found"
        )
    for line in write_split(output, entries, hold_out, held_out_output, relative=not absolute):
        click.echo(line)
