"""``seqpipe data manifest``: a JSONL speech manifest from a folder of recordings."""

import click


@click.command("manifest")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="manifest to write (.jsonl)",
)
@click.option(
    "--hold-out",
    "hold_out",
    multiple=True,
    metavar="SPEAKER",
    help="leave this speaker out (repeatable); their utterances go to --held-out-output",
)
@click.option(
    "--held-out-output",
    type=click.Path(dir_okay=False),
    help="manifest for the held-out speakers (default: OUTPUT with '.heldout' before .jsonl)",
)
@click.option("--absolute", is_flag=True, help="store absolute audio paths instead of relative")
def manifest(directory, output, hold_out, held_out_output, absolute) -> None:
    """Build a manifest from audio + transcript pairs (x.wav + x.txt) or FSDD names.

    FSDD files (``{digit}_{speaker}_{take}.wav``) are transcribed by their digit and
    carry a ``speaker`` field, so ``--hold-out theo`` keeps a speaker for testing.
    """
    from pathlib import Path

    from seqpipe.data.manifest import scan_directory, split_speakers, write_manifest

    entries = scan_directory(directory)
    if not entries:
        raise click.ClickException(
            f"{directory}: no audio with a transcript (x.wav + x.txt) or an FSDD name found"
        )
    kept, held = split_speakers(entries, hold_out)
    write_manifest(output, kept, relative=not absolute)
    click.echo(f"{output}: {len(kept)} utterances, {sum(e['duration'] for e in kept) / 60:.1f} min")
    if hold_out:
        out = Path(output)
        held_path = held_out_output or out.with_name(out.stem + ".heldout" + out.suffix)
        write_manifest(held_path, held, relative=not absolute)
        click.echo(f"{held_path}: {len(held)} utterances ({', '.join(hold_out)})")
