"""Training checkpoints: atomic, rotated, loadable with ``weights_only=True``, corruption-tolerant.

A checkpoint holds everything needed to continue bit-for-bit: model, optimiser and
scheduler state, every RNG state (as tensors and plain containers, so no pickled
objects are needed), the data position (epoch and batch within it) and the trainer's
bookkeeping. Files are ``RUN/checkpoints/step-00001234.pt``; the newest ``keep`` stay.
A checkpoint that fails to load is renamed ``*.corrupt`` (so rotation never keeps it
over good ones) and the next newest is used.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.atomic import atomic_path
from seqpipe.errors import SeqpipeError

FORMAT = "seqpipe-checkpoint/1"
REQUIRED = ("format", "model", "optimizer", "scheduler", "rng", "position", "progress")


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run, oldest first (by step number in the name)."""
    folder = checkpoint_dir(run_dir)
    return sorted(folder.glob("step-*.pt")) if folder.is_dir() else []


def save_checkpoint(
    run_dir: str | os.PathLike, state: dict[str, Any], step: int, keep: int = 2
) -> Path:
    """Write ``state`` atomically as ``step-{step}.pt`` and drop all but the newest ``keep``."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:08d}.pt"
    with atomic_path(path, fsync=True) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load one checkpoint (never unpickling code); SeqpipeError if it is damaged."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, I/O error...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeqpipeError(f"{path}: checkpoint is corrupt or truncated ({reason})") from None
    missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
    if missing or state.get("format") != FORMAT:
        raise SeqpipeError(f"{path}: not a {FORMAT} checkpoint (missing {', '.join(missing)})")
    return state


def load_latest(
    run_dir: str | os.PathLike, warn=None, quarantine: bool = True
) -> tuple[Path, dict[str, Any]] | None:
    """The newest loadable checkpoint of a run, or None when it has none.

    Damaged ones are reported through ``warn`` and (with ``quarantine``; rank 0 only
    under DDP) renamed ``*.corrupt``.
    """
    warn = warn or (lambda message: print(f"seqpipe: warning: {message}", file=sys.stderr))
    candidates = list_checkpoints(run_dir)
    for path in reversed(candidates):
        try:
            return path, read_checkpoint(path)
        except SeqpipeError as exc:
            older = [p.name for p in candidates if p < path]
            then = f"falling back to {older[-1]}" if older else "no older checkpoint left"
            warn(f"{exc}; {then}")
            if quarantine:
                path.rename(path.with_suffix(".pt.corrupt"))
    if candidates:
        raise SeqpipeError(f"{checkpoint_dir(run_dir)}: every checkpoint is damaged; cannot resume")
    return None


# -- RNG states as tensors / plain containers (loadable with weights_only=True) -----------


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["gauss"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
