"""onnxruntime models behind the torch models' contracts, so the services run either backend.

* :class:`OnnxCTC`: ``model(feats, lengths) -> (log_probs, out_lengths)`` like a CTC model,
  so every CTC decoder (greedy, flashlight beam) decodes its output unchanged.
* :class:`OnnxLM`: ``initial_state`` / ``step`` / ``reorder_state`` like ``rnn_lm``, so the
  samplers and the beam search of :mod:`seqpipe.decoders.sampling` drive it unchanged.
  A model with lookback inputs keeps its bar memory in Python, the same
  :class:`~seqpipe.features.melody_form.BarLookback` the torch model uses (O(1) per
  token), built from the tables in the file's metadata, and feeds the graph its facts.

:func:`onnx_model` gives the one a pipeline needs: its model exported to a temporary file
(checked against PyTorch by :func:`seqpipe.deploy.export.export_onnx`), or an ONNX file
made earlier by ``seqpipe export`` for this bundle.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqpipe.errors import SeqpipeError


def need(module: str, what: str):
    """``module`` of the ``onnx`` extra, imported; if it is missing, a one-line error
    saying that ``what`` needs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SeqpipeError(f"{what} needs {module}: pip install 'seqpipe[onnx]'") from None


def session(path: str, threads: int | None = None):
    """An onnxruntime CPU session; ``threads`` (default: torch's) intra-op threads."""
    ort = need("onnxruntime", "the onnx backend")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``seqpipe`` metadata prop of an exported file (SeqpipeError if it has none)."""
    onnx = need("onnx", "reading an ONNX model")

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise SeqpipeError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if "seqpipe" not in props:
        raise SeqpipeError(f"{path}: not exported by seqpipe (no 'seqpipe' metadata)")
    return json.loads(props["seqpipe"])


class _OnnxModel:
    """The bits of ``nn.Module`` the services touch: eval/train, ``parameters()`` (device)."""

    training = False

    def __init__(self, path: str, threads: int | None = None):
        self.path = str(path)
        self.meta = read_metadata(path)
        self.session = session(self.path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def parameters(self):
        yield torch.zeros(())  # the device is the CPU


class OnnxCTC(_OnnxModel):
    """An exported ``ctc`` graph (features in torch) as a CTC model."""

    def __init__(self, path: str, threads: int | None = None):
        super().__init__(path, threads)
        if self.meta.get("kind") != "ctc" or self.meta.get("features_in_graph"):
            raise SeqpipeError(f"{path}: not a CTC model graph over features")

    def __call__(self, feats: torch.Tensor, lengths: torch.Tensor):
        feed = {
            "feats": feats.detach().to("cpu", torch.float32).contiguous().numpy(),
            "lengths": lengths.detach().to("cpu", torch.int64).numpy(),
        }
        log_probs, out_lengths = self.session.run(None, feed)
        return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)


class OnnxLM(_OnnxModel):
    """An exported ``lm_step`` graph as an autoregressive model (state: a dict of arrays)."""

    def __init__(self, path: str, threads: int | None = None):
        super().__init__(path, threads)
        if self.meta.get("kind") != "lm_step":
            raise SeqpipeError(f"{path}: not a language-model step graph")
        self.state_names = self.input_names[1:]
        self.returned = [o.name.removesuffix("_out") for o in self.session.get_outputs()[1:]]
        self.window = int(self.meta["window"])
        self.lookback = None
        if "lookback" in self.meta:
            from seqpipe.features.melody_form import BarLookback

            tables = self.meta["lookback"]
            self.lookback = BarLookback(
                torch.tensor(tables["token_ticks"]),
                torch.tensor(tables["bar_ticks"]),
                torch.tensor(tables["body_tokens"]),
                tuple(tables["distances"]),
            )

    def initial_state(self, batch_size: int, device=None) -> dict[str, Any]:
        m = self.meta
        shape = (m["num_layers"], batch_size, m["hidden_size"])
        state: dict[str, Any] = {"pos": 0}
        for name in self.state_names:
            if name in ("h", "c"):
                state[name] = np.zeros(shape, np.float32)
        if self.lookback is not None:
            state["bars"] = self.lookback.start(batch_size, "cpu")
        if self.window:
            out = {o.name: o.shape for o in self.session.get_outputs()}
            state["values"] = np.zeros((batch_size, self.window, out["values_out"][2]), np.float32)
            state["keys"] = np.zeros((batch_size, self.window, out["keys_out"][2]), np.float32)
        return state

    def step(self, token: torch.Tensor, state: dict[str, Any]):
        tokens = np.maximum(token.detach().cpu().numpy().astype(np.int64, copy=False), 0)
        feed = {"token": tokens}
        new: dict[str, Any] = {"pos": state["pos"] + 1}
        if self.lookback is not None:  # the bar memory after token, as rnn_lm.step keeps it
            bars = new["bars"] = self.lookback.write(state["bars"], torch.from_numpy(tokens))
            feed.update(_lookback_feed(bars))
        for name in self.state_names:
            if name == "pos":
                feed[name] = np.asarray(state["pos"], np.int64)
            elif name not in feed:
                feed[name] = state[name]
        logits, *rest = self.session.run(None, feed)
        new.update(zip(self.returned, rest, strict=True))
        return torch.from_numpy(logits), new

    def reorder_state(self, state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        index = index.detach().cpu().numpy()
        new = dict(state)
        for name in ("h", "c"):
            if name in state:
                new[name] = state[name][:, index]
        for name in ("values", "keys"):
            if name in state:
                new[name] = state[name][index]
        if "bars" in state:
            new["bars"] = state["bars"].select(torch.from_numpy(index))
        return new


def _lookback_feed(bars) -> dict[str, np.ndarray]:
    """The step graph's lookback inputs from a bar memory (one row's from its Python lists:
    building tensors would cost more than the memory's own update)."""
    from seqpipe.features.melody_form import RowMemory

    if isinstance(bars, RowMemory):
        return {
            "lookback_tokens": np.array([bars.cands], np.int64),
            "lookback_runs": np.array([bars.run_list], np.int64),
            "bar_position": np.array([bars.time % bars.bar], np.int64),
        }
    return {
        "lookback_tokens": bars.candidates.numpy(),
        "lookback_runs": bars.runs.numpy(),
        "bar_position": bars.position.numpy(),
    }


def onnx_model(pipeline, path: str | None = None, threads: int | None = None):
    """The pipeline's model on onnxruntime: ``path`` (an export of this bundle's model), or
    the model exported now to a temporary file and checked against PyTorch."""
    from seqpipe.deploy.export import export_onnx, graph_kind

    kind = graph_kind(pipeline)
    runner = {"ctc": OnnxCTC, "lm_step": OnnxLM}.get(kind)
    if runner is None:
        raise SeqpipeError(f"the onnx backend runs speech (CTC) and melody models, not {kind}")
    for module in ("onnx", "onnxruntime"):
        need(module, "the onnx backend")
    if path is not None:
        return runner(path, threads)
    with tempfile.TemporaryDirectory(prefix="seqpipe-onnx-") as tmp:
        target = Path(tmp) / "model.onnx"
        export_onnx(pipeline, target)
        return runner(str(target), threads)  # the session holds the graph in memory
