"""Live transcription: audio arriving in blocks -> partial and final text while it is spoken.

A :class:`Streamer` takes blocks of samples as they come (a microphone, a pipe, a file
read block by block) and gives :class:`Update` s:

* the **VAD** decides per 10 ms frame whether it is speech (the level relative to the
  stream's own noise floor over its last ``HISTORY_SECONDS``, as :mod:`seqpipe.speech.vad`
  does for files); speech opens a segment (with ``pad_seconds`` of audio before it), and a
  pause of ``endpoint_seconds`` (or ``max_seconds`` of segment) closes it: **endpointing**;
* within a segment, features are computed over the segment so far (normalised over it)
  and fed to the model ``chunk_seconds`` at a time, each chunk with ``lookahead_seconds``
  of the audio after it: the model's ``stream_step`` (``ctc_rnn``: the latency-controlled
  bidirectional network of ``models/acoustic.py``) carries its state from chunk to chunk;
* the decoder's live search (``FrameDecoder.stream()``: the beam search with its LM, or
  greedy) carries its beam across chunks. A word becomes final once every path within
  ``margin`` of the best agrees on it, or once the model has taken ``pause_seconds`` of
  a pause after it (then the search's rescoring picks among the paths, as offline);
  ``settle_seconds`` instead makes final what the best path has held that long (sooner,
  without rescoring: less accurate);
* at the segment's end the rest of its words become final: a ``final`` update.

``time`` in an update is the audio consumed when it came out, so latency is that minus
the time a word was spoken, plus the compute (measured by ``benchmarks/streaming.py``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from seqpipe.errors import ParameterError, SeqpipeError
from seqpipe.speech.transcriber import leveled
from seqpipe.speech.vad import FRAME_SECONDS, VADOptions, frame_db, threshold_db

HISTORY_SECONDS = 30.0  # the VAD's noise floor is taken over this much recent audio
BLOCK_SECONDS = 0.1  # what the sources read at a time
HEADERS = (b"RIFF", b"RF64", b"FORM", b".snd", b"fLaC", b"OggS")  # else: raw PCM


@dataclass
class StreamOptions:
    chunk_seconds: float = 0.4  # new audio per model step (rounded to the model's stride)
    lookahead_seconds: float = 0.5  # audio after the chunk the model sees (its latency)
    # None: a word is final once the whole beam agrees on it (rescoring kept); seconds:
    # once the best path has held it this long (the beam is pruned there; no rescoring)
    settle_seconds: float | None = None
    margin: float = 3.0  # agreement: paths this close to the best (log-prob) must agree
    pause_seconds: float = 0.25  # a pause this long makes the words so far final
    endpoint_seconds: float = 0.5  # a pause this long ends a segment
    max_seconds: float = 20.0  # the longest segment
    vad: VADOptions = field(default_factory=VADOptions)


@dataclass
class Update:
    """What the stream says after a step: a segment's text so far, or its final text."""

    text: str  # the segment's words: the final ones, then the current guess
    final: bool  # the segment has ended (a pause): its text will not change
    start: float  # the segment's start, seconds into the stream
    time: float  # seconds of audio consumed when this came out
    settled: list[str]  # words that became final with this update
    stable: int = 0  # how many words of ``text`` are final


class _Segment:
    """One stretch of speech between pauses: its samples, model state and live search."""

    def __init__(self, start: int, search):
        self.start = start  # sample index in the stream
        self.blocks: list[np.ndarray] = []
        self.size = 0
        self.fed = 0  # feature frames the model has taken as new
        self.state = None  # the model's stream state
        self.search = search
        self.words: list[str] = []  # final words
        self.shown = ""
        self.quiet = 0  # where the latest pause began (samples into the segment)
        self.paused = False  # whether its words were made final

    def add(self, samples: np.ndarray) -> None:
        self.blocks.append(samples)
        self.size += len(samples)

    def samples(self) -> np.ndarray:
        if len(self.blocks) > 1:
            self.blocks = [np.concatenate(self.blocks)]
        return self.blocks[0] if self.blocks else np.zeros(0, np.float32)


class Streamer:
    """A loaded speech model streaming: :meth:`feed` blocks, :meth:`close` at the end."""

    def __init__(self, transcriber, options: StreamOptions | None = None):
        """``transcriber``: a :class:`seqpipe.speech.transcriber.Transcriber` (its model,
        features and decoder, hotwords included)."""
        self.options = o = options or StreamOptions()
        self.pipeline, self.decoder = transcriber.pipeline, transcriber.decoder
        # float32 weights: an int8 copy's quantized layers (seqpipe.deploy.quantize) run
        # only whole, so the chunked step reads the pipeline's own model
        onnx = hasattr(transcriber.model, "session")
        self.model = transcriber.model if onnx else transcriber.pipeline.model
        name = transcriber.model_name or "model"
        if not callable(getattr(self.model, "stream_step", None)):
            kind = self.pipeline.config.get("model", {}).get("name", "?")
            why = (
                "the onnx backend runs whole utterances only"
                if hasattr(self.model, "session")
                else f"'{kind}' models have no stream_step (ctc_rnn has)"
            )
            raise SeqpipeError(f"{name}: cannot stream: {why}")
        if not callable(getattr(self.decoder, "stream", None)):
            raise SeqpipeError(f"{name}: its decoder ({type(self.decoder).__name__}) cannot stream")
        self.sample_rate = transcriber.sample_rate
        features = self.pipeline.features
        self.hop, self.half = features.hop_length, features.n_fft // 2
        self.stride = stride = int(getattr(self.model, "stride", 1))
        frame = transcriber.feature_seconds
        self.chunk = max(stride, round(o.chunk_seconds / frame / stride) * stride)
        self.lookahead = max(0, round(o.lookahead_seconds / frame))
        self.settle_frames = (
            None if o.settle_seconds is None else round(o.settle_seconds / (frame * stride))
        )
        self.vad_frame = max(1, int(FRAME_SECONDS * self.sample_rate))
        self.history: deque[float] = deque(maxlen=int(HISTORY_SECONDS / FRAME_SECONDS))
        self.preroll: deque[np.ndarray] = deque(
            maxlen=max(1, round(o.vad.pad_seconds / FRAME_SECONDS))
        )
        self.endpoint = max(1, round(o.endpoint_seconds / FRAME_SECONDS))
        self.pause = int(o.pause_seconds * self.sample_rate)
        self.max_samples = int(o.max_seconds * self.sample_rate)
        self.leftover = np.zeros(0, np.float32)
        self.consumed = 0  # samples taken in
        self.silence = 0  # unvoiced frames in a row
        self.segment: _Segment | None = None

    # -- the stream ------------------------------------------------------------------

    def feed(self, samples: np.ndarray) -> list[Update]:
        """Take the next block of mono float samples at the model's rate."""
        samples = np.concatenate([self.leftover, np.asarray(samples, np.float32).ravel()])
        n = len(samples) // self.vad_frame * self.vad_frame
        self.leftover = samples[n:]
        if not n:
            return []
        frames = samples[:n].reshape(-1, self.vad_frame)
        levels = frame_db(samples[:n], self.sample_rate)
        self.history.extend(levels.tolist())
        threshold = threshold_db(np.asarray(self.history), self.options.vad)
        updates: list[Update] = []
        for frame, level in zip(frames, levels, strict=True):
            self.consumed += len(frame)
            voiced = level > threshold
            if self.segment is None:
                self.preroll.append(frame)
                if voiced:
                    start = self.consumed - sum(len(f) for f in self.preroll)
                    self.segment = _Segment(start, self.decoder.stream(**self._search_options()))
                    for f in self.preroll:
                        self.segment.add(f)
                    self.preroll.clear()
                    self.silence = 0
                continue
            self.segment.add(frame)
            self.silence = 0 if voiced else self.silence + 1
            if self.silence == 1:  # where this pause began (if it becomes one)
                self.segment.quiet, self.segment.paused = self.segment.size - len(frame), False
            if self.silence >= self.endpoint or self.segment.size >= self.max_samples:
                updates += self._finish()
        if self.segment is not None:
            updates += self._advance()
        return updates

    def close(self) -> list[Update]:
        """The stream ended: the open segment's words become final."""
        if self.segment is not None and len(self.leftover):
            self.segment.add(self.leftover)
            self.consumed += len(self.leftover)
        self.leftover = np.zeros(0, np.float32)
        return self._finish() if self.segment is not None else []

    def _search_options(self) -> dict:
        from seqpipe.decoders.ctc_beam import CTCBeam

        if not isinstance(self.decoder, CTCBeam):
            return {}
        return {"settle_frames": self.settle_frames, "margin": self.options.margin}

    # -- one segment -------------------------------------------------------------------

    def _ready(self, segment: _Segment) -> int:
        """Feature frames whose analysis window lies inside the segment's samples."""
        return max(0, (segment.size - self.half) // self.hop + 1)

    @torch.inference_mode()
    def _run(self, segment: _Segment, end: bool = False) -> list[str]:
        """Feed the model every chunk that has its look-ahead (``end``: all the rest).
        Once it has taken ``pause_seconds`` of a pause that is still going on, the words
        so far become final (``settle(pause=True)``)."""
        need = self.chunk + self.lookahead
        if not end and self._ready(segment) - segment.fed < need:
            return []
        wave = torch.from_numpy(leveled(segment.samples()))[None]
        device = next(self.model.parameters()).device
        feats, frames = self.pipeline.features(
            wave.to(device), torch.tensor([wave.shape[1]], device=device)
        )
        total, settled = int(frames[0]), []
        while total - segment.fed >= need or (end and total > segment.fed):
            span = min(need, total - segment.fed)
            ahead = span - self.chunk if span == need else 0
            window = feats[:, segment.fed : segment.fed + span]
            logits, segment.state = self.model.stream_step(window, ahead, segment.state)
            segment.search.step(torch.log_softmax(logits[0].float(), dim=-1).cpu())
            segment.fed += span - ahead
            settled += segment.search.settle()
        paused = self.silence and segment.fed * self.hop >= segment.quiet + self.pause
        if paused and not segment.paused and not end:
            segment.paused = True
            settled += segment.search.settle(pause=True)
        return settled

    def _advance(self) -> list[Update]:
        segment = self.segment
        settled = self._run(segment)
        segment.words += settled
        text = " ".join(segment.words + segment.search.pending())
        if text == segment.shown and not settled:
            return []
        segment.shown = text
        return [self._update(segment, text, False, settled)]

    def _finish(self) -> list[Update]:
        segment, self.segment = self.segment, None
        settled = self._run(segment, end=True)
        settled += segment.search.end()
        segment.words += settled
        self.silence = 0
        return [self._update(segment, " ".join(segment.words), True, settled)]

    def _update(self, segment: _Segment, text: str, final: bool, settled: list[str]) -> Update:
        return Update(
            text=text,
            final=final,
            start=segment.start / self.sample_rate,
            time=self.consumed / self.sample_rate,
            settled=settled,
            stable=len(segment.words),
        )


def stream(
    blocks: Iterable, streamer: Streamer, sample_rate: int | None = None
) -> Iterator[Update]:
    """Every update of ``blocks`` (mono samples at ``sample_rate``, default the model's),
    then those of the end of the stream."""
    resample = None
    if sample_rate and sample_rate != streamer.sample_rate:
        import soxr

        resample = soxr.ResampleStream(sample_rate, streamer.sample_rate, 1, dtype="float32")
    for block in blocks:
        if hasattr(block, "detach"):
            block = block.detach().cpu().numpy()
        block = np.asarray(block, dtype=np.float32)
        if block.ndim > 1:
            raise SeqpipeError(f"stream: expected mono blocks (1-D), got shape {block.shape}")
        if resample is not None:
            block = resample.resample_chunk(block)
        yield from streamer.feed(block)
    if resample is not None:
        yield from streamer.feed(resample.resample_chunk(np.zeros(0, np.float32), last=True))
    yield from streamer.close()


# -- sources -------------------------------------------------------------------------------


def source_blocks(path: str | None, sample_rate: int) -> Iterator[np.ndarray]:
    """Blocks of ``BLOCK_SECONDS`` at ``sample_rate`` from the microphone (``path`` None),
    standard input (``-``: WAV or another header libsndfile reads from a pipe, else raw
    16-bit little-endian mono PCM at ``sample_rate``), or a file."""
    if path is None:
        return microphone(sample_rate)
    if path == "-":
        return stdin_blocks(sample_rate)
    from seqpipe.speech.vad import stream_audio

    return stream_audio(path, sample_rate, BLOCK_SECONDS)


def stdin_blocks(sample_rate: int, source=None) -> Iterator[np.ndarray]:
    """Blocks from ``source``, a binary file object (default standard input), as
    :func:`source_blocks` describes."""
    source = sys.stdin.buffer if source is None else source
    head = source.read(4) or b""
    if not head:
        raise SeqpipeError("<stdin>: no audio (the stream is empty)")
    if head in HEADERS:
        yield from _headed(source, head, sample_rate)
        return
    size = 2 * int(BLOCK_SECONDS * sample_rate)
    pending = head
    while True:
        data = source.read(size - len(pending)) or b""  # a whole block, or the end
        pending += data
        usable = len(pending) // 2 * 2
        if usable and (len(pending) >= size or not data):
            yield np.frombuffer(pending[:usable], "<i2").astype(np.float32) / 32768
            pending = pending[usable:]
        if not data:
            return


def _headed(source, head: bytes, sample_rate: int) -> Iterator[np.ndarray]:
    """A headed stream (WAV...) from a pipe: libsndfile reads it through a relay pipe that
    replays the bytes already taken to see the header."""
    import threading

    import soundfile as sf
    import soxr

    from seqpipe.audio import _reason

    read_end, write_end = os.pipe()
    read = getattr(source, "read1", source.read)  # what has arrived, without waiting for more

    def relay() -> None:
        try:
            os.write(write_end, head)
            while data := read(1 << 16):
                os.write(write_end, data)
        except (OSError, ValueError):  # the reader stopped, or the source was closed
            pass
        finally:
            os.close(write_end)

    threading.Thread(target=relay, daemon=True, name="seqpipe-stdin").start()
    try:
        f = sf.SoundFile(read_end, closefd=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        with contextlib.suppress(OSError):  # libsndfile may have closed it
            os.close(read_end)
        raise SeqpipeError(f"<stdin>: cannot read audio: {_reason(exc)}") from None
    with f:
        resample = None
        if f.samplerate != sample_rate:
            resample = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32")
        block = max(1, int(BLOCK_SECONDS * f.samplerate))
        while True:
            data = f.read(block, dtype="float32", always_2d=True).mean(axis=1)
            last = len(data) < block
            if resample is not None:
                data = resample.resample_chunk(np.ascontiguousarray(data), last=last)
            if len(data):
                yield np.ascontiguousarray(data, np.float32)
            if last:
                return


def microphone(sample_rate: int, device: int | str | None = None) -> Iterator[np.ndarray]:
    """Blocks from the default (or ``device``) input until interrupted; needs the
    ``mic`` extra (sounddevice, with the PortAudio library)."""
    import queue

    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise SeqpipeError(
            "microphone input needs sounddevice and PortAudio: pip install 'seqpipe[mic]' "
            f"({type(exc).__name__}: {exc})"
        ) from None
    blocks: queue.Queue = queue.Queue()
    try:
        stream = sd.InputStream(
            samplerate=sample_rate, channels=1, dtype="float32", device=device,
            blocksize=int(BLOCK_SECONDS * sample_rate),
            callback=lambda data, frames, when, status: blocks.put(data[:, 0].copy()),
        )  # fmt: skip
    except Exception as exc:  # sounddevice.PortAudioError: no input device, bad rate
        raise SeqpipeError(f"microphone: cannot open it: {exc}") from None
    with stream:
        while True:
            yield blocks.get()


def transcribe_stream(
    path: str | None,
    *,
    on_update: Callable[[Update], None] | None = None,
    chunk: float = 0.4,
    lookahead: float = 0.5,
    settle: float | None = None,
    endpoint: float = 0.5,
    model: str | None = None,
    device: str | None = "auto",
    beam_size: int | None = None,
    lm: str | None = None,
    lm_weight: float | None = None,
    max_chunk: float = 20.0,
    vad: str = "auto",
    vad_margin: float = 12.0,
    vad_floor: float = -50.0,
    hotwords: str | None = None,
    words: str | None = None,
    hotword_boost: float | None = None,
    threads: int | None = None,
    backend: str = "torch",
    **_ignored,
) -> list[str]:
    """Stream ``path`` (the microphone if None, ``-`` standard input, or a file; see
    :func:`source_blocks`) through ``model`` live; ``on_update`` gets every
    :class:`Update`; returns the final text of each segment. ``chunk``/``lookahead``/
    ``settle``/``endpoint``: the :class:`StreamOptions` (seconds); the other options are
    :func:`seqpipe.speech.files.transcribe_files`' (``max_chunk``: the longest segment)."""
    from seqpipe.device import threads as torch_threads
    from seqpipe.speech.transcriber import Transcriber
    from seqpipe.speech.vad import vad_options

    for name, value in (("chunk", chunk), ("lookahead", lookahead), ("settle", settle or 0)):
        if not 0 <= value <= 10 or (name == "chunk" and value == 0):
            raise ParameterError(
                name,
                "must be in (0, 10] seconds" if name == "chunk" else "must be in [0, 10] seconds",
                value,
            )
    if vad == "silero":
        raise ParameterError("vad", "--stream decides speech by level: auto, energy or off", vad)
    options = StreamOptions(
        chunk, lookahead, settle, endpoint_seconds=endpoint, max_seconds=max_chunk,
        vad=vad_options(max_chunk, vad, vad_margin, vad_floor),
    )  # fmt: skip
    if path not in (None, "-") and not os.path.exists(path):
        raise ParameterError("paths", "no such file or directory", path)
    with torch_threads(threads):
        transcriber = Transcriber(
            model, device, 1, beam_size, lm, lm_weight, options.vad, hotwords=hotwords,
            words=words, hotword_boost=hotword_boost, backend=backend,
        )  # fmt: skip
        streamer = Streamer(transcriber, options)
        finals = []
        for update in stream(source_blocks(path, streamer.sample_rate), streamer):
            if on_update is not None:
                on_update(update)
            if update.final and update.text:
                finals.append(update.text)
    return finals
