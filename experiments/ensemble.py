"""Posterior averaging of CTC speech bundles that share features and frame rate.

Independently trained models err on different clips, so their averaged frame
posteriors often decode better than either alone, which matters most where the test
condition is far from training (an unseen real speaker). Prints each member's WER and
the ensemble's, decoded by the first bundle's decoder.

    python experiments/ensemble.py runs/a/model.safetensors runs/b/model.safetensors \\
        --data data/digits/loso_test_george.jsonl
"""

from __future__ import annotations

import argparse

import torch
from common import decode, posteriors, word_errors

from seqpipe.models.ensemble import mean_posterior
from seqpipe.pipeline import Pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--data", required=True, help="a VALIDATION manifest")
    args = parser.parse_args()
    pipelines = [Pipeline.load(b, device=torch.device("cpu")).eval() for b in args.bundles]
    examples = pipelines[0].task.load_data(args.data, train=False)
    refs = [e["text"] for e in examples]
    words = sum(len(r.split()) for r in refs)
    members = [posteriors(p, examples, 1.0) for p in pipelines]

    def wer(post: list[torch.Tensor]) -> float:
        hyps = decode(pipelines[0].decoder, post)[0]
        return sum(map(word_errors, refs, hyps)) / words

    for name, post in zip(args.bundles, members, strict=True):
        print(f"{name}: WER {wer(post):.4f}")
    mean = [mean_posterior(f) for f in zip(*members, strict=True)]
    print(f"ensemble of {len(members)}: WER {wer(mean):.4f}")


if __name__ == "__main__":
    main()
