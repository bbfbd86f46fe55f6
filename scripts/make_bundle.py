"""Ship a trained run as a bundled model: same weights, the recipe's name and decoder.

    python scripts/make_bundle.py runs/digits/model.safetensors configs/speech/digits.yaml \
        seqpipe/bundled/digits.safetensors

Decoders hold no weights, so a run trained (and validated) with greedy CTC can ship with
the lexicon beam search its recipe names; the recipe and seed go into the bundle header.
Given several runs fine-tuned from the same weights, it ships their average ("model
soup", Wortsman et al. 2022): one model as fast as each, often better than either.
With ``--ensemble``, runs trained from scratch with different seeds ship side by side
instead, as one ``ctc_ensemble`` whose posteriors are averaged (different seeds' weights
cannot be averaged). Given one shipped bundle, it attaches the recipe's decoder to the
same weights.
A ``ctc_rnn`` trained with an auxiliary attention speller ships without it
(``--drop-speller``): CTC decoding never reads it.
"""

from __future__ import annotations

import argparse

import torch

from seqpipe.config import load_config
from seqpipe.pipeline import Pipeline, read_bundle_metadata, read_weights


def average_weights(states: list[dict[str, torch.Tensor]], paths: list[str]) -> dict:
    """The element-wise mean of the runs' weights (integer buffers from the first)."""
    shapes = [{k: v.shape for k, v in state.items()} for state in states]
    if any(shape != shapes[0] for shape in shapes):
        raise SystemExit(f"make_bundle: {', '.join(paths)} do not hold the same model")
    return {
        k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
        for k, v in states[0].items()
    }


def ensemble(
    configs: list[dict], states: list[dict[str, torch.Tensor]], paths: list[str]
) -> tuple[dict, dict[str, torch.Tensor]]:
    """One ``ctc_ensemble`` config and its weights: each run's model as a member."""
    for config, state, path in zip(configs[1:], states[1:], paths[1:], strict=True):
        same_features = config["features"] == configs[0]["features"] and all(
            torch.equal(v, state[k]) for k, v in states[0].items() if k.startswith("features.")
        )
        if not same_features or config["model"] != configs[0]["model"]:
            raise SystemExit(
                f"make_bundle: {path} and {paths[0]} do not share one model config and front end"
            )
    weights = {k: v for k, v in states[0].items() if k.startswith("features.")}
    for i, state in enumerate(states):
        for k, v in state.items():
            if k.startswith("model."):
                weights[f"model.members.{i}.{k.removeprefix('model.')}"] = v
    model = {"name": "ctc_ensemble", "size": len(states), "member": configs[0]["model"]}
    return {**configs[0], "model": model}, weights


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
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="ship several runs as one ctc_ensemble (posteriors averaged), not their mean",
    )
    parser.add_argument(
        "--int8-weights",
        action="store_true",
        help="store the weight matrices in int8 with a scale per row (a quarter of the bytes)",
    )
    args = parser.parse_args()
    if args.ensemble and len(args.trained) < 2:
        parser.error("--ensemble needs at least two runs")
    metadata = [read_bundle_metadata(p) for p in args.trained]
    configs = [dict(m["config"]) for m in metadata]
    states = [read_weights(p) for p in args.trained]
    if args.drop_speller:
        for config in configs:
            config["model"] = {**config["model"], "speller_size": 0}
        states = [
            {k: v for k, v in s.items() if not k.startswith("model.speller.")} for s in states
        ]
    if args.ensemble:
        config, weights = ensemble(configs, states, args.trained)
    else:
        config, weights = configs[0], average_weights(states, args.trained)
    recipe = load_config(args.recipe)
    if recipe.get("decoder"):
        config["decoder"] = recipe["decoder"]
    config["name"] = recipe.get("name", config.get("name"))  # the recipe that ships it
    pipeline = Pipeline.from_config({**config, "_source": args.recipe})
    pipeline.load_state_dict(weights, strict=True)
    extra = {"recipe": args.recipe, **({"dropped": "model.speller"} if args.drop_speller else {})}
    if len(args.trained) > 1:
        extra["ensemble" if args.ensemble else "averaged"] = args.trained
        if args.ensemble:
            extra["seeds"] = [c.get("seed") for c in configs]
    else:  # a shipped soup or ensemble given a new decoder keeps its history
        extra.update(
            {k: metadata[0][k] for k in ("averaged", "ensemble", "seeds") if k in metadata[0]}
        )
    pipeline.save(args.output, extra=extra, int8_weights=args.int8_weights)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
