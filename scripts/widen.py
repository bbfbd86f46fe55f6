"""Widen a trained ``ctc_rnn`` GRU stack (hidden H -> H2) without changing what it computes.

    python scripts/widen.py runs/en-small-voices3/model.safetensors \
        configs/speech/en-small-widened.yaml runs/en-small-widened0.safetensors

Training a wider model from scratch costs many CPU epochs before it catches up with the
narrow one; growing the narrow one (Net2Net, Chen et al. 2016) starts the wide model at
the narrow model's accuracy. Every old unit keeps its weights and nothing flows from a new
unit into an old one (zeros in the next layer's input, recurrent and output weights), so
the old units compute what they did; the new units start from PyTorch's default init and
learn from there. The new input projection dims copy randomly chosen old dims, so the
LayerNorm over them sees nearly the old statistics (the one approximate step).
"""

from __future__ import annotations

import argparse

import torch

from seqpipe.config import load_config
from seqpipe.pipeline import Pipeline, read_weights

RNN = "model.rnn.rnn."


def widen(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> None:
    """Write ``old``'s weights into the wider ``new`` state dict (in place); the copied
    dims are drawn from torch's global generator, seeded by the caller."""
    H, H2 = old["model.norm.weight"].shape[0], new["model.norm.weight"].shape[0]
    if H2 < H:
        raise SystemExit(f"widen: the recipe's hidden_size {H2} is below the run's {H}")
    extra = torch.randperm(H)[: H2 - H]
    copy_of = torch.cat([torch.arange(H), extra])  # new proj dim i copies old dim copy_of[i]
    for name in ("proj.weight", "proj.bias", "norm.weight", "norm.bias"):
        new[f"model.{name}"] = old[f"model.{name}"][copy_of].clone()
    # the old units' outputs inside a [forward H2 | backward H2] layer output
    old_outputs = torch.cat([torch.arange(H), H2 + torch.arange(H)])
    for key in [k for k in old if k.startswith(RNN)]:
        for gate in range(3):  # PyTorch's GRU rows: reset, update, new
            rows = slice(gate * H2, gate * H2 + H)
            source = old[key][gate * H : (gate + 1) * H]
            if key.startswith(RNN + "bias"):
                new[key][rows] = source
                continue
            new[key][rows] = 0
            if key.startswith(RNN + "weight_ih_l0"):
                new[key][rows, :H] = source
            elif key.startswith(RNN + "weight_ih"):
                new[key][rows, old_outputs] = source
            else:  # weight_hh
                new[key][rows, :H] = source
    new["model.head.weight"].zero_()
    new["model.head.weight"][:, old_outputs] = old["model.head.weight"]
    new["model.head.bias"] = old["model.head.bias"].clone()
    for key in old:
        if key.startswith(("features.", "model.frontend.")):
            new[key] = old[key].clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the trained bundle to grow")
    parser.add_argument("recipe", help="the wider recipe (same model but hidden_size)")
    parser.add_argument("out", help="where to write the widened bundle")
    parser.add_argument("--seed", type=int, default=0, help="new units' init and copied dims")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = load_config(args.recipe)
    config.pop("train", None)
    pipeline = Pipeline.from_config(config)
    state = {k: v.clone() for k, v in pipeline.state_dict().items()}
    widen(read_weights(args.run), state)
    pipeline.load_state_dict(state, strict=True)
    pipeline.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
