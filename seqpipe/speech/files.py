"""Transcribing files: the service behind ``seqpipe transcribe``.

:func:`expand_inputs` turns what the user named (files, folders, globs, ``-`` for standard
input) into :class:`Input` s; :func:`spooled` copies pipes to files the audio reader can
seek; :func:`plan_outputs` names each input's output files and refuses, before any work,
one that would overwrite an input or another input's output. :func:`transcribe_files`
runs all of it and writes each transcript atomically (or to stdout).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from seqpipe.errors import ParameterError, SeqpipeError

if TYPE_CHECKING:
    from seqpipe.speech.formats import Transcript

AUDIO_EXTENSIONS = {
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aiff",
    ".aif",
    ".au",
    ".w64",
    ".caf",
}
STDIN = "-"


@dataclass
class Input:
    """One file to transcribe; ``name`` is its output name relative to ``-o``."""

    path: str
    name: str
    error: str | None = None  # set when the path itself is unusable
    label: str | None = None  # how messages name it (default: the path)
    spooled: bool = False  # a pipe (stdin, process substitution): copied to a file first
    outputs: dict[str, Path] | None = None  # format -> file to write; None: stdout
    duration: float | None = None  # seconds, once read

    @property
    def shown(self) -> str:
        return self.label or self.path


@dataclass
class Result:
    input: Input
    transcript: Transcript | None = None  # None when the file failed
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def _broken_link(path: Path) -> str | None:
    if path.is_symlink() and not path.exists():
        return f"broken symbolic link (to {os.readlink(path)})"
    return None


def expand_inputs(paths: Iterable[str]) -> list[Input]:
    """Files, directories (recursive, audio suffixes only) and globs, in a stable order."""
    found: list[Input] = []
    for raw in paths:
        if raw == STDIN:
            error = "standard input is named more than once (it can be read only once)"
            once = not any(item.label == "<stdin>" for item in found)
            found.append(Input(STDIN, "stdin", None if once else error, "<stdin>", spooled=once))
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in AUDIO_EXTENSIONS and (p.is_file() or _broken_link(p))
            )
            found += [
                Input(str(p), str(p.relative_to(path).with_suffix("")), error=_broken_link(p))
                for p in files
            ]
            if not files:
                found.append(Input(raw, path.name, error="no audio files in this directory"))
        elif path.exists():
            found.append(Input(str(path), path.stem, spooled=not path.is_file()))
        elif _broken_link(path):
            found.append(Input(raw, path.stem, error=_broken_link(path)))
        elif glob.has_magic(raw):
            matches = sorted(glob.glob(str(path), recursive=True))
            found += [Input(m, Path(m).stem) for m in matches if Path(m).is_file()]
            if not matches:
                found.append(Input(raw, Path(raw).stem, error="no file matches this pattern"))
        else:
            found.append(Input(raw, path.stem, error="no such file or directory"))
    return found


@contextlib.contextmanager
def spooled(inputs: list[Input]) -> Iterator[list[Input]]:
    """Inside the block, standard input and pipes (``<(...)``) are files in a temporary
    folder (libsndfile needs to seek, and memory stays flat); removed after it."""
    import shutil
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="seqpipe-stdin-") as directory:
        for n, item in enumerate(inputs):
            if not item.spooled or item.error:
                continue
            target = Path(directory) / f"{n}.audio"
            try:
                with contextlib.ExitStack() as stack:
                    source = (
                        sys.stdin.buffer
                        if item.path == STDIN
                        else stack.enter_context(open(item.path, "rb"))
                    )
                    with open(target, "wb") as f:
                        shutil.copyfileobj(source, f, 1 << 20)
            except OSError as exc:
                item.error = f"cannot read: {exc.strerror or exc}"
                continue
            item.label = item.label or item.path
            item.path = str(target)
        yield inputs


def _same_file_key(path: Path) -> tuple:
    """Equal for two names of one file (links included), whether or not it exists yet."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def plan_outputs(inputs: list[Input], formats: list[str], output_dir: str | None) -> None:
    """Set each input's ``outputs``: FILE.FMT beside it, or ``output_dir``/NAME.FMT
    (``output_dir`` ``-``: standard output).

    Nothing the user has is lost: an input whose output would replace an input of the
    batch, or a file that an earlier input of the batch writes, fails (``error``) instead,
    and so does one whose folder cannot be written (with ``output_dir``: the whole batch,
    a SeqpipeError, before any work).
    """
    from seqpipe.atomic import check_writable
    from seqpipe.errors import SeqpipeError

    if output_dir == STDIN:
        return
    if output_dir is not None:
        check_writable(output_dir)
    sources = {_same_file_key(Path(i.path)) for i in inputs if not i.error and not i.spooled}
    claimed: dict[tuple, Input] = {}
    folders: dict[Path, str | None] = {}
    for item in inputs:
        if item.error or (item.spooled and output_dir is None):
            continue  # piped input without -o: to stdout
        base = Path(output_dir) / item.name if output_dir else Path(item.path).with_suffix("")
        outputs = {fmt: base.with_name(f"{base.name}.{fmt}") for fmt in formats}
        keys = {fmt: _same_file_key(path) for fmt, path in outputs.items()}
        for fmt, key in keys.items():
            if key in sources:
                item.error = (
                    f"its {fmt} output would overwrite an input ({outputs[fmt]}); "
                    "write to another folder with -o DIR"
                )
            elif key in claimed:
                item.error = (
                    f"its {fmt} output {outputs[fmt]} is also {claimed[key].shown}'s "
                    "(same name); transcribe it separately or rename it"
                )
            if item.error:
                break
        else:
            folder = base.parent
            if folder not in folders:
                try:
                    check_writable(folder)
                    folders[folder] = None
                except SeqpipeError as exc:
                    folders[folder] = str(exc)
            item.error = folders[folder]
            if item.error is None:
                claimed.update((key, item) for key in keys.values())
                item.outputs = outputs


class Progress(Protocol):
    """How :func:`transcribe_files` reports while it works (the CLI draws a bar)."""

    def start(self, total_seconds: float) -> None: ...

    def update(self, seconds_done: float, files_done: int, files: int) -> None: ...

    def message(self, text: str) -> None:
        """One line for the user (a warning or a failed file)."""
        ...


class Silent:
    """A :class:`Progress` that reports nothing."""

    def start(self, total_seconds: float) -> None:
        pass

    def update(self, seconds_done: float, files_done: int, files: int) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@dataclass
class Summary:
    """What :func:`transcribe_files` did."""

    files: int
    formats: list[str]
    failed: int = 0
    written: int = 0  # inputs whose files were written
    replaced: list[str] = field(default_factory=list)  # existing files written over


def _durations(inputs: list[Input]) -> None:
    from seqpipe.audio import audio_duration

    for item in inputs:
        if item.error is None:
            try:
                item.duration = audio_duration(item.path)
            except SeqpipeError:
                item.duration = 0.0  # the transcriber reports why


def transcribe_files(
    paths: Iterable[str],
    formats: Iterable[str] = (),
    output_dir: str | None = None,
    *,
    model: str | None = None,
    device: str | None = "auto",
    batch_size: int = 16,
    beam_size: int | None = None,
    lm: str | None = None,
    lm_weight: float | None = None,
    max_chunk: float = 20.0,
    vad: str = "auto",
    vad_margin: float = 12.0,
    vad_floor: float = -50.0,
    vad_threshold: float = 0.5,
    hotwords: str | None = None,
    words: str | None = None,
    hotword_boost: float | None = None,
    max_line_width: int = 42,
    max_line_count: int = 2,
    threads: int | None = None,
    backend: str = "torch",
    compute_type: str = "auto",
    stdout: Callable[[str], object] | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Transcribe ``paths`` (files, folders, globs, ``-``) with ``model``.

    Without ``formats`` or ``output_dir`` the text goes to ``stdout`` (one input: the
    text; several: ``path<TAB>text`` lines) and nothing is written; otherwise each input
    gets NAME.FMT (``formats`` default txt; ``all``: every format) beside it or in
    ``output_dir``, written atomically. A file that fails costs its own result only
    (``progress.message`` names it; ``Summary.failed`` counts it). ``threads``: torch's
    CPU threads while it runs; ``backend`` ``onnx`` runs the acoustic model on onnxruntime;
    ``compute_type``: see :mod:`seqpipe.deploy.quantize`.
    ``vad``/``vad_margin``/``vad_floor``/``vad_threshold``: see :func:`seqpipe.speech.vad.vad_options`;
    ``hotwords``/``words``: see :func:`seqpipe.speech.hotwords.hotword_list`,
    ``hotword_boost`` their weight; ``max_line_width``/``max_line_count``: the subtitle
    :class:`~seqpipe.speech.formats.Layout`.
    """
    from seqpipe.device import threads as torch_threads
    from seqpipe.speech.formats import FORMATS, Layout
    from seqpipe.speech.transcriber import Transcriber
    from seqpipe.speech.vad import vad_options

    stdout = stdout or (lambda text: print(text, end=""))
    progress = progress or Silent()
    formats = list(dict.fromkeys(formats))
    fmts = list(FORMATS) if "all" in formats else formats
    write_files = bool(fmts) or output_dir is not None
    summary = Summary(0, fmts or ["txt"])
    inputs = expand_inputs(paths)
    if not inputs:
        raise ParameterError("paths", "no input files")
    summary.files = len(inputs)
    if write_files:  # before the model runs: clashing names, folders that cannot be written
        plan_outputs(inputs, summary.formats, output_dir)
    chunking = vad_options(max_chunk, vad, vad_margin, vad_floor, vad_threshold)
    layout = Layout(max_line_width, max_line_count)
    with torch_threads(threads), spooled(inputs):
        transcriber = Transcriber(
            model, device, batch_size, beam_size, lm, lm_weight, chunking, hotwords=hotwords,
            words=words, hotword_boost=hotword_boost, backend=backend, compute_type=compute_type,
        )  # fmt: skip
        _durations(inputs)
        total = sum(item.duration or 0.0 for item in inputs)
        progress.start(total)
        done = [0.0] * len(inputs)

        def advance(i: int, seconds: float) -> None:
            done[i] = max(done[i], min(seconds, inputs[i].duration or 0.0))
            progress.update(sum(done), n, len(inputs))

        n = 0
        for n, result in enumerate(transcriber.run(inputs, advance), 1):
            done[n - 1] = inputs[n - 1].duration or 0.0
            progress.update(sum(done), n, len(inputs))
            _emit(result, summary, write_files, len(inputs) > 1, stdout, progress, layout)
    return summary


def _emit(
    result: Result, summary: Summary, write_files: bool, several: bool, stdout, progress, layout
):
    """Print one result to ``stdout``, or write its files atomically."""
    from seqpipe.atomic import write_text

    item, transcript = result.input, result.transcript
    for warning in result.warnings:
        progress.message(f"seqpipe: warning: {item.shown}: {warning}")
    try:
        if result.error:
            raise SeqpipeError(f"{item.shown}: {result.error}")
        transcript.path = item.shown
        if not write_files:
            text = transcript.render("txt")
            stdout(f"{transcript.path}\t{text}" if several else text)
        elif item.outputs is None:
            for fmt in summary.formats:
                stdout(transcript.render(fmt, layout))
        else:
            for path in item.outputs.values():
                if path.exists():
                    summary.replaced.append(str(path))
                write_text(path, transcript.render(path.suffix[1:], layout))
            summary.written += 1
    except SeqpipeError as exc:
        summary.failed += 1
        progress.message(f"seqpipe: error: {exc}")
