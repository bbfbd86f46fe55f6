"""ONNX export of a pipeline's model, checked against PyTorch before it is trusted.

Graphs by model kind (``graph_kind``):

* ``ctc``: speech models (``ctc_rnn``, ``ctc_ensemble``, frame models under the speech
  task): ``feats[B,T,F] float32, lengths[B] int64 -> log_probs[B,T',V], out_lengths[B]``;
  with ``features=True`` the audio front end is in the graph too:
  ``waves[B,N], lengths[B] -> log_probs, out_lengths, frames[B]`` (``frames``: feature
  frames per row, which word timing needs). Log-mel/MFCC run as a DFT convolution
  (an exact, real-valued STFT: ``torch.stft``'s complex output does not export).
* ``frames``: other many-to-many models: ``feats, lengths -> outputs[B,T,O], out_lengths``.
* ``classifier``: ``feats, lengths -> logits[B,C]``.
* ``lm_step``: the melody LM's ``step()`` as one stateful step:
  ``token[B] int64, h[L,B,H] (, c[L,B,H]) (, lookback_tokens[B,K], lookback_runs[B,K],
  bar_position[B] int64) (, pos[] int64, values, keys) -> logits[B,V], h (, c) (, values,
  keys)``; the caller keeps the state and feeds it back. With ``lookback_bars`` the caller
  also keeps the bar memory (:class:`seqpipe.features.melody_form.BarLookback`, whose
  tables are in the metadata) and feeds its facts after ``token``: what the torch model's
  ``step`` computes before :meth:`~seqpipe.models.rnn_lm.RecurrentLM.step_after`, the
  part in the graph.

Batch and time axes are dynamic. Torch's dynamo exporter freezes the time axis of
BiGRU/RNN graphs and cannot trace packed sequences (pytorch#191855, #171978), so this uses
the TorchScript exporter with the recurrent stacks unpacked (each sequence reversed within
its own length for the backward direction, so padding never reaches a real frame:
``RecurrentStack._reversed_padded``), and every export is run by onnxruntime against
PyTorch at two batch sizes and two lengths, unequal lengths within a batch, before it is
kept (:func:`check_export`). Facts a runtime needs (labels, blank, sample rate, the
feature, model and decoder config) are in the model's metadata props: key ``seqpipe``
(JSON, all of it) plus flat ``labels``, ``sample_rate``, ``features``, ``decoder``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from seqpipe.errors import SeqpipeError

ONNX_FORMAT = "seqpipe-onnx/1"
OPSET = 17
TOLERANCE = 1e-4  # max abs difference onnxruntime vs PyTorch on log-probs / logits


def graph_kind(pipeline) -> str:
    """Which graph the pipeline's model exports as (module doc); SeqpipeError if none."""
    from seqpipe.models.acoustic import LAS
    from seqpipe.models.classifier import RecurrentClassifier
    from seqpipe.models.rnn_lm import RecurrentLM
    from seqpipe.models.seq2seq import Seq2Seq

    model = pipeline.model
    if isinstance(model, RecurrentLM):
        return "lm_step"
    if isinstance(model, RecurrentClassifier):
        return "classifier"
    name = pipeline.config.get("model", {}).get("name", type(model).__name__)
    if isinstance(model, LAS | Seq2Seq):
        raise SeqpipeError(
            f"{name}: attention (encoder-decoder) models do not export yet; "
            "ctc_rnn, ctc_ensemble, the frame models, classifier and rnn_lm do"
        )
    return "ctc" if pipeline.labels is not None else "frames"


class CTCGraph(nn.Module):
    """A CTC model as ``(feats, lengths) -> (log_probs, out_lengths)``."""

    def __init__(self, model: nn.Module, log_softmax: bool = True):
        super().__init__()
        self.model, self.log_softmax = model, log_softmax

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        out, out_lengths = self.model(feats, lengths)
        if self.log_softmax:
            out = torch.log_softmax(out.float(), -1)
        return out, out_lengths.to(torch.int64)


class WaveCTCGraph(nn.Module):
    """Front end + CTC model: ``(waves, lengths) -> (log_probs, out_lengths, frames)``."""

    def __init__(self, features: nn.Module, model: nn.Module):
        super().__init__()
        self.features, self.ctc = features, CTCGraph(model)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor):
        feats, frames = self.features(waves, lengths)
        log_probs, out_lengths = self.ctc(feats, frames)
        return log_probs, out_lengths, frames.to(torch.int64)


class ClassifierGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(feats, lengths)


class LMStepGraph(nn.Module):
    """``RecurrentLM.step`` with its state as flat tensors (names: :func:`lm_state_names`);
    with lookback inputs, ``step_after`` reading the bar memory's facts from the inputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, token: torch.Tensor, *flat: torch.Tensor):
        state, bars = lm_state(self.model, list(flat))
        logits, new = self.model.step_after(token.clamp(min=0), state, bars)
        out = [logits, *lm_flat_state(self.model, new)]
        return tuple(out)


class BarFacts(NamedTuple):
    """The lookback facts a step reads, as graph inputs (``BarMemory``'s attributes)."""

    candidates: torch.Tensor  # [B, K] lookback_tokens
    runs: torch.Tensor  # [B, K] lookback_runs
    position: torch.Tensor  # [B] bar_position


LOOKBACK_INPUTS = ("lookback_tokens", "lookback_runs", "bar_position")
CALLER_KEPT = ("pos", *LOOKBACK_INPUTS)  # inputs the caller computes, not graph outputs


def lm_state_names(model) -> list[str]:
    """The step graph's inputs after ``token``."""
    names = ["h"] + (["c"] if model.cell == "lstm" else [])
    names += list(LOOKBACK_INPUTS) if model.lookback is not None else []
    return names + (["pos", "values", "keys"] if model.window else [])


def lm_state(model, flat: list) -> tuple[dict[str, Any], BarFacts | None]:
    """The LM's state dict and lookback facts from the flat list (``pos`` stays a tensor
    inside a graph)."""
    values = dict(zip(lm_state_names(model), flat, strict=True))
    state = {"rnn": (values["h"], values["c"]) if "c" in values else values["h"]}
    state["pos"] = values.get("pos", 0)
    if model.window:
        state["values"], state["keys"] = values["values"], values["keys"]
    bars = None
    if model.lookback is not None:
        bars = BarFacts(*(values[n] for n in LOOKBACK_INPUTS))
    return state, bars


def lookback_tables(model) -> dict[str, Any]:
    """What a runtime needs to keep the bar memory itself (``BarLookback``'s arguments) and
    what each lookback input means; in the ``seqpipe`` metadata as ``lookback``."""
    lb = model.lookback
    return {
        "distances": lb.distances.tolist(),
        "token_ticks": lb.advance.tolist(),
        "bar_ticks": lb.bar_ticks.tolist(),
        "body_tokens": lb.body.tolist(),
        "inputs": {
            "lookback_tokens": "[B,K] int64: after `token`, the token written at this place "
            "`distances` bars back that the next token would match (-1: none)",
            "lookback_runs": "[B,K] int64: body tokens in a row that matched their candidate",
            "bar_position": "[B] int64: ticks into the bar after `token`",
        },
        "memory": "seqpipe.features.melody_form.BarLookback(token_ticks, bar_ticks, "
        "body_tokens, distances): start(B), then write(memory, token) per step",
    }


def lm_flat_state(model, state: dict[str, Any]) -> list:
    """The tensors a step graph returns (everything but ``pos``, which the caller counts)."""
    rnn = state["rnn"]
    flat = list(rnn) if isinstance(rnn, tuple) else [rnn]
    return flat + ([state["values"], state["keys"]] if model.window else [])


# -- the front end as real-valued ops -------------------------------------------------


def _dft_frames(features, waves: torch.Tensor) -> torch.Tensor:
    """``LogMel.frames`` without complex numbers: a windowed DFT as a strided convolution
    (what ``torch.stft(center=True, pad_mode='reflect')`` computes), then the mel filterbank."""
    spec = features.melspec.spectrogram
    n_fft, hop, window = spec.n_fft, spec.hop_length, spec.window
    window = window.detach().cpu().double().numpy()
    left = (n_fft - len(window)) // 2
    window = np.pad(window, (left, n_fft - len(window) - left))
    n_freq = n_fft // 2 + 1
    angle = 2 * np.pi * np.arange(n_freq)[:, None] * np.arange(n_fft)[None, :] / n_fft
    basis = np.concatenate([np.cos(angle), -np.sin(angle)]) * window  # numpy: a constant
    basis = torch.from_numpy(basis.astype(np.float32)[:, None, :]).to(waves.device)
    x = nn.functional.pad(waves[:, None, :], (n_fft // 2, n_fft // 2), mode="reflect")
    x = x.reshape(waves.shape[0], 1, -1)  # the exporter loses the rank of a reflect pad
    y = nn.functional.conv1d(x, basis, stride=hop)
    power = y[:, :n_freq] ** 2 + y[:, n_freq:] ** 2  # [B, n_freq, T]
    mel = torch.matmul(power.transpose(1, 2), features.melspec.mel_scale.fb)  # [B, T, n_mels]
    return (mel + 1e-6).log()


def _deltas(specgram: torch.Tensor, win_length: int = 5, mode: str = "replicate") -> torch.Tensor:
    """``torchaudio.functional.compute_deltas`` [..., F, T] as shifted differences (its
    kernel is built with ``arange`` inside the call, which the exporter cannot size)."""
    n = (win_length - 1) // 2
    T = specgram.shape[-1]
    edges = [specgram[..., :1]] * n + [specgram] + [specgram[..., -1:]] * n
    x = torch.cat(edges, dim=-1)
    total = sum(
        k * (x[..., n + k : n + k + T] - x[..., n - k : n - k + T]) for k in range(1, n + 1)
    )
    return total / (2 * sum(k * k for k in range(1, n + 1)))


@contextlib.contextmanager
def exportable_features(features):
    """Inside the block ``features.frames`` is the DFT version (an instance attribute) and
    torchaudio's ``compute_deltas`` the shifted-difference one (MFCC deltas)."""
    import torchaudio

    from seqpipe.features.logmel import LogMel

    if not isinstance(features, LogMel) or features.pad:
        name = type(features).__name__
        raise SeqpipeError(
            f"{name}: this front end does not export into the graph (log-mel and MFCC "
            "without pad_ms do); export without --features and compute features in torch"
        )
    features.frames = lambda waves: _dft_frames(features, waves)
    deltas, torchaudio.functional.compute_deltas = torchaudio.functional.compute_deltas, _deltas
    try:
        yield features
    finally:
        del features.frames
        torchaudio.functional.compute_deltas = deltas


# -- export -----------------------------------------------------------------------------


@dataclass
class Export:
    """What :func:`export_onnx` wrote and how closely onnxruntime matched PyTorch."""

    path: Path
    kind: str
    features: bool
    max_abs_diff: float
    checks: list[str] = field(default_factory=list)  # "batch 3, length 57: 2.1e-06" ...


def _speech_example(pipeline, batch: int, length: int, waves: bool, seed: int):
    """A padded batch with unequal lengths (the longest first), zeros past each length."""
    g = torch.Generator().manual_seed(seed)
    if waves:
        n = int(length * pipeline.features.hop_length)
        lengths = torch.tensor([n - (n * i) // (2 * batch) for i in range(batch)])
        x = 0.1 * torch.randn(batch, n, generator=g)
    else:
        size = pipeline.features.output_size
        lengths = torch.tensor([length - (length * i) // (2 * batch) for i in range(batch)])
        x = torch.randn(batch, length, size, generator=g)
    steps = torch.arange(x.shape[1])[None, :]
    mask = (steps < lengths[:, None]).to(x.dtype)
    x = x * (mask if waves else mask[..., None])
    return x, lengths


def _lm_example(model, batch: int, seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    V = model.embed.num_embeddings
    token = torch.randint(0, V, (batch,), generator=g)
    state = model.initial_state(batch)
    flat = [torch.randn(t.shape, generator=g) * 0.5 for t in lm_flat_state(model, state)]
    rnn = flat[: len(flat) - (2 if model.window else 0)]
    extra = []
    if model.lookback is not None:  # candidates (some none), runs past MAX_RUN, any bar place
        K = len(model.lookback.distances)
        extra += [
            torch.randint(-1, V, (batch, K), generator=g),
            torch.randint(0, 24, (batch, K), generator=g),
            torch.randint(0, 200, (batch,), generator=g),
        ]
    if model.window:  # the ring buffer partly filled: pos inside the window
        extra.append(torch.tensor(model.window // 2 + seed % 2, dtype=torch.int64))
        extra += flat[len(rnn) :]
    return token, rnn + extra


def _graph_and_names(pipeline, kind: str, features: bool):
    model = pipeline.model
    if kind == "lm_step":
        names = lm_state_names(model)
        outs = ["logits"] + [f"{n}_out" for n in names if n not in CALLER_KEPT]
        axes = {"token": {0: "batch"}, "logits": {0: "batch"}}
        for n in names:
            if n in ("h", "c"):
                axes[n] = axes[f"{n}_out"] = {1: "batch"}
            elif n in LOOKBACK_INPUTS:
                axes[n] = {0: "batch"}
            elif n != "pos":
                axes[n] = axes[f"{n}_out"] = {0: "batch"}
        return LMStepGraph(model), ["token", *names], outs, axes
    if kind == "classifier":
        axes = {"feats": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}}
        return ClassifierGraph(model), ["feats", "lengths"], ["logits"], axes
    out = "log_probs" if kind == "ctc" else "outputs"
    axes = {out: {0: "batch", 1: "out_time"}, "out_lengths": {0: "batch"}}
    axes["lengths"] = {0: "batch"}
    if features:
        axes.update(waves={0: "batch", 1: "samples"}, frames={0: "batch"})
        graph = WaveCTCGraph(pipeline.features, model)
        return graph, ["waves", "lengths"], [out, "out_lengths", "frames"], axes
    axes["feats"] = {0: "batch", 1: "time"}
    return CTCGraph(model, kind == "ctc"), ["feats", "lengths"], [out, "out_lengths"], axes


def _example(pipeline, kind: str, features: bool, batch: int, length: int, seed: int):
    if kind == "lm_step":
        token, flat = _lm_example(pipeline.model, batch, seed)
        return (token, *flat)
    return _speech_example(pipeline, batch, length, features, seed)


def metadata(pipeline, kind: str, features: bool, names: tuple[list, list]) -> dict[str, str]:
    """The metadata props: ``seqpipe`` (everything, JSON) and a few flat keys."""
    config = pipeline.config
    facts: dict[str, Any] = {
        "format": ONNX_FORMAT,
        "kind": kind,
        "features_in_graph": features,
        "inputs": names[0],
        "outputs": names[1],
        "config": config,
        "labels": pipeline.labels,
        "blank": pipeline.blank if pipeline.labels is not None else None,
        "sample_rate": pipeline.sample_rate,
        "frame_seconds": pipeline.frame_seconds,
        "lead_seconds": pipeline.lead_seconds,
        "info": pipeline.bundle_metadata.get("info", {}),
    }
    if kind == "lm_step":
        rnn = pipeline.model.stack.rnn
        facts.update(
            cell=pipeline.model.cell,
            num_layers=rnn.num_layers,
            hidden_size=rnn.hidden_size,
            vocab_size=pipeline.model.embed.num_embeddings,
            window=pipeline.model.window,
        )
        if pipeline.model.lookback is not None:
            facts["lookback"] = lookback_tables(pipeline.model)
    props = {"seqpipe": json.dumps(facts, default=str)}
    for key, value in (
        ("labels", pipeline.labels),
        ("sample_rate", pipeline.sample_rate),
        ("features", config.get("features")),
        ("decoder", config.get("decoder")),
    ):
        if value is not None:
            props[key] = json.dumps(value)
    return props


def _modules(check: bool):
    """The ``onnx`` module, once the onnx extra's modules an export needs are there
    (onnxruntime runs the ``check``)."""
    from seqpipe.deploy.runtime import need

    onnx = need("onnx", "seqpipe export")
    if check:
        need("onnxruntime", "seqpipe export's check")
    return onnx


def export_onnx(
    pipeline, path: str | Path, *, features: bool = False, check: bool = True
) -> Export:
    """Write ``pipeline``'s model (and with ``features`` its audio front end) to ``path``.

    With ``check`` (default) onnxruntime runs the file against PyTorch at two batch
    sizes and two lengths and the file is kept only if they agree within ``TOLERANCE``.
    """
    from seqpipe.atomic import atomic_path

    onnx = _modules(check)
    kind = graph_kind(pipeline)
    if features and kind != "ctc":
        raise SeqpipeError(f"--features: only speech (CTC) models take audio, not a {kind} model")
    was_training = pipeline.training
    pipeline.eval()
    path = Path(path)
    with contextlib.ExitStack() as stack:
        stack.callback(pipeline.train, was_training)
        graph, inputs, outputs, axes = _graph_and_names(pipeline, kind, features)
        graph.eval()  # the exporter restores the wrapper's mode, and with it the model's
        example = _example(pipeline, kind, features, batch=2, length=48, seed=0)
        target = stack.enter_context(atomic_path(path))
        frontend = exportable_features(pipeline.features) if features else contextlib.nullcontext()
        with frontend, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                graph, tuple(example), str(target), dynamo=False, opset_version=OPSET,
                input_names=inputs, output_names=outputs, dynamic_axes=axes,
            )  # fmt: skip
        proto = onnx.load(str(target))
        for key, value in metadata(pipeline, kind, features, (inputs, outputs)).items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(target))
        result = Export(path, kind, features, 0.0)
        if check:  # against the torch pipeline as it is (torchaudio's STFT for features)
            check_export(pipeline, graph, str(target), kind, features, result)
    return result


def export_bundle(model: str, output: str, *, features: bool = False, check: bool = True) -> Export:
    """Load bundle ``model`` (a name or path) on the CPU and :func:`export_onnx` it."""
    from seqpipe.atomic import check_writable
    from seqpipe.pipeline import Pipeline

    check_writable(Path(output).parent)
    _modules(check)  # refused before the model loads
    return export_onnx(Pipeline.load(model, "cpu"), output, features=features, check=check)


def check_export(pipeline, graph, onnx_path: str, kind: str, features: bool, result) -> None:
    """onnxruntime vs PyTorch at batch sizes 1 and 3, lengths 31 and 113 (frames; LM: two
    states); fills ``result`` and raises SeqpipeError above ``TOLERANCE``."""
    from seqpipe.deploy.runtime import session

    sess = session(onnx_path)
    names = [i.name for i in sess.get_inputs()]
    for batch in (1, 3):
        for length in (31, 113):
            example = _example(pipeline, kind, features, batch, length, seed=batch + length)
            with torch.no_grad():
                want = graph(*example)
            want = want if isinstance(want, tuple) else (want,)
            got = sess.run(None, {n: t.numpy() for n, t in zip(names, example, strict=True)})
            diff = max(
                float((torch.from_numpy(g).to(w.dtype) - w).abs().max()) if w.numel() else 0.0
                for g, w in zip(got, want, strict=True)
            )
            shapes_match = all(
                tuple(g.shape) == tuple(w.shape) for g, w in zip(got, want, strict=True)
            )
            what = "random state" if kind == "lm_step" else "length"
            result.checks.append(f"batch {batch}, {what} {length}: max abs diff {diff:.2e}")
            result.max_abs_diff = max(result.max_abs_diff, diff)
            if not shapes_match or not diff <= TOLERANCE:
                raise SeqpipeError(
                    f"{result.path}: onnxruntime disagrees with PyTorch at batch {batch}, "
                    f"{what} {length} (max abs diff {diff:.3g}, shapes "
                    f"{[g.shape for g in got]} vs {[tuple(w.shape) for w in want]}); not written"
                )
