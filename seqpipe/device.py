"""Choosing where tensors live: CUDA, then Apple MPS, then CPU, unless told otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from seqpipe.errors import ParameterError


def pick_device(requested: str | None = None) -> torch.device:
    """Return the requested device, or the best available one when ``requested`` is None/'auto'."""
    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ParameterError("device", str(exc), requested) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "CUDA is not available on this machine", requested)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ParameterError("device", "MPS is not available on this machine", requested)
    return device


@contextlib.contextmanager
def threads(count: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``count`` inside the block (None: left as they are) and
    restored after it, so a caller running seqpipe in-process keeps its own setting."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
