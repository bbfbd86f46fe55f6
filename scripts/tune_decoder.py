"""Grid-search a bundle's CTC beam options (word_score, lm_weight) on VALIDATION manifests.

    python scripts/tune_decoder.py digits data/digits/valid.jsonl --word-score -2 -1 0 1
    python scripts/tune_decoder.py runs/en-small/model.safetensors \\
        data/en-small/valid.jsonl --lm-weight 0.5 1 1.5 --word-score 0 1 2
    python scripts/tune_decoder.py en-small data/en-small/valid_unseen_voices.jsonl \\
        --no-log-add --beam-size 200 --lm-weight 1.5 2 2.5 --word-score -1 -0.5 0
    python scripts/tune_decoder.py en-small data/en-small/valid_tts.jsonl \\
        --rescore 8 --rescore-word-score -0.5
    python scripts/tune_decoder.py runs/en-small-real/model.safetensors \\
        data/real/libri_dev.jsonl data/real/an4_dev.jsonl --lm data/lm/books.arpa \\
        --lm-weight 1 1.5 2 --word-score -1 0 1

Options not given keep the bundle's values; ``--lm`` (and ``--lexicon``) swap the word
LM. With several manifests each gets a WER column and the mean of them decides.

Tune on validation data only; the chosen values go into the recipe's ``decoder:`` section
and the test sets are scored once, afterwards, with ``seqpipe evaluate``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch

from seqpipe.pipeline import Pipeline
from seqpipe.training.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--lm", help="word LM (ARPA) in place of the bundle's")
    parser.add_argument("--lexicon", help="lexicon for --lm (default: beside it, else its words)")
    parser.add_argument("--word-score", type=float, nargs="+", default=[None])
    parser.add_argument("--lm-weight", type=float, nargs="+", default=[None])
    parser.add_argument("--beam-size", type=int)
    parser.add_argument("--beam-threshold", type=float)
    parser.add_argument("--rescore", type=int, help="distinct word sequences rescored (0: off)")
    parser.add_argument("--rescore-word-score", type=float)
    parser.add_argument(
        "--log-add",
        action=argparse.BooleanOptionalAction,
        help="sum (--log-add) or max (--no-log-add) over paths that merge into one prefix",
    )
    args = parser.parse_args()
    pipeline = Pipeline.load(args.bundle, device=torch.device("cpu"))
    if args.lm:
        config = {**pipeline.config, "decoder": {**pipeline.config["decoder"], "lm": args.lm}}
        config["decoder"]["lexicon"] = args.lexicon
        pipeline.decoder = Pipeline.from_config(config).decoder
    decoder = pipeline.decoder
    if not hasattr(decoder, "set_options"):
        raise SystemExit(f"{args.bundle}: its decoder is not a CTC beam search")
    if args.beam_size:
        decoder.set_options(beam_size=args.beam_size)
    if args.beam_threshold:
        decoder.set_options(beam_threshold=args.beam_threshold)
    if args.log_add is not None:
        decoder.set_options(log_add=args.log_add)
    if args.rescore is not None:
        decoder.set_options(rescore=args.rescore)
    if args.rescore_word_score is not None:
        decoder.set_options(rescore_word_score=args.rescore_word_score)
    sets = [pipeline.task.load_data(path, train=False) for path in args.manifests]
    names = [Path(path).stem for path in args.manifests]
    header = "".join(f" {name + ' wer/cer':>17}" for name in names)
    print(f"{'lm_weight':>9} {'word_score':>10}{header}" + (" mean wer" if len(sets) > 1 else ""))
    for lm_weight, word_score in itertools.product(args.lm_weight, args.word_score):
        if lm_weight is not None:
            decoder.set_options(lm_weight=lm_weight)
        if word_score is not None:
            decoder.set_options(word_score=word_score)
        scores = [evaluate(pipeline, examples) for examples in sets]
        o = decoder.options
        cells = "".join(f" {m['wer']:>8.4f}/{m['cer']:.4f}" for m in scores)
        mean = sum(m["wer"] for m in scores) / len(scores)
        print(
            f"{o['lm_weight']:>9} {o['word_score']:>10}{cells}"
            + (f" {mean:>8.4f}" if len(sets) > 1 else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
