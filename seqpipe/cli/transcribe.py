"""``seqpipe transcribe``: speech to text, subtitles or JSON with word times, for files of any length."""

from __future__ import annotations

import sys

import click

from seqpipe.speech.vad import VAD_MODES

FORMAT_CHOICES = ("txt", "json", "srt", "vtt", "tsv", "all")


# shared with seqpipe evaluate, so its figures are those of what transcribe runs
COMPUTE_TYPE = click.option(
    "--compute-type", type=click.Choice(["auto", "float32", "int8"]), default="auto",
    show_default=True, help="auto: int8 on the CPU (recurrent and linear layers quantized: "
    "~40 % less network time, the same WER on the dev speakers), float32 on a GPU.",
)  # fmt: skip


# the decoding options, shared by name with seqpipe.speech.files.transcribe_files
DECODING = (
    click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, mps or auto."),
    click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1),
                 help="Chunks per forward pass."),
    click.option("--beam-size", type=click.IntRange(1),
                 help="Use beam search with this beam (default: the bundle's decoder)."),
    click.option("--lm", type=click.Path(dir_okay=False),
                 help="Word n-gram LM (ARPA, from 'seqpipe lm build') for beam search."),
    click.option("--lm-weight", type=float, help="LM weight for beam search (default: the decoder's)."),
    click.option("--max-chunk", default=20.0, show_default=True, type=click.FloatRange(1, 60),
                 help="Longest chunk (s) the VAD cuts long audio into."),
    click.option("--vad", default="auto", show_default=True, type=click.Choice(VAD_MODES),
                 help="Speech detection: auto (level relative to the file's own noise floor, "
                 "so quiet recordings keep their words), energy (a fixed --vad-floor), silero "
                 "(a learned VAD that tells speech from music and noise; pip install "
                 "'seqpipe[vad]'), off (transcribe everything)."),
    click.option("--vad-margin", default=12.0, show_default=True, type=click.FloatRange(min=0.1),
                 help="--vad auto: dB above the noise floor that counts as speech."),
    click.option("--vad-floor", default=-50.0, show_default=True, type=click.FloatRange(-120, 0),
                 help="--vad energy: the level (dBFS) that counts as speech."),
    click.option("--vad-threshold", default=0.5, show_default=True,
                 type=click.FloatRange(0, 1, min_open=True, max_open=True),
                 help="--vad silero: the speech probability that counts as speech."),
    click.option("--hotwords", metavar="WORDS",
                 help='Names and terms to recognise, e.g. "Nguyen, seqpipe": added with a '
                 "boost to the beam search's lexicon and LM."),
    click.option("--words", type=click.Path(dir_okay=False),
                 help="A file of hotwords (one or more a line, or comma separated)."),
    click.option("--hotword-boost", type=float,
                 help="log10 boost of the hotwords' LM probability (default 1.5: about as "
                 "likely as a common word)."),
    click.option("--threads", type=click.IntRange(1),
                 help="CPU threads for the model and the beam search (default: torch's, one per "
                 "core). On a machine busy with other work, --threads 1 avoids threads "
                 "spin-waiting for a core."),
    click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch",
                 show_default=True, help="Run the acoustic model in PyTorch or, exported to "
                 "ONNX and checked against PyTorch on load, in onnxruntime."),
    COMPUTE_TYPE,
)  # fmt: skip


# how srt/vtt cues are laid out (seqpipe.speech.formats.Layout)
LAYOUT = (
    click.option("--max-line-width", default=42, show_default=True, type=click.IntRange(10),
                 help="srt/vtt: characters per subtitle line (lines break between words)."),
    click.option("--max-line-count", default=2, show_default=True, type=click.IntRange(1),
                 help="srt/vtt: lines per cue; cues also close at pauses."),
)  # fmt: skip


def decoding_options(command):
    for option in reversed(LAYOUT + DECODING):
        command = option(command)
    return command


# live transcription (seqpipe.speech.streaming)
STREAMING = (
    click.option("--stream", is_flag=True, help="Live: transcribe as the audio arrives, from "
                 "the microphone (no PATH; the 'mic' extra), standard input (-: WAV, or raw "
                 "16-bit mono PCM at the model's rate) or a file; the current guess is drawn "
                 "on stderr, each segment's final text printed on stdout at a pause."),
    click.option("--chunk", default=0.4, show_default=True, type=click.FloatRange(0.02, 10),
                 help="--stream: seconds of new audio per model step."),
    click.option("--lookahead", default=0.5, show_default=True, type=click.FloatRange(0, 10),
                 help="--stream: seconds of audio after each chunk the model waits for."),
    click.option("--settle", type=click.FloatRange(0, 10), help="--stream: make a word final "
                 "once the best path has held it this long (s), instead of once the beam "
                 "agrees on it or the speaker pauses: sooner, less accurate (no rescoring)."),
)  # fmt: skip


def streaming_options(command):
    for option in reversed(STREAMING):
        command = option(command)
    return command


@click.command("transcribe")
@click.argument("paths", nargs=-1)
@click.option("-m", "--model", help="Bundled model name or a .safetensors bundle (default: "
              "en-small, or digits while en-small is not bundled).")  # fmt: skip
@click.option("-f", "--format", "formats", multiple=True, type=click.Choice(FORMAT_CHOICES),
              help="Write these files (repeatable). Without -f/-o the text goes to stdout.")  # fmt: skip
@click.option("-o", "--output-dir", type=click.Path(),
              help="Write outputs here instead of next to each input ('-' = stdout); "
              "with --to midi also a .mid file.")  # fmt: skip
@click.option("--to", type=click.Choice(["text", "midi"]), default="text", show_default=True,
              help="text: speech to text; midi: a melody to MIDI notes ('seqpipe notes').")  # fmt: skip
@decoding_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@streaming_options
def command(paths, formats, output_dir, quiet, to, stream, chunk, lookahead, settle, **options):
    """Transcribe audio PATHS: files, directories (recursive), globs, or - for stdin.

    \b
    Without -f or -o the transcripts are printed to stdout (one file: the text;
    several: "path<TAB>text" per line) and nothing is written. With -f and/or -o
    each input gets FILE.txt/.json/.srt/.vtt/.tsv (default format txt) next to it or in
    -o DIR (directories keep their sub-folders); files are written atomically.
    JSON carries segments and words with start/end times and confidences, in
    whisper's shape (segments[].id, words[].probability, language) plus ours.
    A file that cannot be read is reported on stderr and skipped; the exit code
    is 1 if any file failed.

    \b
    Examples:
      seqpipe transcribe talk.wav
      seqpipe transcribe recordings/ -f srt -f json -o subs/
      cat talk.flac | seqpipe transcribe - -m digits
      seqpipe transcribe talk.wav --beam-size 50 --lm lm.arpa
      seqpipe transcribe meeting.wav --hotwords "Nguyen, seqpipe" -f srt
      seqpipe transcribe hum.wav --to midi -o hum.mid    # melody notes (default -m melody)
      arecord -f S16_LE -r 16000 | seqpipe transcribe --stream -
    """
    if to == "midi":
        from seqpipe.cli.notes import write_midi_files

        model, device = options["model"] or "melody", options["device"]
        return write_midi_files(paths, output_dir, model=model, device=device, plot=None, program=0)
    from rich.console import Console

    from seqpipe.speech.files import transcribe_files

    err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
    if stream or not paths:
        return live(paths, stream, formats or output_dir, err, quiet,
                    dict(options, chunk=chunk, lookahead=lookahead, settle=settle))  # fmt: skip
    with ProgressBar(err, disabled=quiet or not err.is_terminal) as bar:
        summary = transcribe_files(
            paths, formats, output_dir, stdout=lambda text: click.echo(text, nl=False),
            progress=bar, **options,
        )  # fmt: skip
    report(err, summary, output_dir)


def report(err, summary, output_dir: str | None) -> None:
    """What was written and replaced, what failed (exit status 1)."""
    if summary.written:
        where = f"to {output_dir}" if output_dir else "next to the inputs"
        fmts = ", ".join(summary.formats)
        err.print(f"seqpipe: wrote {fmts} for {summary.written} file(s) {where}")
    if summary.replaced:
        replaced = ", ".join(summary.replaced)
        err.print(f"seqpipe: replaced {len(summary.replaced)} existing file(s): {replaced}")
    if summary.failed:
        err.print(f"seqpipe: {summary.failed} of {summary.files} file(s) failed")
        raise SystemExit(1)


def live(paths, stream: bool, files, err, quiet: bool, options) -> None:
    """``--stream``: final segments on stdout, the current guess on a terminal's stderr."""
    from seqpipe.errors import ParameterError
    from seqpipe.speech.streaming import transcribe_stream

    if not stream:
        raise click.UsageError("missing PATHS (or --stream, to transcribe the microphone)")
    if len(paths) > 1 or files:
        raise ParameterError("paths", "--stream reads one source (a file, - or the microphone) "
                             "and prints text: no -f/-o")  # fmt: skip
    draw = err.is_terminal and not quiet

    def show(update) -> None:
        if draw:
            err.file.write("\r\x1b[K" + ("" if update.final else update.text[-(err.width - 1) :]))
            err.file.flush()
        if update.final and update.text:
            click.echo(update.text)
            sys.stdout.flush()

    transcribe_stream(paths[0] if paths else None, on_update=show, **options)


class ProgressBar:
    """``transcribe_files``' progress as a rich bar on stderr (messages print above it)."""

    def __init__(self, console, disabled: bool):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]transcribing"), BarColumn(), TextColumn("{task.fields[files]}"),
            TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
            console=console, disable=disabled, transient=True,
        )  # fmt: skip
        self.task = None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def start(self, total_seconds: float) -> None:
        self.task = self.bar.add_task("", total=max(total_seconds, 1e-9), files="")

    def update(self, seconds_done: float, files_done: int, files: int) -> None:
        self.bar.update(self.task, completed=seconds_done, files=f"{files_done}/{files} files")

    def message(self, text: str) -> None:
        self.bar.console.print(text)
