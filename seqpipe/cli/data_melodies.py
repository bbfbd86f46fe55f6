"""``seqpipe data melodies``: music files or music21's folk collections -> train/valid/test JSONL."""

from __future__ import annotations

import click


@click.command("melodies")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--corpus",
    "corpora",
    multiple=True,
    help="A music21 corpus collection (repeatable). Default with no FOLDERS: the folk "
    "collections ryansMammoth, oneills1850, airdsAirs, miscFolk.",
)
@click.option("--jobs", "-j", default=1, show_default=True, help="Worker processes.")
@click.option("--quiet", "-q", is_flag=True, help="Do not list skipped files.")
def melodies(folders: tuple[str, ...], out: str, corpora: tuple[str, ...], jobs: int, quiet: bool):
    """Convert FOLDERS (recursive .mid/.midi/.abc/.xml/.mxl/.krn) into a melody dataset.

    \b
    Writes OUT/train.jsonl, OUT/valid.jsonl, OUT/test.jsonl (85/5/10%, split by a hash of
    each tune's notes, so it is deterministic and duplicates share a split) and
    OUT/stats.json. Each skipped file or tune gets a one-line reason on stderr.
    Examples:
      seqpipe data melodies --out data/folk          # music21's folk tunes (~4,400)
      seqpipe data melodies my_midi/ --out data/mine
    """
    from rich.progress import Progress

    from seqpipe.data.melodies import build_dataset

    with Progress(transient=True, disable=quiet) as progress:
        bar = progress.add_task("converting", total=None)

        def converted(result) -> None:
            for reason in [] if quiet else result.skipped:
                progress.console.print(
                    f"skipped {reason}", style="yellow", highlight=False, soft_wrap=True
                )
            progress.advance(bar)

        stats = build_dataset(folders, out, corpora, jobs, on_file=converted)
    splits = ", ".join(f"{name} {stats[f'{name}_tunes']}" for name in ("train", "valid", "test"))
    click.echo(
        f"{stats['tunes']} tunes ({stats['notes']} notes) -> {out}: {splits}; "
        f"skipped {stats['skipped']}, duplicates dropped {stats['duplicates_dropped']}"
    )
