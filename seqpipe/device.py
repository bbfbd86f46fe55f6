"""Choosing where tensors live: CUDA, then Apple MPS, then CPU, unless told otherwise."""

from __future__ import annotations

import torch

from seqpipe.errors import SeqpipeError


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
        raise SeqpipeError(f"--device {requested}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SeqpipeError(f"--device {requested}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SeqpipeError(f"--device {requested}: MPS is not available on this machine")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
