"""Training throughput (forward + backward) of one minGRU/minLSTM layer against nn.GRU/LSTM.

Run: ``python plugins/seqpipe-minrnn/benchmark.py`` (CPU; ``--threads`` to pin cores).
The min-RNNs run as a parallel scan over time. Two references show what each part
buys: "minGRU, torch scan" is the same layer with the paper's plain
``torch.logcumsumexp`` scan instead of the blockwise one, and "minGRU, step loop" runs
it one step at a time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from seqpipe_minrnn.cells import MinGRUCell, MinLSTMCell
from seqpipe_minrnn.scan import log_g


def best_times(runs: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, float]:
    """Best seconds of forward + backward per run after a warm-up, taken in turns.

    Taking turns (rather than all repeats of one run, then the next) keeps a busy
    shared machine from favouring whichever run happened to go first.
    """
    best = dict.fromkeys(runs, float("inf"))
    for round in range(repeats + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run().sum().backward()
            if round:  # round 0 warms up
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, T, H = args.batch, args.length, args.hidden
    x = torch.randn(B, T, H, requires_grad=True)
    gru, lstm = nn.GRU(H, H, batch_first=True), nn.LSTM(H, H, batch_first=True)
    mingru, minlstm = MinGRUCell(H, H), MinLSTMCell(H, H)

    def mingru_torch_scan() -> torch.Tensor:
        k, pre_h = mingru.linear(x).chunk(2, dim=-1)
        log_a, log_b = -F.softplus(k), -F.softplus(-k) + log_g(pre_h)
        a_star = log_a.cumsum(dim=1)
        return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))

    def mingru_loop() -> torch.Tensor:
        h, out = torch.zeros(B, H), []
        for t in range(T):
            h = mingru.step(x[:, t], h)
            out.append(h)
        return torch.stack(out, dim=1)

    runs = {
        "minGRU, parallel scan": lambda: mingru(x),
        "minLSTM, parallel scan": lambda: minlstm(x),
        "nn.GRU (fused)": lambda: gru(x)[0],
        "nn.LSTM (fused)": lambda: lstm(x)[0],
        "minGRU, torch scan": mingru_torch_scan,
        "minGRU, step loop": mingru_loop,
    }
    print(f"batch {B}, length {T}, hidden {H}, threads {torch.get_num_threads()}")
    print(f"{'layer':<24} {'frames/s':>12} {'ms/batch':>10} {'vs nn.GRU':>10}")
    best = best_times(runs, args.repeats)
    for name, seconds in best.items():
        ratio = best["nn.GRU (fused)"] / seconds
        print(f"{name:<24} {B * T / seconds:>12,.0f} {1000 * seconds:>10.1f} {ratio:>9.2f}x")


if __name__ == "__main__":
    main()
