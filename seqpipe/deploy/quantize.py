"""int8 inference on the CPU: dynamic quantization of a model's recurrent and linear layers.

:func:`int8_model` stores the weights of every ``nn.GRU``, ``nn.LSTM`` and ``nn.Linear`` as
int8 and quantizes their inputs on the fly, batch by batch (torch's dynamic quantization,
fbgemm/qnnpack kernels); convolutions, normalisation and plain RNNs stay float32. For
en-small (3 x BiGRU 384) it cuts the network's CPU time by ~40 % at the same WER on the
real dev speakers (docs/transcribe.md). Quantized kernels exist for the CPU only.

``compute_type`` (the ``--compute-type`` of ``seqpipe transcribe`` and ``evaluate``):
``float32``; ``int8``; ``auto``, int8 for speech models on the CPU and float32 elsewhere.

:func:`pack_int8` / :func:`unpack_int8`: a bundle's weight matrices stored in int8 with a
scale per row (``make_bundle.py --int8-weights``), a quarter of the bytes in the wheel;
loading turns them back into float32.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from seqpipe.errors import ParameterError, SeqpipeError

COMPUTE_TYPES = ("auto", "float32", "int8")


def int8_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its GRU, LSTM and linear layers in int8 (CPU only)."""
    with warnings.catch_warnings():
        # torch.ao's notices that eager quantization moves to torchao in a later release
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)
        quantized = torch.ao.quantization.quantize_dynamic(
            model, {nn.GRU, nn.LSTM, nn.Linear}, dtype=torch.qint8
        )
    return quantized.eval()


def for_compute_type(pipeline, compute_type: str = "auto") -> nn.Module:
    """The pipeline's model to run for ``compute_type`` (itself, or an int8 copy)."""
    if compute_type not in COMPUTE_TYPES:
        raise ParameterError("compute_type", f"not one of {', '.join(COMPUTE_TYPES)}", compute_type)
    on_cpu = pipeline.device.type == "cpu"
    if compute_type == "int8" and not on_cpu:
        raise ParameterError(
            "compute_type", f"int8 runs on the CPU only, not {pipeline.device}", compute_type
        )
    speech = pipeline.config.get("task", {}).get("name") == "speech"
    if compute_type == "int8" or (compute_type == "auto" and on_cpu and speech):
        try:
            return int8_model(pipeline.model)
        except (AttributeError, RuntimeError, NotImplementedError) as exc:  # a torch without it
            if compute_type == "int8":
                raise SeqpipeError(f"int8 inference is not available here: {exc}") from None
    return pipeline.model


SCALE_SUFFIX = ".int8_scale"  # a weight stored in int8 has its per-row scales beside it
PACKED_MIN_SIZE = 4096  # smaller tensors (biases, norms) stay float32: they save nothing


def pack_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights for a bundle, each float matrix of at least ``PACKED_MIN_SIZE`` values in
    int8 with one float32 scale per output row (symmetric: w ~ q * scale): a quarter of
    the bytes, and what ``int8_model`` computes with anyway."""
    packed = {}
    for name, w in tensors.items():
        if not (w.is_floating_point() and w.dim() >= 2 and w.numel() >= PACKED_MIN_SIZE):
            packed[name] = w
            continue
        rows = w.float().reshape(w.shape[0], -1)
        scale = rows.abs().amax(1) / 127  # [rows]
        q = torch.round(rows / scale.clamp_min(1e-30)[:, None]).clamp(-127, 127)
        packed[name] = q.to(torch.int8).reshape(w.shape).contiguous()
        packed[name + SCALE_SUFFIX] = scale.contiguous()
    return packed


def unpack_int8(tensors: dict[str, torch.Tensor], path) -> dict[str, torch.Tensor]:
    """:func:`pack_int8` undone (float32 weights); a scale that does not fit its weight
    is one error naming the file."""
    state = {k: v for k, v in tensors.items() if not k.endswith(SCALE_SUFFIX)}
    for key in tensors.keys() - state.keys():
        name, scale = key[: -len(SCALE_SUFFIX)], tensors[key]
        q = state.get(name)
        if q is None or q.dtype != torch.int8 or scale.dim() != 1 or len(scale) != len(q):
            raise SeqpipeError(f"{path}: {key} does not fit an int8 weight {name}")
        state[name] = q.float() * scale.float().view(-1, *[1] * (q.dim() - 1))
    return state
