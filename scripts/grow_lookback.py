"""Give a trained melody ``rnn_lm`` lookback inputs without changing what it computes.

    python scripts/grow_lookback.py runs/folk-base/model.safetensors configs/music/folk.yaml \
        runs/folk-grown.safetensors

The recipe's model must be the bundle's plus ``lookback_bars`` (same cell, sizes and
layers). Every weight of the bundle is kept; the first layer's input weights gain zero
columns for the lookback inputs and the copy scores start at zero, so the grown model
scores every tune exactly as the bundle does, and fine-tuning (``train.init_from`` the
grown file) teaches it to use the bars it can now see, from the bundle's accuracy
rather than from scratch.
"""

from __future__ import annotations

import argparse

import torch

from seqpipe.config import load_config
from seqpipe.pipeline import Pipeline, read_weights, resolve_bundle
from seqpipe.plugins import registry


def grow(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> list[str]:
    """Write ``old``'s weights into ``new`` (in place); returns the names left at zero."""
    zeroed = []
    for name, value in new.items():
        if name in old and old[name].shape == value.shape:
            value.copy_(old[name])
        elif name in old:  # the first layer's input weights: old columns, then zeros
            columns = old[name].shape[1]
            value.zero_()
            value[:, :columns] = old[name]
        elif name.startswith(("model.copy", "model.copy_run")):
            value.zero_()
            zeroed.append(name)
    return zeroed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="trained melody bundle (name or path)")
    parser.add_argument("recipe", help="the same model with lookback_bars")
    parser.add_argument("output")
    args = parser.parse_args()
    torch.manual_seed(0)
    pipeline = Pipeline.from_config(load_config(args.recipe))
    old = read_weights(resolve_bundle(args.bundle, registry()))
    new = pipeline.state_dict()
    missing = [k for k in old if k not in new]
    if missing:
        raise SystemExit(f"grow: the recipe's model lacks {missing[:3]}")
    zeroed = grow(old, new)
    pipeline.load_state_dict(new)
    pipeline.save(args.output)
    print(f"{args.output}: {len(old)} weights kept, zero: {', '.join(zeroed)}")


if __name__ == "__main__":
    main()
