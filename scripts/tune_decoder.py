"""Grid-search a bundle's CTC beam options (beam, token beam, threshold, LM weight, word
score) on VALIDATION manifests.

    python scripts/tune_decoder.py digits data/digits/valid.jsonl --word-score -2 -1 0 1
    python scripts/tune_decoder.py en-small data/real/libri_dev.jsonl data/real/an4_dev.jsonl \\
        --beam-size 50 100 200 --lm-weight 1 1.5 --word-score 0 1
    python scripts/tune_decoder.py runs/en-small-real/model.safetensors \\
        data/real/libri_dev.jsonl data/real/an4_dev.jsonl --lm data/lm/books.arpa \\
        --lm-weight 1 1.5 2 --word-score -1 0 1 --rescore 8 --rescore-word-score -0.5

The network runs once per manifest; each grid point only searches its posteriors again,
so a point costs the search alone. Options not given keep the bundle's values; ``--lm``
(and ``--lexicon``) swap the word LM. With several manifests each gets a WER column and
the mean of them decides. ``search s/s``: search CPU seconds per audio second (what the
beam costs on top of the network; compare it between points, not between machines).

Tune on validation data only; the chosen values go into the recipe's ``decoder:`` section
and the test sets are scored once, afterwards, with ``seqpipe evaluate``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import jiwer
import torch

from seqpipe.decoders.ctc_greedy import ctc_posteriors
from seqpipe.deploy.quantize import for_compute_type
from seqpipe.pipeline import Pipeline
from seqpipe.training.evaluation import eval_batches


def posteriors(pipeline, examples) -> tuple[list, list[str], float]:
    """The network's CTC log-probs for each batch, the reference texts, the audio seconds."""
    task, batches, refs, seconds = pipeline.task, [], [], 0.0
    pipeline.eval()
    with torch.no_grad():
        for batch in eval_batches(task, examples, 16, pipeline.device):
            feats, feat_lengths = pipeline.features(batch["waves"], batch["lengths"])
            log_probs, lengths, _ = ctc_posteriors(pipeline.model, feats, feat_lengths)
            batches.append((log_probs, lengths))
            seconds += float(batch["lengths"].sum()) / pipeline.sample_rate
            for target, n in zip(batch["targets"], batch["target_lengths"], strict=True):
                refs.append("".join(task.vocab[i] for i in target[: int(n)].tolist()))
    return batches, refs, seconds


def score(decoder, batches, refs: list[str], seconds: float) -> tuple[float, float, float]:
    """WER, CER and search CPU seconds per audio second of one grid point."""
    start = time.process_time()
    hyps = [h.text for log_probs, lengths in batches for h in decoder(log_probs, lengths)]
    busy = time.process_time() - start
    kept = [i for i, r in enumerate(refs) if r.strip()]
    refs, hyps = [refs[i] for i in kept], [hyps[i] for i in kept]
    return jiwer.wer(refs, hyps), jiwer.cer(refs, hyps), busy / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--lm", help="word LM (ARPA) in place of the bundle's")
    parser.add_argument("--lexicon", help="lexicon for --lm (default: beside it, else its words)")
    parser.add_argument("--word-score", type=float, nargs="+", default=[None])
    parser.add_argument("--lm-weight", type=float, nargs="+", default=[None])
    parser.add_argument("--beam-size", type=int, nargs="+", default=[None])
    parser.add_argument("--beam-threshold", type=float, nargs="+", default=[None])
    parser.add_argument("--beam-size-token", type=int, nargs="+", default=[None])
    parser.add_argument("--rescore", type=int, help="distinct word sequences rescored (0: off)")
    parser.add_argument("--rescore-word-score", type=float)
    parser.add_argument(
        "--compute-type", default="auto", help="the network as transcribe runs it (auto: int8)"
    )
    parser.add_argument(
        "--log-add",
        action=argparse.BooleanOptionalAction,
        help="sum (--log-add) or max (--no-log-add) over paths that merge into one prefix",
    )
    args = parser.parse_args()
    pipeline = Pipeline.load(args.bundle, device=torch.device("cpu"))
    pipeline.model = for_compute_type(pipeline, args.compute_type)
    if args.lm:
        config = {**pipeline.config, "decoder": {**pipeline.config["decoder"], "lm": args.lm}}
        config["decoder"]["lexicon"] = args.lexicon
        pipeline.decoder = Pipeline.from_config(config).decoder
    decoder = pipeline.decoder
    if not hasattr(decoder, "set_options"):
        raise SystemExit(f"{args.bundle}: its decoder is not a CTC beam search")
    if args.log_add is not None:
        decoder.set_options(log_add=args.log_add)
    if args.rescore is not None:
        decoder.set_options(rescore=args.rescore)
    if args.rescore_word_score is not None:
        decoder.set_options(rescore_word_score=args.rescore_word_score)
    sets = [posteriors(pipeline, pipeline.task.load_data(p, train=False)) for p in args.manifests]
    names = [Path(path).stem for path in args.manifests]
    header = "".join(f" {name + ' wer/cer':>17} {'search s/s':>10}" for name in names)
    mean_header = " mean wer" if len(sets) > 1 else ""
    keys = ["beam_size", "beam_size_token", "beam_threshold", "lm_weight", "word_score"]
    print(
        f"{'beam':>5} {'token':>5} {'threshold':>9} {'lm_weight':>9} {'word_score':>10}"
        f"{header}{mean_header}"
    )
    grid = itertools.product(*(getattr(args, key) for key in keys))
    for point in grid:
        changes = dict(zip(keys, point, strict=True))
        decoder.set_options(**{k: v for k, v in changes.items() if v is not None})
        scores = [score(decoder, *data) for data in sets]
        o = decoder.options
        cells = "".join(f" {w:>8.4f}/{c:.4f} {t:>10.4f}" for w, c, t in scores)
        mean = sum(w for w, _, _ in scores) / len(scores)
        print(
            f"{o['beam_size']:>5} {o['beam_size_token'] or '-':>5} {o['beam_threshold']:>9}"
            f" {o['lm_weight']:>9} {o['word_score']:>10}{cells}"
            + (f" {mean:>8.4f}" if len(sets) > 1 else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
