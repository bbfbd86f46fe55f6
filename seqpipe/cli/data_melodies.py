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
    import json
    from pathlib import Path

    from rich.progress import Progress

    from seqpipe.data import melodies as md
    from seqpipe.midi import atomic_write

    if not folders and not corpora:
        corpora = md.FOLK_CORPORA
    jobs_list = []
    for name in corpora:
        files = md.corpus_files(name)
        jobs_list += [(f, f.parent.parent) for f in files]
    for folder in folders:
        jobs_list += [(f, Path(folder)) for f in md.find_files(folder)]
    if not jobs_list:
        raise click.ClickException("no music files found")

    tunes, skipped = [], 0
    with Progress(transient=True, disable=quiet) as progress:
        bar = progress.add_task("converting", total=len(jobs_list))
        for converted in md.iter_converted(jobs_list, workers=jobs):
            tunes += converted.melodies
            for reason in converted.skipped:
                skipped += 1
                if not quiet:
                    progress.console.print(
                        f"skipped {reason}", style="yellow", highlight=False, soft_wrap=True
                    )
            progress.advance(bar)
    tunes, duplicates = md.deduplicate(tunes)
    splits: dict[str, list] = {"train": [], "valid": [], "test": []}
    for tune in tunes:
        splits[md.split_of(tune)].append(tune)
    out_dir = Path(out)
    for name, items in splits.items():
        md.write_jsonl(items, out_dir / f"{name}.jsonl")
    stats = {
        "sources": list(corpora) + list(folders),
        "files": len(jobs_list),
        "tunes": len(tunes),
        "skipped": skipped,
        "duplicates_dropped": duplicates,
        "notes": sum(len(t.notes) for t in tunes),
        **{f"{name}_tunes": len(items) for name, items in splits.items()},
    }

    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(stats, indent=2) + "\n")

    atomic_write(out_dir / "stats.json", write)
    click.echo(
        f"{len(tunes)} tunes ({stats['notes']} notes) -> {out_dir}: "
        + ", ".join(f"{n} {len(v)}" for n, v in splits.items())
        + f"; skipped {skipped}, duplicates dropped {duplicates}"
    )
