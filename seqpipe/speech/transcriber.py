"""Transcribe audio files of any length with a speech bundle: the library behind ``seqpipe transcribe``.

Every input file is streamed through the VAD (:mod:`seqpipe.speech.vad`) into chunks of at
most ``max_seconds``; chunks from all files share length-bucketed batches (a window of
chunks is sorted by length, so padding is small and many short files fill a batch as
well as one long file does). Word times come from CTC forced alignment and are
shifted by the chunk's start, so they are global to the file. A file that fails to
read costs its own result only.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqpipe.errors import SeqpipeError
from seqpipe.speech.formats import Segment, Transcript
from seqpipe.speech.vad import Chunk, VADOptions, chunks

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
MIN_SECONDS = 0.2


@dataclass
class Input:
    """One file to transcribe; ``name`` is its output name relative to ``-o``."""

    path: str
    name: str
    error: str | None = None  # set when the path itself is unusable
    label: str | None = None  # how messages name it (default: the path)
    spooled: bool = False  # a pipe (stdin, process substitution): copied to a file first
    outputs: dict[str, Path] | None = None  # format -> file to write; None: stdout

    @property
    def shown(self) -> str:
        return self.label or self.path


@dataclass
class Result:
    input: Input
    transcript: Transcript | None = None
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


def spool_inputs(inputs: list[Input], directory: str | os.PathLike) -> None:
    """Copy standard input and pipes (``<(...)``) to files: libsndfile needs to seek, and
    memory stays flat."""
    import shutil
    import sys

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


def _same_file_key(path: Path) -> tuple:
    """Equal for two names of one file (links included), whether or not it exists yet."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def plan_outputs(inputs: list[Input], formats: list[str], output_dir: str | None) -> None:
    """Set each input's ``outputs``: FILE.FMT beside it, or ``output_dir``/NAME.FMT.

    Nothing the user has is lost: an input whose output would replace an input of the
    batch, or a file that an earlier input of the batch writes, fails (``error``) instead,
    and so does one whose folder cannot be written (with ``output_dir``: the whole batch,
    a SeqpipeError, before any work).
    """
    from seqpipe.atomic import check_writable

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


class Transcriber:
    """A loaded speech bundle plus decoding options; call :meth:`run` on inputs."""

    def __init__(
        self,
        model: str | None = None,
        device: str | None = None,
        batch_size: int = 16,
        beam_size: int | None = None,
        lm: str | None = None,
        lm_weight: float | None = None,
        vad: VADOptions | None = None,
        pipeline=None,
        threads: int | None = None,
    ):
        """``threads`` sets torch's CPU threads (None leaves them as they are)."""
        from seqpipe.device import pick_device
        from seqpipe.pipeline import Pipeline

        if threads:
            torch.set_num_threads(threads)

        self.device = pick_device(device) if pipeline is None else pipeline.device
        model = model or default_model()
        self.pipeline = pipeline if pipeline is not None else Pipeline.load(model, self.device)
        self.pipeline.eval()
        check_speech_model(self.pipeline, model)
        self.model_name = model if pipeline is None else str(pipeline.config.get("name", ""))
        self.batch_size = batch_size
        self.vad = vad or VADOptions()
        features = self.pipeline.features
        self.sample_rate = int(getattr(features, "sample_rate", 16000))
        hop = getattr(features, "hop_length", None)
        self.feature_seconds = hop / self.sample_rate if hop else None
        # features that pad the signal put frame 0 this long before the audio starts
        self.lead_seconds = float(getattr(features, "lead_seconds", 0.0))
        self.decoder = choose_decoder(self.pipeline, beam_size, lm, lm_weight)
        self.text = self.decoder.text

    # -- batching ------------------------------------------------------------------

    def _chunk_stream(
        self, inputs: list[Input], failed: dict[int, str], warned: dict[int, list[str]]
    ) -> Iterator[tuple[int, Chunk | None]]:
        """(file index, chunk) in file order; (index, None) closes a file. Errors go to
        ``failed``, warnings (repaired samples, a cut-short file) to ``warned``."""
        for i, item in enumerate(inputs):
            if item.error:
                failed[i] = item.error
            else:
                try:
                    warn = warned.setdefault(i, []).append
                    for chunk in chunks(item.path, self.sample_rate, self.vad, warn=warn):
                        yield i, chunk
                except SeqpipeError as exc:
                    failed[i] = (
                        str(exc).split(": ", 1)[-1] if str(exc).startswith(item.path) else str(exc)
                    )
                except Exception as exc:  # a decoder library failing on a broken file
                    failed[i] = f"cannot read audio: {type(exc).__name__}: {exc}"
            yield i, None

    def run(
        self, inputs: list[Input], progress: Callable[[int, float], None] | None = None
    ) -> Iterator[Result]:
        """Transcribe ``inputs``; yields one Result per input, in input order.

        ``progress(file_index, seconds_done)`` is called as chunks finish.
        """
        failed: dict[int, str] = {}
        warned: dict[int, list[str]] = {}
        segments: dict[int, list[Segment]] = {i: [] for i in range(len(inputs))}
        pending: dict[int, int] = {}
        closed: set[int] = set()
        next_out = 0
        window: list[tuple[int, Chunk]] = []
        max_window = self.batch_size * 4
        # a window holds about one batch of the longest chunks, or many short ones
        max_seconds = max(300.0, self.batch_size * self.vad.max_seconds)
        window_seconds = 0.0
        stream = self._chunk_stream(inputs, failed, warned)
        exhausted = False
        while not exhausted or window:
            while not exhausted and len(window) < max_window and window_seconds < max_seconds:
                item = next(stream, None)
                if item is None:
                    exhausted = True
                elif item[1] is None:
                    closed.add(item[0])
                else:
                    window.append(item)
                    pending[item[0]] = pending.get(item[0], 0) + 1
                    window_seconds += item[1].duration(self.sample_rate)
            window.sort(key=lambda x: len(x[1].samples))
            for b in range(0, len(window), self.batch_size):
                batch = [(i, c) for i, c in window[b : b + self.batch_size] if i not in failed]
                if batch:
                    for (i, chunk), segment in zip(
                        batch, self._decode([c for _, c in batch]), strict=False
                    ):
                        segments[i].append(segment)
                        if progress:
                            progress(i, chunk.start + chunk.duration(self.sample_rate))
                for i, _ in window[b : b + self.batch_size]:
                    pending[i] -= 1
            window, window_seconds = [], 0.0
            while next_out < len(inputs) and next_out in closed and not pending.get(next_out):
                result = self._result(
                    inputs[next_out], segments.pop(next_out), failed.get(next_out)
                )
                result.warnings = warned.pop(next_out, [])
                yield result
                next_out += 1

    def _result(self, item: Input, segments: list[Segment], error: str | None) -> Result:
        if error:
            return Result(item, error=error)
        from seqpipe.audio import audio_duration

        segments.sort(key=lambda s: s.start)
        duration = audio_duration(item.path)
        return Result(item, Transcript(item.path, duration, segments, self.model_name))

    @torch.inference_mode()
    def _decode(self, batch: list[Chunk]) -> list[Segment]:
        from seqpipe.speech.alignment import word_timings

        # a blip shorter than one analysis window is zero-padded to MIN_SECONDS
        shortest = int(MIN_SECONDS * self.sample_rate)
        lengths = torch.tensor([max(shortest, len(c.samples)) for c in batch])
        waves = torch.zeros(len(batch), int(lengths.max()))
        for row, c in enumerate(batch):
            waves[row, : len(c.samples)] = torch.from_numpy(c.samples)
        feats, feat_lengths = self.pipeline.features(waves.to(self.device), lengths.to(self.device))
        out = self.decoder.decode_batch(self.pipeline.model, feats, feat_lengths)
        feat_seconds = (
            self.feature_seconds or float(lengths.max()) / self.sample_rate / feats.shape[1]
        )
        frame_seconds = feat_seconds * out.frame_ratio
        result = []
        for row, (c, hyp) in enumerate(zip(batch, out.hypotheses, strict=False)):
            end = c.start + c.duration(self.sample_rate)
            log_probs = None
            if out.log_probs is not None:
                log_probs = out.log_probs[row, : int(out.lengths[row])]
            words = word_timings(
                hyp,
                self.text,
                log_probs,
                frame_seconds,
                offset=c.start - self.lead_seconds,
                limit=end,
                floor=c.start,
            )
            result.append(Segment(c.start, end, hyp.text, words))
        return result


# The default model: the first of these that is bundled (en-small is not trained yet).
DEFAULT_MODELS = ("en-small", "digits")


def default_model() -> str:
    from seqpipe.plugins import registry

    bundled = registry().names("bundle")
    return next((name for name in DEFAULT_MODELS if name in bundled), DEFAULT_MODELS[0])


def check_speech_model(pipeline, model: str | None) -> None:
    """A SeqpipeError unless ``pipeline`` turns audio into text (``-m folk`` does not)."""
    wiring = pipeline.task.wire(pipeline.features)
    if "vocab" not in wiring or not hasattr(pipeline.features, "sample_rate"):
        task = pipeline.config.get("task", {}).get("name", "?")
        raise SeqpipeError(
            f"{model or 'model'}: not a speech model (its task is '{task}'); "
            "seqpipe transcribe needs a speech-to-text bundle such as en-small or digits"
        )


def choose_decoder(pipeline, beam_size: int | None, lm: str | None, lm_weight: float | None):
    """The bundle's decoder, or a beam search when ``--beam-size``/``--lm`` ask for one."""
    from seqpipe.decoders.attention_beam import AttentionBeam
    from seqpipe.decoders.ctc_beam import CTCBeam
    from seqpipe.decoders.ctc_greedy import CTCGreedy

    wiring = pipeline.task.wire(pipeline.features)
    vocab, blank = wiring["vocab"], wiring.get("blank", 0)
    decoder = pipeline.decoder if hasattr(pipeline.decoder, "decode_batch") else None
    if isinstance(decoder, AttentionBeam) and beam_size and not lm:
        decoder.beam_size = beam_size
        return decoder
    if beam_size or lm:
        options = dict(pipeline.config.get("decoder") or {}) if isinstance(decoder, CTCBeam) else {}
        options.pop("name", None)
        options.update(beam_size=beam_size or options.get("beam_size", 50))
        if lm:
            options.update(lm=lm, lexicon=None)
        if lm_weight is not None:
            options["lm_weight"] = lm_weight
        return CTCBeam(vocab, blank, **options)
    return decoder or CTCGreedy(vocab, blank)
