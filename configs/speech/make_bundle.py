"""Ship a trained run as a bundled model: same weights, the recipe's decoder attached.

    python configs/speech/make_bundle.py runs/digits/model.safetensors configs/speech/digits.yaml \
        seqpipe/bundled/digits.safetensors

Decoders hold no weights, so a run trained (and validated) with greedy CTC can ship with
the lexicon beam search its recipe names; the recipe and seed go into the bundle header.
"""

from __future__ import annotations

import argparse

from safetensors.torch import load_file

from seqpipe.config import load_config
from seqpipe.pipeline import Pipeline, read_bundle_metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", help="the run's bundle (runs/NAME/model.safetensors)")
    parser.add_argument("recipe", help="the recipe whose decoder section to attach")
    parser.add_argument("output")
    args = parser.parse_args()
    config = dict(read_bundle_metadata(args.trained)["config"])
    recipe = load_config(args.recipe)
    if recipe.get("decoder"):
        config["decoder"] = recipe["decoder"]
    pipeline = Pipeline.from_config({**config, "_source": args.recipe})
    pipeline.load_state_dict(load_file(args.trained), strict=True)
    pipeline.save(args.output, extra={"recipe": args.recipe})
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
