"""Shared fixtures for the transcription tests: a tone "speech" model and synthetic audio.

``ToneCTC`` is a deterministic CTC model: a loud frame emits ``a``, a quiet one a
word separator, so every tone burst transcribes as the word "a" and its timing is
known exactly. It lets tests check chunking, batching, timings and output formats
without a trained network.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch
from torch import nn

from seqpipe.pipeline import Pipeline
from seqpipe.plugins import registry

SR = 16000


class ToneCTC(nn.Module):
    def __init__(self, input_size: int, output_size: int):
        super().__init__()
        self.sharpness = nn.Parameter(torch.tensor(8.0))
        self.output_size = output_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        loud = torch.sigmoid(self.sharpness * x.mean(-1))  # [B, T]
        logits = torch.full((*x.shape[:2], self.output_size), -20.0)
        logits[..., 2] = torch.log(loud + 1e-6)  # "a"
        logits[..., 1] = torch.log(1 - loud + 1e-6)  # " "
        return logits, lengths


def tone_bundle(path) -> str:
    """Save a bundle of logmel + ToneCTC + ctc_greedy and return its path."""
    reg = registry()
    if reg.find("model", "test_tone") is None:
        reg.add("model", "test_tone", ToneCTC, plugin="tests", package="seqpipe")
    config = {
        "task": {"name": "speech"},
        "features": {"name": "logmel", "n_mels": 40},
        "model": {"name": "test_tone"},
        "decoder": {"name": "ctc_greedy"},
    }
    Pipeline.from_config(config, reg).save(path)
    return str(path)


def tones(bursts: list[tuple[float, float]], duration: float, sr: int = SR) -> np.ndarray:
    """A broadband burst (a chord of 40 tones) at each (start, end) in seconds, faint noise elsewhere.

    Broadband, so every mel band is loud during a burst and the tone model's decision
    (mean over bands of the normalised log-mel) is clear-cut.
    """
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(int(duration * sr)) * 1e-4).astype(np.float32)
    t = np.arange(len(x)) / sr
    freqs = np.geomspace(100, 7000, 40)
    for start, end in bursts:
        on = (t >= start) & (t < end)
        chord = sum(np.sin(2 * np.pi * f * t[on] + i) for i, f in enumerate(freqs))
        x[on] += (0.02 * chord).astype(np.float32)
    return x


def write_long_tones(
    path, minutes: float, period: float = 4.0, sr: int = SR
) -> list[tuple[float, float]]:
    """Write ``minutes`` of 1 s tones every ``period`` s, block by block; returns the bursts."""
    bursts = []
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1) as f:
        block = tones([(1.0, 2.0)], period, sr)
        for i in range(int(minutes * 60 / period)):
            f.write(block)
            bursts.append((i * period + 1.0, i * period + 2.0))
    return bursts
