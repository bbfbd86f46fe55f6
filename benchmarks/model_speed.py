"""Speed of the recurrent model family: training throughput and generation.

1. forward+backward throughput (time steps/s) of every registered recurrent model at
   batch 32, hidden 256, length 200, on the CPU and on CUDA when present;
2. fused nn.LSTM (packed) against a naive Python loop over nn.LSTMCell;
3. generation with ``rnn_lm.step()`` (O(1) per token) against re-running the whole
   prefix for every new token (O(n) per token), at 1,000 tokens.

    nice python benchmarks/model_speed.py            # full run
    nice python benchmarks/model_speed.py --quick    # a short smoke run
"""

import argparse
import inspect
import statistics
import time

import torch

BATCH, HIDDEN, LENGTH, FEATURES, CLASSES, VOCAB = 32, 256, 200, 80, 32, 128


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: bool = True) -> float:
    """Median seconds per call, after one warm-up call."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(name: str, **options) -> torch.nn.Module:
    from seqpipe.plugins import registry

    target = registry().get("model", name).load()
    wired = {"input_size": FEATURES, "output_size": CLASSES, "vocab_size": VOCAB}
    accepted = inspect.signature(target).parameters
    return target(**options, **{k: v for k, v in wired.items() if k in accepted})


def training_cases(length: int) -> dict:
    """name -> (model options, function(model, batch) -> loss)."""
    frame = lambda m, b: m(b["x"], b["lengths"])[0].square().mean()  # noqa: E731
    return {
        "rnn (tanh)": ("rnn", {}, frame),
        "lstm": ("lstm", {}, frame),
        "gru": ("gru", {}, frame),
        "lstm bidirectional": ("lstm", {"bidirectional": True}, frame),
        "lstm bi + self_attention": (
            "lstm",
            {"bidirectional": True, "self_attention": True},
            frame,
        ),
        "classifier (lstm, attention pool)": (
            "classifier",
            {"pooling": "attention"},
            lambda m, b: m(b["x"], b["lengths"]).square().mean(),
        ),
        "rnn_lm (lstm)": (
            "rnn_lm",
            {},
            lambda m, b: m(b["tokens"], b["lengths"]).square().mean(),
        ),
        "rnn_lm (lstm, attention_window 16)": (
            "rnn_lm",
            {"attention_window": 16},
            lambda m, b: m(b["tokens"], b["lengths"]).square().mean(),
        ),
        "seq2seq (additive, U=50)": (
            "seq2seq",
            {},
            lambda m, b: m(b["x"], b["lengths"], b["targets"]).square().mean(),
        ),
    }


def bench_training(device: torch.device, length: int, repeats: int) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    batch = {
        "x": torch.randn(BATCH, length, FEATURES, device=device),
        "tokens": torch.randint(0, VOCAB, (BATCH, length), device=device),
        "targets": torch.randint(0, VOCAB, (BATCH, length // 4), device=device),
        # lengths vary as in a real bucketed batch: 90-100% of the longest
        "lengths": torch.linspace(length, int(0.9 * length), BATCH).long(),
    }
    rows = []
    for label, (name, options, loss_fn) in training_cases(length).items():
        model = build(name, hidden_size=HIDDEN, **options).to(device)

        def step(model=model, loss_fn=loss_fn):
            model.zero_grad(set_to_none=True)
            loss_fn(model, batch).backward()

        seconds = timed(step, device, repeats)
        rows.append((f"{label} [{device.type}]", BATCH * length / seconds))
    return rows


def bench_fused_vs_loop(device: torch.device, length: int, repeats: int) -> tuple[float, float]:
    """Time steps/s of fused packed nn.LSTM (via the ``lstm`` stack) vs a loop of LSTMCell."""
    from seqpipe.models.rnn import RecurrentStack

    torch.manual_seed(0)
    x = torch.randn(BATCH, length, FEATURES, device=device)
    lengths = torch.full((BATCH,), length)
    fused = RecurrentStack("lstm", FEATURES, HIDDEN).to(device)
    cell = torch.nn.LSTMCell(FEATURES, HIDDEN).to(device)

    def run_fused():
        fused.zero_grad(set_to_none=True)
        fused.run(x, lengths)[0].square().mean().backward()

    def run_loop():
        cell.zero_grad(set_to_none=True)
        h = c = x.new_zeros(BATCH, HIDDEN)
        outs = []
        for t in range(length):
            h, c = cell(x[:, t], (h, c))
            outs.append(h)
        torch.stack(outs, 1).square().mean().backward()

    return (
        BATCH * length / timed(run_fused, device, repeats),
        BATCH * length / timed(run_loop, device, repeats),
    )


@torch.no_grad()
def bench_generation(device: torch.device, tokens: int, window: int = 0) -> tuple[float, float]:
    """Greedy generation tokens/s: O(1) step() vs re-running the prefix (batch 1)."""
    torch.manual_seed(0)
    model = build("rnn_lm", hidden_size=HIDDEN, attention_window=window).to(device).eval()
    start_token = torch.zeros(1, dtype=torch.long, device=device)

    def with_step(tokens=tokens):
        state, token = model.initial_state(1, device), start_token
        for _ in range(tokens):
            logits, state = model.step(token, state)
            token = logits.argmax(-1)

    def rerun_prefix(tokens=tokens):
        seq = start_token.view(1, 1)
        for _ in range(tokens):
            logits = model(seq, torch.tensor([seq.shape[1]]))[:, -1]
            seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], dim=1)

    with_step(10), rerun_prefix(10)  # warm-up; a full warm-up of the O(n^2) loop is too slow
    return (
        tokens / timed(with_step, device, 1, warmup=False),
        tokens / timed(rerun_prefix, device, 1, warmup=False),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short sequences, few repeats")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines: 1)")
    parser.add_argument(
        "--device",
        action="append",
        choices=["cpu", "cuda"],
        help="only these devices (repeatable; default: the CPU, and CUDA when present)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    length = 50 if args.quick else LENGTH
    repeats = 2 if args.quick else 5
    gen_tokens = 100 if args.quick else 1000
    names = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [torch.device(name) for name in names]
    print(
        f"torch {torch.__version__}, {args.threads} CPU threads"
        + "".join(f", {torch.cuda.get_device_name(d)}" for d in devices if d.type == "cuda")
    )
    print(f"batch {BATCH}, hidden {HIDDEN}, length {length}, {FEATURES} input features\n")
    print("| model | forward+backward time steps/s |\n|---|---|")
    for device in devices:
        for label, rate in bench_training(device, length, repeats):
            print(f"| {label} | {rate:,.0f} |", flush=True)

    print("\n| device | fused nn.LSTM steps/s | LSTMCell loop steps/s | fused / loop |")
    print("|---|---|---|---|")
    for device in devices:
        fused, loop = bench_fused_vs_loop(device, length, repeats)
        print(f"| {device.type} | {fused:,.0f} | {loop:,.0f} | {fused / loop:.1f}x |", flush=True)

    print(f"\ngreedy generation of {gen_tokens} tokens, batch 1, rnn_lm (lstm, 2x{HIDDEN})")
    print("| device | model | step() tokens/s | re-run prefix tokens/s | ratio |")
    print("|---|---|---|---|---|")
    for device in devices:
        for window in (0, 16):
            fast, slow = bench_generation(device, gen_tokens, window)
            name = f"attention_window {window}" if window else "plain"
            print(f"| {device.type} | {name} | {fast:,.0f} | {slow:,.0f} | {fast / slow:.0f}x |")


if __name__ == "__main__":
    main()
