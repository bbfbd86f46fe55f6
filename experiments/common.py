"""What the experiments share: CTC posteriors of a bundle (optionally at a fixed spectrum
warp), decoding them in one batch, and word errors. The scripts import this module, never
each other."""

from __future__ import annotations

import jiwer
import numpy as np
import torch

from seqpipe.decoders.ctc_greedy import ctc_posteriors
from seqpipe.features.vtlp import warp_spectrum


class FixedWarp(torch.nn.Module):
    """Appended to the features' spectrogram: every utterance warped by one ``alpha``, so
    ``LogMel.frames`` runs unchanged around it."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return warp_spectrum(power, torch.full((power.shape[0], 1), self.alpha))


@torch.no_grad()
def posteriors(pipeline, examples, alpha: float, batch_size: int = 16) -> list[torch.Tensor]:
    """Per-utterance CTC log-posteriors [T, V] at one warp."""
    melspec = pipeline.features.melspec
    spectrogram = melspec.spectrogram
    melspec.spectrogram = torch.nn.Sequential(spectrogram, FixedWarp(alpha))
    out = []
    try:
        for i in range(0, len(examples), batch_size):
            batch = pipeline.task.collate(examples[i : i + batch_size])
            feats, lengths = pipeline.features(batch["waves"], batch["lengths"])
            log_probs, out_lengths, _ = ctc_posteriors(pipeline.model, feats, lengths)
            out += [log_probs[j, : int(n)] for j, n in enumerate(out_lengths)]
    finally:
        melspec.spectrogram = spectrogram
    return out


def decode(decoder, utterances: list[torch.Tensor]) -> tuple[list[str], np.ndarray]:
    """The decoder's texts and its scores per frame, all utterances in one padded batch."""
    T = max(u.shape[0] for u in utterances)
    batch = torch.full((len(utterances), T, utterances[0].shape[1]), -1e4)
    for j, u in enumerate(utterances):
        batch[j, : u.shape[0]] = u
    hyps = decoder(batch, torch.tensor([u.shape[0] for u in utterances]))
    scores = np.array([h.score / u.shape[0] for h, u in zip(hyps, utterances, strict=True)])
    return [h.text for h in hyps], scores


def word_errors(ref: str, hyp: str) -> int:
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions
