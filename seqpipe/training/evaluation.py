"""Scoring a pipeline on held-out data with the task's own metrics (used by train and evaluate)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from seqpipe.data.batching import BucketBatchSampler


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move every tensor in a (nested) batch; ``non_blocking`` pairs with pinned memory."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


def autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def loader_args(task, device: torch.device, num_workers: int | None) -> dict[str, Any]:
    if num_workers is None:
        num_workers = min(4, os.cpu_count() or 1) if device.type == "cuda" else 0
    return {
        "collate_fn": task.collate,
        "num_workers": num_workers,
        "pin_memory": device.type == "cuda",
        # its own generator: iter(DataLoader) draws a worker seed, and from the global RNG
        # that draw would shift dropout masks after a mid-epoch resume
        "generator": torch.Generator().manual_seed(0),
    }


def eval_batches(
    task, examples, batch_size: int, device: torch.device, num_workers: int | None = None
) -> Iterator[dict[str, Any]]:
    """Batches sorted by length (least padding, fixed order) on ``device``."""
    sampler = BucketBatchSampler(
        [task.length(x) for x in examples], batch_size, shuffle=False, pool=10**9
    )
    loader = DataLoader(examples, batch_sampler=sampler, **loader_args(task, device, num_workers))
    for batch in loader:
        yield to_device(batch, device, non_blocking=device.type == "cuda")


def evaluate(
    pipeline, examples, *, batch_size: int = 16, bf16: bool = False, num_workers: int | None = None
) -> dict[str, float]:
    """The task's metrics for ``pipeline`` on ``examples`` (eval mode, no gradients)."""
    device = pipeline.device
    was_training = pipeline.training
    pipeline.eval()
    try:
        with torch.no_grad(), autocast(device, bf16):
            batches = eval_batches(pipeline.task, examples, batch_size, device, num_workers)
            metrics = pipeline.task.evaluate(pipeline, batches)
    finally:
        pipeline.train(was_training)
    return {k: float(v) for k, v in dict(metrics).items()}


def json_line(result: dict[str, Any]) -> str:
    """``result`` as strict JSON on one line: a NaN or infinite metric becomes null."""
    import json
    import math

    def finite(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return json.dumps({k: finite(v) for k, v in result.items()}, allow_nan=False)


@dataclass
class Scored:
    """One data source scored by :func:`evaluate_files`: ``result`` (bundle, data, examples
    and the metrics) and the task's Markdown ``report``, or the ``error`` that stopped it."""

    data: str
    result: dict[str, Any] | None = None
    report: str | None = None
    error: str | None = None


def evaluate_files(
    bundle: str,
    data: Iterable[str],
    *,
    device: str | None = "auto",
    batch_size: int = 16,
    compute_type: str = "float32",
) -> tuple[Any, Iterator[Scored]]:
    """Load ``bundle`` and score it on each ``data`` source with its task's metrics; a source
    that cannot be read gives its error and the others are still scored. Returns the
    pipeline and the results, computed one at a time. ``compute_type``: as ``seqpipe
    transcribe`` runs the model (:mod:`seqpipe.deploy.quantize`)."""
    from seqpipe.deploy.quantize import for_compute_type
    from seqpipe.device import pick_device
    from seqpipe.errors import SeqpipeError
    from seqpipe.pipeline import Pipeline

    torch_device = pick_device(device)
    pipeline = Pipeline.load(bundle, device=torch_device)
    pipeline.model = for_compute_type(pipeline, compute_type)
    task = pipeline.task

    def scores() -> Iterator[Scored]:
        for path in data:
            try:
                examples = task.load_data(path, train=False)
            except SeqpipeError as exc:
                yield Scored(str(path), error=str(exc))
                continue
            bf16 = torch_device.type == "cuda"
            metrics = evaluate(pipeline, examples, batch_size=batch_size, bf16=bf16)
            result = {"bundle": str(bundle), "data": str(path), "examples": len(examples)}
            report = task.report(metrics) if hasattr(task, "report") else None  # duck-typed tasks
            yield Scored(str(path), {**result, **metrics}, report)

    return pipeline, scores()
