"""Test-time vocal tract length normalisation (VTLN) for a CTC speech bundle.

Each utterance is heard at several fixed spectrum warps; the warp the model is most
confident about is kept and the bundle's own decoder runs on it. Prints the WER of every
global warp, of each per-utterance choice, and of the oracle choice (the best warp per
utterance, known only from the reference: the ceiling of any criterion).

    python experiments/vtln.py en-small data/en-small/valid_unseen_voices.jsonl
    python experiments/vtln.py en-small data/en-small/valid_unseen_voices.jsonl \\
        --warps 0.9 1.0 1.1 --json vtln.json

Criteria: ``max_logp``, the mean over frames of the best class's log-posterior;
``nonblank_max_logp``, the same over frames whose best class is not blank (cheap: one
search); ``search_score``, the beam search's own score per frame (one search per warp).
Measured on en-small: docs/lab/speech-log.md (no cheap criterion helped; not shipped).
"""

from __future__ import annotations

import argparse
import json

import jiwer
import numpy as np
import torch

from seqpipe.decoders.ctc_greedy import ctc_posteriors
from seqpipe.features.vtlp import warp_spectrum
from seqpipe.pipeline import Pipeline


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


def confidence(utterances: list[torch.Tensor], blank: int = 0) -> dict[str, np.ndarray]:
    best, nonblank = [], []
    for u in utterances:
        top, which = u.max(-1)
        best.append(float(top.mean()))
        kept = top[which != blank]
        nonblank.append(float(kept.mean()) if len(kept) else -1e9)
    return {"max_logp": np.array(best), "nonblank_max_logp": np.array(nonblank)}


def word_errors(ref: str, hyp: str) -> int:
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("manifest", help="a VALIDATION manifest")
    parser.add_argument(
        "--warps", type=float, nargs="+", default=[0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.12]
    )
    parser.add_argument("--json", help="also write every warp's hypotheses and scores here")
    args = parser.parse_args()
    pipeline = Pipeline.load(args.bundle, device=torch.device("cpu")).eval()
    examples = pipeline.task.load_data(args.manifest, train=False)
    refs = [e["text"] for e in examples]
    words = sum(len(r.split()) for r in refs)
    hyps, scores, errors = {}, {}, []
    for alpha in args.warps:
        post = posteriors(pipeline, examples, alpha)
        hyps[alpha], search = decode(pipeline.decoder, post)
        scores[alpha] = {**confidence(post), "search_score": search}
        errors.append([word_errors(r, h) for r, h in zip(refs, hyps[alpha], strict=True)])
        print(f"warp {alpha:.2f} for every utterance: WER {sum(errors[-1]) / words:.4f}")
    errors = np.array(errors)  # [warps, utterances]
    print(f"oracle warp per utterance: WER {errors.min(0).sum() / words:.4f}")
    for criterion in ("max_logp", "nonblank_max_logp", "search_score"):
        picks = np.stack([scores[a][criterion] for a in args.warps]).argmax(0)
        wer = errors[picks, np.arange(len(refs))].sum() / words
        counts = np.bincount(picks, minlength=len(args.warps)).tolist()
        print(f"per utterance by {criterion}: WER {wer:.4f}  picks {counts}")
    if args.json:
        result = {
            "warps": args.warps,
            "refs": refs,
            "hyps": {str(a): hyps[a] for a in args.warps},
            "scores": {str(a): {k: v.tolist() for k, v in scores[a].items()} for a in args.warps},
        }
        with open(args.json, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
