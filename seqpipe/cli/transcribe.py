"""``seqpipe transcribe``: speech to text, subtitles or JSON with word times, for files of any length."""

from __future__ import annotations

import click

FORMAT_CHOICES = ("txt", "json", "srt", "vtt", "all")


@click.command("transcribe")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-m",
    "--model",
    default=None,
    help="Bundled model name or a .safetensors bundle (default: en-small, or digits while "
    "en-small is not bundled).",
)
@click.option(
    "-f",
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(FORMAT_CHOICES),
    help="Write these files (repeatable). Without -f/-o the text goes to stdout.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False),
    help="Write outputs here instead of next to each input ('-' = stdout).",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, mps or auto.")
@click.option(
    "--batch-size",
    default=16,
    show_default=True,
    type=click.IntRange(1),
    help="Chunks per forward pass.",
)
@click.option(
    "--beam-size",
    type=click.IntRange(1),
    help="Use beam search with this beam (default: the bundle's decoder).",
)
@click.option(
    "--lm",
    type=click.Path(dir_okay=False),
    help="Word n-gram LM (ARPA, from 'seqpipe lm build') for beam search.",
)
@click.option("--lm-weight", type=float, help="LM weight for beam search (default: the decoder's).")
@click.option(
    "--max-chunk",
    default=20.0,
    show_default=True,
    type=click.FloatRange(1, 60),
    help="Longest chunk (s) the VAD cuts long audio into.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    help="CPU threads for the model and the beam search (default: torch's, one per core). "
    "On a machine busy with other work, --threads 1 avoids threads spin-waiting for a core.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def command(
    paths,
    model,
    formats,
    output_dir,
    device,
    batch_size,
    beam_size,
    lm,
    lm_weight,
    max_chunk,
    threads,
    quiet,
) -> None:
    """Transcribe audio PATHS: files, directories (recursive), globs, or - for stdin.

    \b
    Without -f or -o the transcripts are printed to stdout (one file: the text;
    several: "path<TAB>text" per line) and nothing is written. With -f and/or -o
    each input gets FILE.txt/.json/.srt/.vtt (default format txt) next to it or in
    -o DIR (directories keep their sub-folders); files are written atomically.
    JSON carries segments and words with start/end times and confidences.
    A file that cannot be read is reported on stderr and skipped; the exit code
    is 1 if any file failed.

    \b
    Examples:
      seqpipe transcribe talk.wav
      seqpipe transcribe recordings/ -f srt -f json -o subs/
      cat talk.flac | seqpipe transcribe - -m digits
      seqpipe transcribe talk.wav --beam-size 50 --lm lm.arpa
    """
    import sys
    import tempfile

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from seqpipe.atomic import write_text
    from seqpipe.audio import audio_duration
    from seqpipe.errors import SeqpipeError
    from seqpipe.speech.formats import FORMATS
    from seqpipe.speech.transcriber import Transcriber, expand_inputs, plan_outputs, spool_inputs
    from seqpipe.speech.vad import VADOptions

    fmts = list(FORMATS) if "all" in formats else list(dict.fromkeys(formats))
    write_files = bool(fmts) or output_dir is not None
    fmts = fmts or ["txt"]
    inputs = expand_inputs(paths)
    if not inputs:
        raise click.UsageError("no input files")
    if write_files:  # before the model runs: clashing names, folders that cannot be written
        plan_outputs(inputs, fmts, output_dir)
    err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
    written: list[int] = []
    replaced: list[str] = []

    def emit(result, several: bool) -> None:
        """Print to stdout, or write the requested files atomically."""
        item, transcript = result.input, result.transcript
        if not write_files:
            text = transcript.render("txt")
            click.echo(f"{transcript.path}\t{text}" if several else text, nl=False)
        elif item.outputs is None:
            for fmt in fmts:
                click.echo(transcript.render(fmt), nl=False)
        else:
            for path in item.outputs.values():
                if path.exists():
                    replaced.append(str(path))
                write_text(path, transcript.render(path.suffix[1:]))
            written.append(1)

    import torch

    saved_threads = torch.get_num_threads()  # restored: callers may run us in-process
    failures = 0
    try:
        with tempfile.TemporaryDirectory(prefix="seqpipe-stdin-") as tmp:
            spool_inputs(inputs, tmp)
            transcriber = Transcriber(
                model, device=device, batch_size=batch_size, beam_size=beam_size, lm=lm,
                lm_weight=lm_weight, vad=VADOptions(max_seconds=max_chunk),
                threads=threads,
            )  # fmt: skip
            durations = []
            for item in inputs:
                try:
                    durations.append(0.0 if item.error else audio_duration(item.path))
                except SeqpipeError:
                    durations.append(0.0)
            done = [0.0] * len(inputs)
            progress = Progress(
                TextColumn("[bold]transcribing"), BarColumn(), TextColumn("{task.fields[files]}"),
                TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                console=err, disable=quiet or not err.is_terminal, transient=True,
            )  # fmt: skip
            with progress:
                task = progress.add_task("", total=max(sum(durations), 1e-9), files="")

                def advance(i: int, seconds: float) -> None:
                    done[i] = max(done[i], min(seconds, durations[i]))
                    progress.update(task, completed=sum(done))

                for n, result in enumerate(transcriber.run(inputs, advance), 1):
                    shown = result.input.shown
                    done[n - 1] = durations[n - 1]
                    progress.update(task, completed=sum(done), files=f"{n}/{len(inputs)} files")
                    for warning in result.warnings:
                        progress.console.print(f"seqpipe: warning: {shown}: {warning}")
                    try:
                        if result.error:
                            raise SeqpipeError(f"{shown}: {result.error}")
                        result.transcript.path = shown
                        emit(result, several=len(inputs) > 1)
                    except SeqpipeError as exc:
                        failures += 1
                        progress.console.print(f"seqpipe: error: {exc}")
    finally:
        torch.set_num_threads(saved_threads)
    if written:
        where = f"to {output_dir}" if output_dir else "next to the inputs"
        err.print(f"seqpipe: wrote {', '.join(fmts)} for {len(written)} file(s) {where}")
    if replaced:
        err.print(f"seqpipe: replaced {len(replaced)} existing file(s): {', '.join(replaced)}")
    if failures:
        err.print(f"seqpipe: {failures} of {len(inputs)} file(s) failed")
        sys.exit(1)
