"""Long audio: stream a file from disk and cut it at silences into bounded chunks.

Memory stays bounded whatever the file's length: libsndfile decodes ``block_seconds``
at a time, soxr resamples the stream, and at most ``max_seconds`` (plus one block)
of samples is held. A chunk is cut at the quietest point of its last ``search_seconds``
once ``max_seconds`` are buffered (speech rarely has no pause for that long). Each
chunk is then split at internal pauses of ``min_silence`` and its silent parts
dropped, so silence costs no compute and segments follow the speech.

Speech is an energy decision per 10 ms frame (:func:`threshold_db`): with ``mode="auto"``
(the default) a frame is speech when it is ``margin_db`` above the buffer's own noise
floor (its ``NOISE_PERCENTILE``-th percentile frame level) or within ``SPEECH_SPAN_DB`` of
its loudest frame, so a quiet recording loses no words
however low its level (a buffer that never rises ``margin_db`` above its floor is noise); ``mode="energy"`` uses the fixed ``floor_db`` (dBFS) instead;
``mode="silero"`` asks Silero VAD (a small learned model shipped in the ``silero-vad``
wheel, MIT; the ``vad`` extra) for each 32 ms window's speech probability and keeps the
frames above ``threshold``: it tells speech from loud non-speech (music, traffic) that
energy cannot. ``mode="off"`` keeps every stretch (still cut into bounded chunks). Except
with ``off``, a frame must also lie within ``range_db`` of the buffer's loudest frame. A chunk with no such
frame is skipped; the rest keep ``pad_seconds`` of context around their speech.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from seqpipe.errors import SeqpipeError

FRAME_SECONDS = 0.01
NOISE_PERCENTILE = 5
MIN_NOISE_FRAMES = 50  # a shorter buffer cannot tell its noise: floor_db decides
SPEECH_SPAN_DB = 30.0  # mode "auto": frames this close to the loudest are always speech
NOISE_SPAN_DB = 60.0  # frames this far below the loudest are not counted as noise
DIGITAL_SILENCE_DB = -190.0  # frame_db of zeros is -200
VADMode = Literal["auto", "energy", "silero", "off"]
VAD_MODES = ("auto", "energy", "silero", "off")


@dataclass
class Chunk:
    """Samples of one stretch of speech and where it starts in the file (seconds)."""

    start: float
    samples: np.ndarray  # float32 mono at the model's sample rate

    def duration(self, sample_rate: int) -> float:
        return len(self.samples) / sample_rate


@dataclass
class VADOptions:
    mode: VADMode = "auto"
    max_seconds: float = 20.0
    search_seconds: float = 8.0
    min_silence: float = 0.5
    pad_seconds: float = 0.2
    floor_db: float = -50.0  # mode "energy": the fixed floor (dBFS)
    margin_db: float = 12.0  # mode "auto": dB above the noise floor
    threshold: float = 0.5  # mode "silero": speech probability
    range_db: float = 45.0
    block_seconds: float = 2.0


def vad_options(
    max_chunk: float = 20.0,
    vad: str = "auto",
    margin: float = 12.0,
    floor: float = -50.0,
    threshold: float = 0.5,
) -> VADOptions:
    """:class:`VADOptions` from the transcribe options, checked (``ParameterError``)."""
    from seqpipe.errors import ParameterError

    if vad not in VAD_MODES:
        raise ParameterError("vad", f"not one of {', '.join(VAD_MODES)}", vad)
    if not 0 < threshold < 1:
        raise ParameterError("vad_threshold", "must be a probability in (0, 1)", threshold)
    if vad == "silero":
        silero_model()  # a missing extra is an error before any file is read
    if not margin > 0:
        raise ParameterError("vad_margin", "must be positive (dB above the noise)", margin)
    if not -120 <= floor < 0:
        raise ParameterError("vad_floor", "must be in [-120, 0) dBFS", floor)
    return VADOptions(
        mode=vad, max_seconds=max_chunk, margin_db=margin, floor_db=floor, threshold=threshold
    )


def stream_audio(
    path: str | os.PathLike,
    sample_rate: int,
    block_seconds: float = 2.0,
    warn: Callable[[str], None] | None = None,
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sample_rate``, decoded and resampled incrementally.

    Non-finite samples (NaN, Inf) are read as silence and ``warn`` is told where they
    start; so is a file that ends before the length its header gives (a cut-off copy).
    """
    import soundfile as sf
    import soxr

    from seqpipe.audio import _reason

    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise SeqpipeError(f"{path}: file is empty (0 bytes)")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise SeqpipeError(f"{path}: cannot read audio: {_reason(exc)}") from None
    with f:
        if f.frames == 0:
            raise SeqpipeError(f"{path}: audio is empty (0 samples)")
        rate = f.samplerate
        resampler = (
            soxr.ResampleStream(rate, sample_rate, 1, dtype="float32")
            if rate != sample_rate
            else None
        )
        block = max(1, int(block_seconds * rate))
        done, repaired = 0, NonFinite()
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise SeqpipeError(f"{path}: cannot decode audio: {_reason(exc)}") from None
            data = repaired.fix(data, done, rate)
            done += len(data)
            last = len(data) < block
            if last and warn is not None:
                if repaired.count:
                    warn(repaired.message())
                cut = truncation(f.extra_info)
                if cut:
                    warn(f"file ends at {done / rate:.2f} s, {cut} (truncated?)")
            mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
            if len(mono):
                yield np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                return


def truncation(log: str) -> str | None:
    """From libsndfile's log of a header (``SoundFile.extra_info``): how much shorter the
    audio data is than the header says, or None. A streamed header's size of 0 or 2^32-1
    means "unknown", not cut short."""
    import re

    found = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", log, re.MULTILINE)
    if not found:
        return None
    said, has = int(found[1]), int(found[2])
    if said <= has or said in (0, 0xFFFFFFFF, 0x7FFFFFFF):
        return None
    return f"{said - has:,} bytes short of what its header gives"


@dataclass
class NonFinite:
    """Counts the NaN/Inf samples replaced by silence, and when the first one was."""

    count: int = 0
    first: float = 0.0

    def fix(self, data: np.ndarray, done: int, rate: int) -> np.ndarray:
        """``data`` [frames, channels], which follows ``done`` frames, with NaN/Inf set to 0."""
        bad = ~np.isfinite(data)
        if not bad.any():
            return data
        if not self.count:
            self.first = (done + int(np.flatnonzero(bad.any(axis=1))[0])) / rate
        self.count += int(bad.sum())
        return np.where(bad, np.float32(0), data)

    def message(self) -> str:
        return (
            f"{self.count} non-finite samples (NaN/Inf) from {self.first:.2f} s on, read as silence"
        )


def frame_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy in dBFS of each 10 ms frame (the tail shorter than a frame is its own frame)."""
    n = max(1, int(FRAME_SECONDS * sample_rate))
    frames = -(-len(samples) // n)
    padded = np.zeros(frames * n, dtype=np.float32)
    padded[: len(samples)] = samples
    power = (padded.reshape(frames, n) ** 2).mean(axis=1)
    return 10 * np.log10(power + 1e-20)


def noise_floor_db(db: np.ndarray) -> float:
    """The level of the quiet frames: the ``NOISE_PERCENTILE``-th percentile of the frame
    levels, each counted as at least ``NOISE_SPAN_DB`` below the loudest. Only levels
    relative to the loudest count, so the floor moves with the recording's gain, and
    digital silence (zeros) reads as "very quiet", not as -200 dB."""
    return float(np.percentile(np.maximum(db, db.max() - NOISE_SPAN_DB), NOISE_PERCENTILE))


def threshold_db(db: np.ndarray, opts: VADOptions) -> float:
    """The level (dBFS) a frame must exceed to be speech, for ``opts.mode``."""
    if opts.mode == "off":
        return -np.inf
    if opts.mode == "energy" or len(db) < MIN_NOISE_FRAMES:
        floor = opts.floor_db
    else:
        noise, loudest = noise_floor_db(db), float(db.max())
        if loudest - noise < opts.margin_db:  # level throughout: steady noise, no speech
            return np.inf
        # a buffer without pauses (its "noise" is speech) keeps its louder 30 dB
        floor = min(noise + opts.margin_db, loudest - SPEECH_SPAN_DB)
    return max(floor, float(db.max()) - opts.range_db)


@functools.cache
def silero_model():
    """Silero VAD's TorchScript model, shipped inside its wheel (loaded once)."""
    import warnings

    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError:
        raise SeqpipeError(
            "--vad silero needs the silero-vad package: pip install 'seqpipe[vad]'"
        ) from None
    finally:
        torch.set_num_threads(threads)  # importing silero_vad sets one thread for all torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation
        return load_silero_vad()


def silero_voiced(samples: np.ndarray, sample_rate: int, opts: VADOptions) -> np.ndarray:
    """Per 10 ms frame: does Silero VAD hear speech there (probability > threshold)?"""
    import torch

    frames = -(-len(samples) // max(1, int(FRAME_SECONDS * sample_rate)))  # frame_db's count
    if sample_rate not in (8000, 16000):
        import soxr

        samples, sample_rate = soxr.resample(samples, sample_rate, 16000), 16000
    peak = float(np.abs(samples).max(initial=0.0))
    if peak > 0:  # Silero hears level: a quiet recording is raised to -6 dBFS peak first
        samples = samples * np.float32(min(0.5 / peak, 1000.0))
    window = 512 if sample_rate == 16000 else 256  # the windows Silero VAD is trained on
    if len(samples) < window:
        return np.zeros(frames, dtype=bool)
    with torch.no_grad():
        probs = silero_model().audio_forward(torch.from_numpy(samples)[None], sample_rate)[0]
    frame_window = (np.arange(frames) * int(FRAME_SECONDS * sample_rate) // window).astype(int)
    return probs.numpy()[np.minimum(frame_window, len(probs) - 1)] > opts.threshold


def speech_segments(
    db: np.ndarray, opts: VADOptions, voiced: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """[start, end) frame ranges of speech, split at pauses >= ``min_silence``, padded.
    ``voiced``: a learned VAD's decision per frame, else the energy rule's."""
    if not len(db) or not np.isfinite(db.max()):  # NaN-safe
        return []
    if opts.mode == "off":
        return [(0, len(db))] if db.max() > DIGITAL_SILENCE_DB else []
    if voiced is None:
        voiced = db > threshold_db(db, opts)
    else:
        voiced = voiced & (db > max(float(db.max()) - opts.range_db, DIGITAL_SILENCE_DB))
    if not voiced.any():
        return []
    idx = np.flatnonzero(voiced)
    gap = int(opts.min_silence / FRAME_SECONDS)
    pad = int(opts.pad_seconds / FRAME_SECONDS)
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    # padding stops at the middle of the pause between two segments: no audio twice
    middles = (ends[:-1] + starts[1:]) // 2
    lo = np.maximum(starts - pad, np.concatenate([[0], middles]))
    hi = np.minimum(ends + pad, np.concatenate([middles, [len(db)]]))
    return list(zip(lo.tolist(), hi.tolist(), strict=True))


def quietest_cut(db: np.ndarray, lo: int, hi: int) -> int:
    """Frame in [lo, hi) with the lowest 200 ms moving-average energy (latest on ties)."""
    window = np.convolve(db, np.ones(21) / 21, mode="same")[lo:hi]
    return lo + len(window) - 1 - int(np.argmin(window[::-1]))


def chunks(
    path: str | os.PathLike,
    sample_rate: int,
    opts: VADOptions | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[Chunk]:
    """Speech chunks of at most ``max_seconds`` with their start time in the file
    (``warn``: see :func:`stream_audio`)."""
    opts = opts or VADOptions()
    max_len = int(opts.max_seconds * sample_rate)
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    buffer = np.zeros(0, dtype=np.float32)
    offset = 0  # samples before buffer[0]
    blocks = stream_audio(path, sample_rate, opts.block_seconds, warn)
    exhausted = False
    while not exhausted or len(buffer):
        while not exhausted and len(buffer) < max_len:
            block = next(blocks, None)
            if block is None:
                exhausted = True
            else:
                buffer = np.concatenate([buffer, block])
        db = frame_db(buffer[:max_len], sample_rate)
        if len(buffer) > max_len or (not exhausted and len(buffer) >= max_len):
            lo = max(1, len(db) - int(opts.search_seconds / FRAME_SECONDS))
            cut = quietest_cut(db, lo, len(db)) * frame
        else:
            cut = len(buffer)
        piece, db = buffer[:cut], db[: -(-cut // frame)]
        voiced = (
            silero_voiced(piece, sample_rate, opts)[: len(db)] if opts.mode == "silero" else None
        )
        for s, e in speech_segments(db, opts, voiced):
            yield Chunk(
                float(offset + s * frame) / sample_rate, piece[s * frame : e * frame].copy()
            )
        buffer, offset = buffer[cut:], offset + cut
