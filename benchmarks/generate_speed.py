"""Melody generation speed: what ``seqpipe generate`` costs end to end.

1. a 64-bar 4/4 melody, one at a time and a batch of 64 (events/s, seconds), on the
   CPU and on CUDA when present; targets on the 2-core dev box: < 0.2 s and < 2 s;
2. time to first note (prompt + conditioning tokens + the first note's tokens);
3. incremental ``step()`` decoding against re-running the whole prefix for every new
   token, at 1,000 tokens. The prefix cost is measured at 20 prefix lengths and
   summed over all 1,000 (trapezoid rule), since running it in full takes minutes.

    nice python benchmarks/generate_speed.py                 # the bundled folk model
    nice python benchmarks/generate_speed.py --model runs/folk/model.safetensors --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds per call after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load(model: str, device: torch.device):
    from seqpipe.config import load_config
    from seqpipe.errors import SeqpipeError
    from seqpipe.pipeline import Pipeline

    try:
        return Pipeline.load(model, device=device), model
    except SeqpipeError:  # no trained bundle yet: same architecture, untrained
        config = load_config("configs/music/folk.yaml")
        return Pipeline.from_config(config).to(device).eval(), "configs/music/folk.yaml (untrained)"


def bench_device(model: str, device: torch.device, repeats: int) -> dict[str, float]:
    from seqpipe.music.generator import generate_melodies
    from seqpipe.music.request import Request

    pipeline, name = load(model, device)
    out: dict[str, float] = {"model": name, "device": str(device)}
    for n in (1, 64):
        request = Request(n=n, bars=64, time_signature=(4, 4), tempo=120, seed=0)
        counted = generate_melodies(pipeline, request)
        events = sum(len(m.notes) for m in counted)
        seconds = timed(lambda r=request: generate_melodies(pipeline, r), device, repeats)
        out[f"batch{n}_seconds"] = seconds
        out[f"batch{n}_notes_per_s"] = events / seconds
    first = Request(n=1, steps=1, time_signature=(4, 4), tempo=120, seed=0)
    out["first_note_ms"] = 1000 * timed(lambda: generate_melodies(pipeline, first), device, repeats)
    out |= incremental_vs_prefix(pipeline.model, pipeline.features.vocab_size, device)
    return out


@torch.inference_mode()
def incremental_vs_prefix(model, vocab: int, device: torch.device, n: int = 1000) -> dict:
    tokens = torch.randint(3, vocab, (1, n), generator=torch.Generator().manual_seed(0)).to(device)

    def incremental():
        state = model.initial_state(1, device)
        for t in range(n):
            _, state = model.step(tokens[:, t], state)

    step_s = timed(incremental, device, 1)
    lengths = sorted({max(1, round(n * i / 19)) for i in range(20)})
    per_length = []
    for length in lengths:
        lens = torch.tensor([length])
        per_length.append(timed(lambda le=length, ls=lens: model(tokens[:, :le], ls), device, 1))
    prefix_s = 0.0  # trapezoid: the cost of re-running every prefix 1..n
    for (a, ta), (b, tb) in zip(
        zip(lengths, per_length, strict=False),
        zip(lengths[1:], per_length[1:], strict=False),
        strict=False,
    ):
        prefix_s += (b - a) * (ta + tb) / 2
    return {
        "incremental_1000_seconds": step_s,
        "prefix_recompute_1000_seconds_est": prefix_s,
        "prefix_over_incremental": prefix_s / step_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="folk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's, all cores)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    results = [bench_device(args.model, d, args.repeats) for d in devices]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"{r['model']} on {r['device']}:")
        for n in (1, 64):
            print(
                f"  64 bars x {n:>2}: {r[f'batch{n}_seconds']:.3f} s  ({r[f'batch{n}_notes_per_s']:.0f} notes/s)"
            )
        print(f"  time to first note: {r['first_note_ms']:.1f} ms")
        print(f"  1,000 tokens: step() {r['incremental_1000_seconds']:.2f} s, prefix re-computation "
              f"~{r['prefix_recompute_1000_seconds_est']:.1f} s (x{r['prefix_over_incremental']:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
