"""Reading audio: any format libsndfile reads, any rate, mono float32 out.

torchaudio.load needs FFmpeg/torchcodec; soundfile (libsndfile) reads wav, flac,
ogg and mp3 with no system dependency, and soxr resamples with high quality.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate`` (stereo is downmixed, rates resampled)."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise SeqpipeError(f"{path}: cannot read audio: {_reason(exc)}") from None
    if data.shape[0] == 0:
        raise SeqpipeError(f"{path}: audio is empty (0 samples)")
    return to_mono_rate(data, rate, sample_rate)


def to_mono_rate(data: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """Downmix a [samples, channels] block and resample it to ``sample_rate``."""
    mono = data.mean(axis=1) if data.ndim == 2 else data
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header, without decoding the samples."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise SeqpipeError(f"{path}: cannot read audio: {_reason(exc)}") from None
    return info.frames / info.samplerate


def write_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write audio atomically; the format follows the suffix (.wav, .flac, .ogg)."""
    import soundfile as sf

    from seqpipe.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, sample_rate, format=path.suffix.lstrip(".").upper() or "WAV")


def _reason(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # libsndfile prefixes messages with the path, which we already print
    return message.split(": ", 1)[-1] if message.startswith("Error opening") else message
