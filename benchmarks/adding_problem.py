"""The adding problem (Hochreiter & Schmidhuber 1997): vanishing gradients, shown.

Each input step is (value ~ U[0,1], marker in {0,1}); exactly two steps are marked, one
in each half of the sequence, and the target is the sum of the two marked values,
read from the model's output at the last step. Always predicting 1.0 scores the
variance of that sum, 1/6 ~ 0.167; doing better needs memory across ~T/2 steps.

The registered ``rnn``, ``lstm`` and ``gru`` frame models train with the same budget.
The gradient of the loss with respect to the first input step, relative to the last,
shows why the tanh RNN cannot learn it: the signal from step 1 has all but vanished.

    nice python benchmarks/adding_problem.py                 # T=100, ~15 min on 1 CPU thread
    nice python benchmarks/adding_problem.py --length 200 --steps 6000 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import time

import torch


def adding_batch(
    batch_size: int, length: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs [B,T,2] (value, marker) and targets [B] (the sum of the two marked values)."""
    values = torch.rand(batch_size, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, length, (batch_size,), generator=generator)
    markers = torch.zeros(batch_size, length)
    rows = torch.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(1)


def build_model(name: str, hidden_size: int) -> torch.nn.Module:
    """The registered frame model, wired as a task would wire it: 2 inputs, 1 output."""
    from seqpipe.plugins import registry

    target = registry().get("model", name).load()
    return target(input_size=2, output_size=1, hidden_size=hidden_size, num_layers=1)


def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    lengths = torch.full((x.shape[0],), x.shape[1])
    y, _ = model(x, lengths)
    return y[:, -1, 0]  # the output at the last step


def input_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean norm of dLoss/dx_t over the batch, per step t: [T].

    Computed in float64 on a copy: in float32 the first step's gradient underflows to 0.
    """
    model, x, y = copy.deepcopy(model).double(), x.double().requires_grad_(True), y.double()
    loss = torch.nn.functional.mse_loss(predict(model, x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad.norm(dim=-1).mean(0)


def run(
    models: tuple[str, ...] = ("rnn", "lstm", "gru"),
    length: int = 100,
    steps: int = 3000,
    hidden_size: int = 64,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    log_every: int = 0,
) -> list[dict]:
    """Train each model with the same budget; return one row of results per model."""
    test_x, test_y = adding_batch(1000, length, torch.Generator().manual_seed(10_000 + seed))
    rows = []
    for name in models:
        torch.manual_seed(seed)
        model = build_model(name, hidden_size)
        grad_init = input_gradients(model, test_x[:256], test_y[:256])
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        data = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        for step in range(1, steps + 1):
            x, y = adding_batch(batch_size, length, data)
            loss = torch.nn.functional.mse_loss(predict(model, x), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if log_every and step % log_every == 0:
                print(f"  {name} step {step}: train mse {loss.item():.4f}", flush=True)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            test_mse = torch.nn.functional.mse_loss(predict(model, test_x), test_y).item()
        grad_end = input_gradients(model, test_x[:256], test_y[:256])
        rows.append(
            {
                "model": name,
                "test_mse": test_mse,
                "grad_first": grad_init[0].item(),
                "grad_last": grad_init[-1].item(),
                "grad_first_trained": grad_end[0].item(),
                "grad_last_trained": grad_end[-1].item(),
                "seconds": seconds,
            }
        )
    return rows


def format_table(rows: list[dict], baseline: float) -> str:
    lines = [
        "| model | test MSE | dL/dx_1 (init) | dL/dx_T (init) | ratio x_1/x_T (init) "
        "| ratio x_1/x_T (trained) | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['test_mse']:.4f} | {r['grad_first']:.2e} | {r['grad_last']:.2e} "
            f"| {r['grad_first'] / r['grad_last']:.1e} "
            f"| {r['grad_first_trained'] / r['grad_last_trained']:.1e} | {r['seconds']:.0f} |"
        )
    lines.append(f"| predict 1.0 | {baseline:.4f} | | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100, help="sequence length T")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per model")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--models", default="rnn,lstm,gru")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (be kind)")
    parser.add_argument("--log-every", type=int, default=250)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = run(
        tuple(args.models.split(",")),
        args.length,
        args.steps,
        args.hidden_size,
        args.batch_size,
        args.lr,
        args.seed,
        args.log_every,
    )
    _, test_y = adding_batch(1000, args.length, torch.Generator().manual_seed(10_000 + args.seed))
    baseline = torch.nn.functional.mse_loss(torch.ones_like(test_y), test_y).item()
    print(
        f"\nadding problem, T={args.length}, {args.steps} steps x batch {args.batch_size}, "
        f"hidden {args.hidden_size}, Adam lr {args.lr}, seed {args.seed}\n"
    )
    print(format_table(rows, baseline))


if __name__ == "__main__":
    main()
