"""Ship a trained run as a bundled model: same weights, the recipe's decoder attached.

    python configs/speech/make_bundle.py runs/digits/model.safetensors configs/speech/digits.yaml \
        seqpipe/bundled/digits.safetensors

Decoders hold no weights, so a run trained (and validated) with greedy CTC can ship with
the lexicon beam search its recipe names; the recipe and seed go into the bundle header.
Given several runs fine-tuned from the same weights, it ships their average ("model
soup", Wortsman et al. 2022): one model as fast as each, often better than either.
Given one shipped bundle, it attaches the recipe's decoder to the same weights.
A ``ctc_rnn`` trained with an auxiliary attention speller ships without it
(``--drop-speller``): CTC decoding never reads it.
"""

from __future__ import annotations

import argparse

import torch
from safetensors.torch import load_file

from seqpipe.config import load_config
from seqpipe.pipeline import Pipeline, read_bundle_metadata


def average_weights(paths: list[str]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the bundles' weights (integer buffers from the first)."""
    states = [load_file(p) for p in paths]
    shapes = [{k: v.shape for k, v in state.items()} for state in states]
    if any(shape != shapes[0] for shape in shapes):
        raise SystemExit(f"make_bundle: {', '.join(paths)} do not hold the same model")
    return {
        k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
        for k, v in states[0].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "trained",
        nargs="+",
        help="the run's bundle (runs/NAME/model.safetensors); several: averaged",
    )
    parser.add_argument("recipe", help="the recipe whose decoder section to attach")
    parser.add_argument("output")
    parser.add_argument(
        "--drop-speller",
        action="store_true",
        help="ship a ctc_rnn trained jointly with an attention speller without the speller",
    )
    args = parser.parse_args()
    first = read_bundle_metadata(args.trained[0])
    config = dict(first["config"])
    weights = average_weights(args.trained)
    if args.drop_speller:
        config["model"] = {**config["model"], "speller_size": 0}
        weights = {k: v for k, v in weights.items() if not k.startswith("model.speller.")}
    recipe = load_config(args.recipe)
    if recipe.get("decoder"):
        config["decoder"] = recipe["decoder"]
    pipeline = Pipeline.from_config({**config, "_source": args.recipe})
    pipeline.load_state_dict(weights, strict=True)
    extra = {"recipe": args.recipe, **({"dropped": "model.speller"} if args.drop_speller else {})}
    if len(args.trained) > 1:
        extra["averaged"] = args.trained
    elif "averaged" in first:  # a shipped soup given a new decoder keeps its history
        extra["averaged"] = first["averaged"]
    pipeline.save(args.output, extra=extra)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
