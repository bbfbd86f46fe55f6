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

import numpy as np
import torch
from common import decode, posteriors, word_errors

from seqpipe.pipeline import Pipeline


def confidence(utterances: list[torch.Tensor], blank: int = 0) -> dict[str, np.ndarray]:
    best, nonblank = [], []
    for u in utterances:
        top, which = u.max(-1)
        best.append(float(top.mean()))
        kept = top[which != blank]
        nonblank.append(float(kept.mean()) if len(kept) else -1e9)
    return {"max_logp": np.array(best), "nonblank_max_logp": np.array(nonblank)}


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
