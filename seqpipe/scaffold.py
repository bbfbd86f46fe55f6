"""``seqpipe plugin new``: a ready plugin package that installs and passes its own tests.

:func:`new_plugin` writes ``pyproject.toml`` (with the ``seqpipe`` entry point), the hook
module, one typed component of the chosen kind (``cell``, ``model``, ``features`` or
``decoder``), a README and tests that check the component against its contract with
:mod:`seqpipe.testing`. The templates below are the whole generator.
"""

from __future__ import annotations

import re
from pathlib import Path

from seqpipe.errors import ParameterError, SeqpipeError

KINDS = ("cell", "model", "features", "decoder")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "seqpipe-__NAME__"
version = "0.1.0"
description = "__HELP__ for seqpipe"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["seqpipe", "torch"]

# seqpipe loads every entry point in the `seqpipe` group and calls the hooks it finds
[project.entry-points.seqpipe]
__NAME__ = "__MODULE__"

[tool.setuptools]
packages = ["__MODULE__"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

HOOKS = '''\
"""seqpipe-__NAME__: __HELP__, loaded by seqpipe as a plugin.

Registered with an import string, so ``seqpipe plugins`` stays fast: torch and the
component load only when a recipe uses it.
"""

import seqpipe


@seqpipe.hookimpl
def __HOOK__(register):
    register(
        "__NAME__",
        "__MODULE__.component:__CLASS__",
        help="__HELP__",__SHAPE__
    )
'''

COMPONENTS = {
    "cell": '''\
"""A recurrent core (seqpipe/models/core.py): usable as ``cell: __NAME__`` in seqpipe's
``classifier``, ``rnn_lm``, ``seq2seq`` and ``ctc_rnn``.

forward(x[B,T,F], lengths) -> (y[B,T,H], lengths); initial_state / step for generation.
Replace the recurrence with yours; keep the contract and the tests pass.
"""

from typing import Literal

import torch
from seqpipe.types import PositiveInt, Probability
from torch import nn


class __CLASS__(nn.Module):
    def __init__(
        self,
        input_size: int,  # the composite model passes these four (they are its options)
        hidden_size: PositiveInt = 64,
        num_layers: PositiveInt = 1,
        dropout: Probability = 0.0,
        activation: Literal["tanh", "relu"] = "tanh",  # an option of the core's own
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.RNNCell(input_size if i == 0 else hidden_size, hidden_size, nonlinearity=activation)
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.hidden_size = hidden_size
        self.output_size = hidden_size  # H, what the composite's head reads
        self.bidirectional = False

    def initial_state(self, batch_size: int, device="cpu") -> torch.Tensor:
        weight = self.layers[0].weight_hh
        return weight.new_zeros(len(self.layers), batch_size, self.hidden_size, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame x [B,F] -> (y [B,H], state [layers,B,H])."""
        new = []
        for i, (layer, h) in enumerate(zip(self.layers, state, strict=True)):
            x = layer(self.dropout(x) if i else x, h)
            new.append(x)
        return x, torch.stack(new)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state, outs = self.initial_state(x.shape[0], x.device), []
        for t in range(x.shape[1]):  # causal: padding after a sequence never reaches it
            y, state = self.step(x[:, t], state)
            outs.append(y)
        return torch.stack(outs, 1), lengths
''',
    "model": '''\
"""A many-to-many model: forward(x[B,T,F], lengths) -> (y[B,T,O], lengths), e.g. per-frame
CTC logits for ``task: speech``. Causal (left padding only), so padding never leaks."""

import torch
import torch.nn.functional as F
from seqpipe.types import PositiveInt
from torch import nn


class __CLASS__(nn.Module):
    def __init__(
        self, input_size: int, output_size: int, channels: PositiveInt = 32, width: PositiveInt = 3
    ):
        super().__init__()
        self.width = width
        self.conv = nn.Conv1d(input_size, channels, width)
        self.head = nn.Linear(channels, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(F.pad(x.transpose(1, 2), (self.width - 1, 0))).relu()
        return self.head(h.transpose(1, 2)), lengths
''',
    "features": '''\
"""Audio features (seqpipe/features/base.py: AudioFeatures): waves[B,N], lengths[B] ->
(feats[B,T,F], frames[B]); a log power spectrum of frames ``n_fft`` samples long."""

import torch
from seqpipe.types import PositiveInt
from torch import nn


class __CLASS__(nn.Module):
    def __init__(
        self,
        sample_rate: PositiveInt = 16000,
        n_fft: PositiveInt = 256,
        hop_length: PositiveInt = 80,
    ):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.lead_seconds = 0.0  # frame 0 starts at the first sample
        self.output_size = n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if waves.shape[1] < self.n_fft:  # at least one whole frame
            waves = nn.functional.pad(waves, (0, self.n_fft - waves.shape[1]))
        frames = waves.unfold(1, self.n_fft, self.hop_length) * self.window
        feats = torch.fft.rfft(frames).abs().square().add(1e-10).log()
        n = (torch.as_tensor(lengths) - self.n_fft).div(self.hop_length, rounding_mode="floor") + 1
        return feats, n.clamp(1, feats.shape[1]).to(feats.device)
''',
    "decoder": '''\
"""A frame decoder (seqpipe/decoders/base.py: FrameDecoder) for CTC models: the best token
of each frame, repeats merged and blanks dropped, only where its probability reaches
``min_probability`` (less confident frames count as blank)."""

from collections.abc import Sequence

import torch
from seqpipe.decoders.ctc_greedy import ctc_posteriors
from seqpipe.decoders.hypothesis import DecodeOutput, Hypothesis, TokenText
from seqpipe.types import Probability


class __CLASS__:
    def __init__(self, vocab: Sequence[str], blank: int = 0, min_probability: Probability = 0.0):
        self.text = TokenText(vocab, blank)  # vocab and blank come from the task
        self.blank, self.min_log = blank, float(torch.tensor(min_probability).log())

    def decode_batch(self, model, feats: torch.Tensor, lengths: torch.Tensor) -> DecodeOutput:
        log_probs, out_lengths, ratio = ctc_posteriors(model, feats, lengths)
        best, ids = log_probs.max(dim=-1)
        ids[best < self.min_log] = self.blank
        hyps = []
        for b, n in enumerate(out_lengths.tolist()):
            row, tokens, frames = ids[b, :n].tolist(), [], []
            for t, token in enumerate(row):
                if token != self.blank and (t == 0 or row[t - 1] != token):
                    tokens.append(token)
                    frames.append(t)
            score = float(best[b, :n].sum())
            hyps.append(Hypothesis(self.text.text(tokens), tokens, score, frames=frames))
        return DecodeOutput(hyps, log_probs, out_lengths, ratio)
''',
}

TESTS = {
    "cell": '''\
import pytest
import torch
from seqpipe import testing


def test_the_core_meets_the_contract():
    core = testing.build("cell", "__NAME__", input_size=5, hidden_size=8, num_layers=2)
    testing.check_padding_invariance(core, input_size=5)
    testing.check_step_matches_forward(core, input_size=5)


def test_options_are_typed_and_checked():
    testing.check_options("cell", "__NAME__", invalid={"activation": "sigmoid"})


@pytest.mark.parametrize("shape", ["many-to-one", "autoregressive"])
def test_the_core_runs_in_seqpipe_models_and_bundles(tmp_path, shape):
    """classifier (many-to-one) and rnn_lm (autoregressive, step() generation) on this core."""
    recipe = testing.tiny_recipe(cell="__NAME__", shape=shape)
    path = testing.check_bundle_round_trip(recipe, tmp_path)
    if shape == "autoregressive":
        from seqpipe.pipeline import Pipeline

        model = Pipeline.load(path).model
        logits, state = model.step(torch.tensor([1, 2]), model.initial_state(2))
        assert logits.shape[0] == 2
''',
    "model": """\
from seqpipe import testing


def test_the_model_meets_the_many_to_many_contract():
    model = testing.build("model", "__NAME__", input_size=5, output_size=7)
    testing.check_padding_invariance(model, input_size=5)


def test_options_are_typed_and_checked():
    testing.check_options("model", "__NAME__", invalid={"width": 0, "channels": "many"})


def test_the_model_trains_in_a_speech_pipeline_and_bundle(tmp_path):
    recipe = testing.tiny_recipe(model={"name": "__NAME__", "channels": 8}, shape="many-to-many")
    testing.check_bundle_round_trip(recipe, tmp_path)
""",
    "features": """\
import torch
from seqpipe import testing
from seqpipe.features.base import AudioFeatures


def test_the_features_meet_the_audio_contract():
    features = testing.build("features", "__NAME__", sample_rate=8000)
    assert isinstance(features, AudioFeatures)
    feats, frames = features(torch.randn(2, 4000), torch.tensor([4000, 1000]))
    assert feats.shape[0] == 2 and feats.shape[2] == features.output_size
    assert frames.tolist()[1] < frames.tolist()[0] <= feats.shape[1]


def test_options_are_typed_and_checked():
    testing.check_options("features", "__NAME__", invalid={"n_fft": 0})


def test_the_features_feed_a_pipeline_and_bundle(tmp_path):
    recipe = testing.tiny_recipe()
    recipe["features"] = {"name": "__NAME__", "sample_rate": 8000, "n_fft": 64, "hop_length": 32}
    testing.check_bundle_round_trip(recipe, tmp_path)
""",
    "decoder": """\
import torch
from seqpipe import testing
from seqpipe.decoders.base import FrameDecoder
from seqpipe.pipeline import Pipeline


def test_the_decoder_meets_the_frame_decoder_contract():
    recipe = testing.tiny_recipe(shape="many-to-many")
    recipe["decoder"] = {"name": "__NAME__", "min_probability": 0.1}
    pipeline = Pipeline.from_config(recipe).eval()
    assert isinstance(pipeline.decoder, FrameDecoder)
    feats, lengths = torch.randn(2, 30, pipeline.wiring["input_size"]), torch.tensor([30, 12])
    with torch.no_grad():
        out = pipeline.decoder.decode_batch(pipeline.model, feats, lengths)
    assert len(out.hypotheses) == 2 and all(isinstance(h.text, str) for h in out.hypotheses)


def test_options_are_typed_and_checked():
    testing.check_options("decoder", "__NAME__", invalid={"min_probability": 2})
""",
}

README = """\
# seqpipe-__NAME__

__HELP__, a [seqpipe](https://github.com/seqpipe/seqpipe) plugin (made by
`seqpipe plugin new __NAME__ --kind __KIND__`).

```sh
pip install -e .          # or: seqpipe install -e .
seqpipe plugins           # lists __KIND__ '__NAME__' from package seqpipe-__NAME__
pytest                    # the contract checks of seqpipe.testing
```

__USAGE__

The component is `__MODULE__/component.py`; the hooks are in `__MODULE__/__init__.py`.
Every constructor option needs a type hint (seqpipe validates recipes against them and
warns about untyped ones). The contracts: seqpipe's docs/plugins.md.
"""

USAGE = {
    "cell": "Use it as the recurrent core of seqpipe's models: `model: {name: classifier, cell: __NAME__}`,\n"
    "`{name: rnn_lm, cell: __NAME__}` (generation steps through its `step()`), or\n"
    "`seqpipe train configs/tiny.yaml --set model.cell=__NAME__`.",
    "model": "`model: {name: __NAME__, channels: 64}` in a speech recipe (`task: speech`).",
    "features": "`features: {name: __NAME__, sample_rate: 16000}` in a speech or classify recipe.",
    "decoder": "`decoder: {name: __NAME__, min_probability: 0.2}` under a CTC model.",
}

HOOK = {"cell": "register_cells", "model": "register_models", "features": "register_features",
        "decoder": "register_decoders"}  # fmt: skip
HELP = {"cell": "a recurrent core", "model": "a causal convolution model, many-to-many",
        "features": "log power spectrum features", "decoder": "a thresholded greedy CTC decoder"}  # fmt: skip


def new_plugin(name: str, kind: str = "cell", folder: str | Path = ".") -> Path:
    """Write the package ``folder/NAME`` and return its path; refuses an existing folder."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name):
        raise ParameterError("name", "use lower-case letters, digits and _", name)
    if kind not in KINDS:
        raise ParameterError("kind", f"expected one of {', '.join(KINDS)}", kind)
    root = Path(folder) / name
    if root.exists():
        raise SeqpipeError(f"{root}: already exists; choose another name or folder")
    module = f"seqpipe_{name}"
    words = {
        "__NAME__": name,
        "__MODULE__": module,
        "__CLASS__": "".join(part.title() for part in name.split("_")),
        "__HOOK__": HOOK[kind],
        "__HELP__": HELP[kind],
        "__KIND__": kind,
        "__SHAPE__": '\n        shape="many-to-many",' if kind == "model" else "",
    }
    words["__USAGE__"] = USAGE[kind].replace("__NAME__", name)
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{module}/__init__.py": HOOKS,
        f"{module}/component.py": COMPONENTS[kind],
        f"tests/test_{name}.py": TESTS[kind],
    }
    for relative, template in files.items():
        for key, value in words.items():
            template = template.replace(key, value)
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template)
    return root
