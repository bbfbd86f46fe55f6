"""Long audio: stream a file from disk and cut it at silences into bounded chunks.

Memory stays bounded whatever the file's length: libsndfile decodes ``block_seconds``
at a time, soxr resamples the stream, and at most ``max_seconds`` (plus one block)
of samples is held. A chunk is cut at the quietest point of its last ``search_seconds``
once ``max_seconds`` are buffered (speech rarely has no pause for that long). Each
chunk is then split at internal pauses of ``min_silence`` and its silent parts
dropped, so silence costs no compute and segments follow the speech.

Speech is an energy decision per 10 ms frame: louder than ``floor_db`` (dBFS) and
within ``range_db`` of the chunk's loudest frame. A chunk with no such frame is
skipped; the rest keep ``pad_seconds`` of context around their speech.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from seqpipe.errors import SeqpipeError

FRAME_SECONDS = 0.01


@dataclass
class Chunk:
    """Samples of one stretch of speech and where it starts in the file (seconds)."""

    start: float
    samples: np.ndarray  # float32 mono at the model's sample rate

    def duration(self, sample_rate: int) -> float:
        return len(self.samples) / sample_rate


@dataclass
class VADOptions:
    max_seconds: float = 20.0
    search_seconds: float = 8.0
    min_silence: float = 0.5
    pad_seconds: float = 0.2
    floor_db: float = -50.0
    range_db: float = 45.0
    block_seconds: float = 2.0


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
    return 10 * np.log10(power + 1e-10)


def speech_segments(db: np.ndarray, opts: VADOptions) -> list[tuple[int, int]]:
    """[start, end) frame ranges of speech, split at pauses >= ``min_silence``, padded."""
    if not len(db) or not db.max() >= opts.floor_db:  # NaN-safe
        return []
    voiced = db > max(opts.floor_db, db.max() - opts.range_db)
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
        for s, e in speech_segments(db, opts):
            yield Chunk(
                float(offset + s * frame) / sample_rate, piece[s * frame : e * frame].copy()
            )
        buffer, offset = buffer[cut:], offset + cut
