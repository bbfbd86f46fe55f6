"""seqpipe-minrnn, the example third-party plugin, found through its entry point.

The plugin is pip-installed (no index, no dependencies) into a temporary directory,
which goes on PYTHONPATH for subprocesses and on sys.path for this process. Nothing
imports it by name before seqpipe's plugin loader has, so the packaging (the
pyproject's entry point) is under test as much as the models.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from seqpipe import plugins, testing
from seqpipe.config import load_config
from seqpipe.pipeline import Pipeline, read_bundle_metadata

PLUGIN_SRC = Path(__file__).resolve().parents[1] / "plugins" / "seqpipe-minrnn"
CELLS = ("mingru", "minlstm")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A directory holding the installed plugin (code + .dist-info with its entry point)."""
    root = tmp_path_factory.mktemp("minrnn")
    src = root / "src"  # a copy, so the build leaves nothing in the repository
    shutil.copytree(
        PLUGIN_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    pip += ["--no-build-isolation", "--no-index", "--target", str(site), str(src)]
    result = subprocess.run(pip, capture_output=True, text=True)
    assert result.returncode == 0, f"installing the plugin failed:\n{result.stderr}"
    return site


def run_python(
    args: list[str], site: Path | None, allow: str | None
) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` with the plugin on the path (if ``site``) and SEQPIPE_PLUGINS=allow."""
    env = {k: v for k, v in os.environ.items() if k != "SEQPIPE_PLUGINS"}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    if allow is not None:
        env["SEQPIPE_PLUGINS"] = allow
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def registry(plugin_site):
    """seqpipe's registry in this process, loaded with the plugin installed."""
    saved_allow = os.environ.pop("SEQPIPE_PLUGINS", None)
    sys.path.insert(0, str(plugin_site))
    plugins.load.cache_clear()
    try:
        yield plugins.registry()
    finally:
        sys.path.remove(str(plugin_site))
        if saved_allow is not None:
            os.environ["SEQPIPE_PLUGINS"] = saved_allow
        plugins.load.cache_clear()


def core(name: str, **arguments):
    """A minRNN core built through the registry (the plugin's entry point), as users get it."""
    return testing.build("cell", name, **arguments)


def plugin_module(registry, name: str):
    """A plugin submodule, imported only after the entry point has put the plugin in place."""
    import importlib

    assert registry.find("cell", "mingru").package == "seqpipe-minrnn"
    return importlib.import_module(f"seqpipe_minrnn.{name}")


# -- discovery --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "allow, listed",
    [(None, True), ("", False), ("minrnn", True), ("seqpipe-minrnn", True), ("other", False)],
)
def test_plugins_json_lists_the_cells_unless_disallowed(plugin_site, allow, listed):
    result = run_python(["-m", "seqpipe", "plugins", "--json"], plugin_site, allow)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    ours = {c["name"]: c for c in out["components"] if c["package"] == "seqpipe-minrnn"}
    if not listed:
        assert ours == {}
        assert all(p["package"] != "seqpipe-minrnn" for p in out["plugins"])
        return
    assert sorted(ours) == sorted(CELLS)
    assert all(c["kind"] == "cell" and c["plugin"] == "minrnn" for c in ours.values())
    (info,) = [p for p in out["plugins"] if p["name"] == "minrnn"]
    assert info == {
        "name": "minrnn",
        "package": "seqpipe-minrnn",
        "version": "0.2.0",
        "builtin": False,
        "error": None,
    }


def test_importing_the_plugin_does_not_import_torch(plugin_site):
    code = (
        "import sys, seqpipe_minrnn; print(sorted(m for m in sys.modules if m.startswith('torch')))"
    )
    result = run_python(["-c", code], plugin_site, None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- the scan -----------------------------------------------------------------------------


def sequential(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """The recurrence as written: h_t = a_t h_{t-1} + b_t, one step at a time."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("gate_scale", [1.0, 12.0], ids=["blockwise", "fallback"])
def test_parallel_scan_equals_sequential_recurrence(registry, with_h0, gate_scale):
    scan = plugin_module(registry, "scan")
    gen = torch.Generator().manual_seed(0)
    B, T, H = 3, 70, 5  # T not a multiple of the block: the last block is padded
    # gate_scale 12 makes gates near 0 so block values span > SAFE_RANGE
    a = torch.sigmoid(gate_scale * torch.randn(B, T, H, generator=gen, dtype=torch.float64))
    b = torch.rand(B, T, H, generator=gen, dtype=torch.float64) + 0.01
    h0 = torch.rand(B, H, generator=gen, dtype=torch.float64) + 0.1 if with_h0 else None
    expected = sequential(a, b, h0)
    got = scan.parallel_scan_log(a.log(), b.log(), None if h0 is None else h0.log())
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_float32_scan_stays_accurate_when_gates_close(registry):
    """Gates near 0 make a block's values span more than float32's exp can hold."""
    scan = plugin_module(registry, "scan")
    gen = torch.Generator().manual_seed(0)
    a = torch.sigmoid(12 * torch.randn(3, 70, 5, generator=gen, dtype=torch.float64))
    b = torch.rand(3, 70, 5, generator=gen, dtype=torch.float64) + 0.01
    expected = sequential(a, b, None)
    got = scan.parallel_scan_log(a.float().log(), b.float().log())
    torch.testing.assert_close(got.double(), expected, rtol=2e-4, atol=0)


@pytest.mark.parametrize("spread", [1.0, 200.0], ids=["blockwise", "fallback"])
def test_blockwise_logcumsumexp_matches_torch_with_gradients(registry, spread):
    scan = plugin_module(registry, "scan")
    gen = torch.Generator().manual_seed(1)
    v = (spread * torch.randn(2, 77, 3, generator=gen, dtype=torch.float64)).requires_grad_()
    weights = torch.randn(2, 77, 3, generator=gen, dtype=torch.float64)
    ours = scan.logcumsumexp(v)
    ref = torch.logcumsumexp(v, dim=1)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), v)
    (g_ref,) = torch.autograd.grad((ref * weights).sum(), v)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-8, atol=1e-10)


def paper_recurrence(cell: str, layer, x: torch.Tensor) -> torch.Tensor:
    """minGRU / minLSTM exactly as in Feng et al. (2024), section 3, with g() on h~."""

    def g(v):  # written out again here, independent of the plugin's
        return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))

    pre = layer.linear(x)
    h = torch.zeros(x.shape[0], pre.shape[-1] // (2 if cell == "gru" else 3), dtype=x.dtype)
    out = []
    for t in range(x.shape[1]):
        if cell == "gru":
            k, p = pre[:, t].chunk(2, dim=-1)
            z = torch.sigmoid(k)
            h = (1 - z) * h + z * g(p)
        else:
            k_f, k_i, p = pre[:, t].chunk(3, dim=-1)
            f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
            h = f / (f + i) * h + i / (f + i) * g(p)
        out.append(h)
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("name, cell", [("mingru", "gru"), ("minlstm", "lstm")])
def test_cells_train_by_scan_and_match_the_papers_recurrence(registry, name, cell):
    torch.manual_seed(0)
    model = core(name, input_size=4, hidden_size=8).double()
    layer = model.stack.blocks[0].rnn
    x = torch.randn(2, 45, 8, dtype=torch.float64) * 3
    with torch.no_grad():
        expected = paper_recurrence(cell, layer, x)
        torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-12)
        h, steps = torch.zeros(2, 8, dtype=torch.float64), []
        for t in range(x.shape[1]):
            h = layer.step(x[:, t], h)
            steps.append(h)
        torch.testing.assert_close(torch.stack(steps, 1), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_float32_scan_over_1000_steps_is_accurate_with_finite_gradients(registry, name):
    torch.manual_seed(0)
    model = core(name, input_size=6, hidden_size=8, num_layers=2)
    x = torch.randn(2, 1000, 6)
    lengths = torch.tensor([1000, 700])
    y, _ = model(x, lengths)
    y.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.no_grad():
        y64, _ = model.double()(x.double(), lengths)
    torch.testing.assert_close(y.detach().double(), y64, rtol=1e-3, atol=1e-4)


# -- the core contract (seqpipe.testing) -------------------------------------------------


def test_the_plugin_has_no_models_of_its_own(registry):
    """Its cores run inside seqpipe's composite models; nothing wraps them here."""
    assert not [c for c in registry.all() if c.package == "seqpipe-minrnn" and c.kind != "cell"]


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_core_padding_does_not_leak(registry, name, bidirectional):
    torch.manual_seed(0)
    model = core(name, input_size=5, hidden_size=16, num_layers=2, bidirectional=bidirectional)
    testing.check_padding_invariance(model, input_size=5, atol=1e-9)


@pytest.mark.parametrize("name", CELLS)
def test_core_step_equals_forward(registry, name):
    torch.manual_seed(0)
    testing.check_step_matches_forward(core(name, input_size=5, hidden_size=8), input_size=5)


def test_core_rejects_lengths_that_do_not_fit_the_batch(registry):
    from seqpipe.errors import SeqpipeError

    model = core("mingru", input_size=2, hidden_size=4)
    x = torch.zeros(2, 5, 2)
    for bad in ([5, 6], [0, 3], [5]):
        with pytest.raises(SeqpipeError, match=r"^mingru: lengths must be 2 values in \[1, 5\]"):
            model(x, torch.tensor(bad))


def test_typed_options_are_validated_like_built_in_ones(registry):
    testing.check_options(
        "cell", "mingru", invalid={"mlp_ratio": -1, "cell": "gru", "hidden_size": 8}
    )
    from seqpipe.config import ConfigError

    with pytest.raises(
        ConfigError, match=r"^<tiny recipe>: model.cell.mlp_ratio: expected a non-negative"
    ):
        Pipeline.from_config(testing.tiny_recipe(cell={"name": "mingru", "mlp_ratio": "x"}))


# -- in pipelines and bundles -------------------------------------------------------------


@pytest.fixture
def melody_pipeline(registry, tmp_path) -> Pipeline:
    recipe = tmp_path / "mingru_melody.yaml"
    recipe.write_text(
        textwrap.dedent(
            """\
            task: {name: melody}
            features: {name: melody_events}
            model: {name: rnn_lm, cell: mingru, hidden_size: 16, num_layers: 2, dropout: 0.1}
            decoder: {name: sample, temperature: 0.9}
            seed: 0
            """
        )
    )
    return Pipeline.from_config(load_config(recipe), registry)


def test_yaml_recipe_builds_trains_and_generates_with_the_plugin_core(melody_pipeline):
    from seqpipe.music.generator import generate_melodies
    from seqpipe.music.request import Request

    pipeline = melody_pipeline
    assert type(pipeline.model).__name__ == "RecurrentLM"
    assert type(pipeline.model.stack).__name__ == "MinGRU"
    assert pipeline.model.head.out_features == pipeline.features.vocab_size  # wired
    torch.manual_seed(0)
    tokens = torch.randint(3, pipeline.features.vocab_size, (2, 12))
    batch = {"tokens": tokens, "lengths": torch.tensor([12, 7]), "notes": torch.tensor([3, 2])}
    loss, count = pipeline.task.loss(pipeline, batch)
    loss.backward()
    assert count == 11 + 6 and torch.isfinite(loss)
    assert pipeline.model.embed.weight.grad.abs().sum() > 0
    # rnn_lm's step() runs the core's step(): the same logits as forward, token by token
    model = pipeline.model.double().eval()
    with torch.no_grad():
        logits = model(tokens, torch.tensor([12, 12]))
        state, stepped = model.initial_state(2, "cpu"), []
        for t in range(12):
            out, state = model.step(tokens[:, t], state)
            stepped.append(out)
    torch.testing.assert_close(torch.stack(stepped, 1), logits, rtol=1e-9, atol=1e-10)
    # the built-in sampler drives initial_state / step / reorder_state
    melodies = generate_melodies(pipeline.float(), Request(n=2, bars=2, seed=0))
    assert len(melodies) == 2


def test_speech_recipe_builds_a_ctc_model_from_the_plugin(registry, tmp_path):
    recipe = tmp_path / "mingru_speech.yaml"
    recipe.write_text(
        "task: {name: speech}\n"
        "features: {name: logmel, sample_rate: 8000, n_mels: 20}\n"
        "model: {name: ctc_rnn, cell: minlstm, hidden_size: 16, num_layers: 1, channels: 4}\n"
        "decoder: {name: ctc_greedy}\n"
    )
    pipeline = Pipeline.from_config(load_config(recipe), registry).eval()
    waves, lengths = torch.randn(2, 4000) * 0.1, torch.tensor([4000, 2500])
    with torch.no_grad():
        feats, feat_lengths = pipeline.features(waves, lengths)
        logits, out_lengths = pipeline.model(feats, feat_lengths)
    assert type(pipeline.model.rnn).__name__ == "MinLSTM" and pipeline.model.rnn.bidirectional
    assert logits.shape[0] == 2 and logits.shape[2] == len(pipeline.task.vocab)
    assert out_lengths.tolist() == [(n + 3) // 4 for n in feat_lengths.tolist()]  # subsample 4


def test_bundle_names_the_package_to_install_where_the_plugin_is_missing(melody_pipeline, tmp_path):
    path = melody_pipeline.save(tmp_path / "tune.safetensors")
    meta = read_bundle_metadata(path)
    assert meta["components"]["model"]["package"] == "seqpipe"
    assert meta["cells"] == [
        {"name": "mingru", "plugin": "minrnn", "package": "seqpipe-minrnn", "version": "0.2.0"}
    ]
    # with the plugin: the bundle loads and computes what the saved pipeline did
    loaded = Pipeline.load(path)
    tokens = torch.randint(3, 20, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.model(tokens, torch.tensor([10])),
            melody_pipeline.eval().model(tokens, torch.tensor([10])),
        )
    # without it (not on the path, and disallowed in case it is installed here too)
    code = "import sys; from seqpipe.pipeline import Pipeline; Pipeline.load(sys.argv[1])"
    result = run_python(["-c", code, str(path)], None, "")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("seqpipe.errors.SeqpipeError: ")
    assert "cell 'mingru' from the plugin package 'seqpipe-minrnn'" in last
    assert "pip install seqpipe-minrnn" in last


def test_benchmark_script_runs(plugin_site):
    script = PLUGIN_SRC / "benchmark.py"
    args = [str(script), "--length", "40", "--batch", "2", "--hidden", "8", "--repeats", "1"]
    result = run_python(args, plugin_site, None)
    assert result.returncode == 0, result.stderr
    assert "minGRU, parallel scan" in result.stdout and "nn.GRU (fused)" in result.stdout


@pytest.mark.parametrize("shape", ["many-to-one", "autoregressive"])
def test_bundle_round_trip_with_the_core(registry, tmp_path, shape):
    testing.check_bundle_round_trip(testing.tiny_recipe(cell="minlstm", shape=shape), tmp_path)
