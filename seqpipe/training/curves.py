"""Learning curves from a run's ``metrics.jsonl`` as one PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path

from seqpipe.atomic import atomic_path
from seqpipe.errors import SeqpipeError
from seqpipe.training.metrics_log import read_metrics


def plot_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Training loss and lr against step, validation metrics against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    if not rows:
        raise SeqpipeError(f"{run_dir}: no metrics.jsonl with any rows; is this a run directory?")
    train = [r for r in rows if r.get("split") == "train"]
    valid = [r for r in rows if r.get("split") == "valid"]
    skip = {"split", "step", "epoch", "train_loss"}  # train_loss is drawn with valid loss
    valid_keys = sorted({k for r in valid for k, v in r.items() if k not in skip and _num(v)})
    panels = [("loss", "training loss", train, "step"), ("lr", "learning rate", train, "step")]
    panels += [
        (k, "loss per epoch" if k == "loss" else f"validation {k}", valid, "epoch")
        for k in valid_keys
    ]
    columns = min(3, len(panels))
    lines = -(-len(panels) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.5 * columns, 3.2 * lines), squeeze=False)
    for ax, (key, title, data, x) in zip(axes.flat, panels, strict=False):
        points = [(r[x], r[key]) for r in data if _num(r.get(key))]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs,
                ys,
                marker="o" if x == "epoch" else None,
                markersize=3,
                label=split_of(data, train),
            )
        if data is valid and key == "loss":
            points = [(r["epoch"], r["train_loss"]) for r in valid if _num(r.get("train_loss"))]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label="train")
                ax.legend()
        ax.set_title(title)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    output = Path(output) if output else run_dir / "curves.png"
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return output


def split_of(data: list, train: list) -> str:
    return "train" if data is train else "valid"


def _num(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
