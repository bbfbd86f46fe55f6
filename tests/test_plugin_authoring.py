"""What plugin authors get: recurrent cores in the built-in models, declared shapes,
plugin control, the template and seqpipe.testing, bundle inspection."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import make_installed_plugin, run_seqpipe
from seqpipe import testing
from seqpipe.errors import SeqpipeError
from seqpipe.models.classifier import RecurrentClassifier
from seqpipe.models.rnn import GRUCore, LSTMCore, RecurrentStack
from seqpipe.pipeline import Pipeline
from seqpipe.registry import Registry
from seqpipe.scaffold import KINDS, new_plugin

# a recurrent core registered by a third party, defined inline
CORE = """
import seqpipe
import torch
from torch import nn
from seqpipe.types import PositiveInt


class Leaky(nn.Module):
    '''h_t = (1 - a) h_{t-1} + a tanh(W x_t): a causal core with step().'''

    def __init__(self, input_size: int, hidden_size: PositiveInt = 8, rate: float = 0.5):
        super().__init__()
        self.proj = nn.Linear(input_size, hidden_size)
        self.rate, self.output_size = rate, hidden_size

    def initial_state(self, batch_size, device="cpu"):
        return torch.zeros(1, batch_size, self.output_size, device=device)

    def step(self, x, state):
        h = (1 - self.rate) * state[0] + self.rate * torch.tanh(self.proj(x))
        return h, h.unsqueeze(0)

    def forward(self, x, lengths):
        state, outs = self.initial_state(x.shape[0]), []
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state)
            outs.append(y)
        return torch.stack(outs, 1), lengths


@seqpipe.hookimpl
def register_cells(register):
    register("leaky", Leaky, help="a leaky integrator core")
"""


@pytest.fixture
def leaky(plugin_site, monkeypatch):
    """The registry with the ``leaky`` core's plugin installed (in this process)."""
    make_installed_plugin(plugin_site, "seqpipe-leaky", "seqpipe_leaky", CORE)
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.delenv("SEQPIPE_PLUGINS", raising=False)
    yield testing.reload_plugins()
    monkeypatch.undo()
    testing.reload_plugins()


# -- recurrent cores ---------------------------------------------------------------------


def test_builtin_cores_meet_the_contract():
    for core in (LSTMCore(5, 8, num_layers=2), GRUCore(5, 8, num_layers=2)):
        testing.check_padding_invariance(core, input_size=5)
        testing.check_step_matches_forward(core, input_size=5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_pooling_reads_the_same_features_as_the_final_state(bidirectional):
    """'last' now reads each direction's end from the outputs; it must equal the
    layer's final hidden state, which it used before (bundles keep their outputs)."""
    torch.manual_seed(0)
    model = RecurrentClassifier(5, 3, cell="gru", hidden_size=6, bidirectional=bidirectional)
    model.pooling = "last"
    x, lengths = torch.randn(3, 9, 5), torch.tensor([9, 4, 1])
    _, h = RecurrentStack.run(model.stack, x, lengths)
    dirs = 2 if bidirectional else 1
    expected = model.head(torch.cat(list(h[-dirs:]), dim=-1))
    torch.testing.assert_close(model.eval()(x, lengths), expected, rtol=0, atol=0)


def test_a_plugin_core_serves_classifier_lm_seq2seq_and_ctc(leaky, tmp_path):
    for shape in ("many-to-one", "autoregressive"):
        testing.check_bundle_round_trip(testing.tiny_recipe(cell="leaky", shape=shape), tmp_path)
    lm = Pipeline.from_config(testing.tiny_recipe(cell="leaky", shape="autoregressive")).model
    assert type(lm.stack).__name__ == "Leaky"
    tokens = torch.randint(0, 20, (2, 5))
    lm.eval()
    with torch.no_grad():
        logits, state = lm(tokens, torch.tensor([5, 5])), lm.initial_state(2)
        for t in range(5):
            out, state = lm.step(tokens[:, t], state)
            torch.testing.assert_close(out, logits[:, t])
        picked, _ = lm.step(tokens[[1, 1], 0], lm.reorder_state(state, torch.tensor([1, 1])))
        assert torch.equal(picked[0], picked[1])
    # ctc_rnn needs a bidirectional core: one without that option is refused, by name
    with pytest.raises(SeqpipeError, match="cell 'leaky' cannot run bidirectionally"):
        Pipeline.from_config(testing.tiny_recipe(cell="leaky", shape="many-to-many"))


def test_seq2seq_encodes_with_a_plugin_core(leaky):
    from seqpipe.models.seq2seq import Seq2Seq
    from seqpipe.pipeline import build_component

    def build_cell(spec, **sizes):
        section = spec if isinstance(spec, dict) else {"name": spec}
        return build_component(leaky, "cell", section, source="t", wired=sizes, where="model.cell")[
            0
        ]

    model = Seq2Seq(4, 7, cell="leaky", bidirectional=False, build_cell=build_cell)
    assert type(model.encoder.stack).__name__ == "Leaky" and model.speller.cell == "lstm"
    logits = model(torch.randn(2, 6, 4), torch.tensor([6, 3]), torch.randint(0, 7, (2, 3)))
    assert logits.shape == (2, 3, 7)


def test_a_plugin_cell_without_the_pipeline_is_refused_by_name():
    with pytest.raises(SeqpipeError, match="cell 'leaky' is not built in"):
        RecurrentClassifier(5, 3, cell="leaky")


# -- declared shapes, options ---------------------------------------------------------------


def test_task_refuses_a_model_of_the_wrong_shape_when_the_pipeline_is_built():
    recipe = testing.tiny_recipe(model={"name": "lstm", "hidden_size": 4})
    with pytest.raises(SeqpipeError) as err:
        Pipeline.from_config(recipe)
    assert str(err.value) == (
        "<tiny recipe>: model.name: task 'classify' needs a many-to-one model (forward(x[B,T,F], "
        "lengths) -> logits[B,C], one output per sequence); model 'lstm' is many-to-many"
    )


def test_unknown_shape_is_a_registration_error():
    with pytest.raises(SeqpipeError, match="unknown shape 'one-to-one'"):
        Registry().add("model", "x", object, plugin="p", package="p", shape="one-to-one")


def test_untyped_option_is_a_warning_when_the_component_loads(capsys):
    class Loose:
        def __init__(self, input_size: int, width=3, depth: int = 1):
            pass

    registry = Registry()
    registry.add("model", "loose", "builtins:object", plugin="p", package="seqpipe-loose")
    component = registry.get("model", "loose")
    component.target = f"{__name__}:Loose"
    globals()["Loose"] = Loose
    component.load()
    assert capsys.readouterr().err == (
        "seqpipe: warning: model 'loose' (seqpipe-loose): option width without a type hint "
        "accept any value unchecked\n"
    )


# -- plugin control --------------------------------------------------------------------------


def test_exclusion_keeps_other_plugins_and_says_why(plugin_site):
    make_installed_plugin(plugin_site, "seqpipe-leaky", "seqpipe_leaky", CORE)
    make_installed_plugin(
        plugin_site, "seqpipe-toy", "seqpipe_toy", CORE.replace('"leaky"', '"toy"')
    )
    env = {"SEQPIPE_PLUGINS": "-seqpipe-leaky"}
    out = json.loads(run_seqpipe("plugins", "--json", "--all", site=plugin_site, env=env).stdout)
    names = {c["name"] for c in out["components"] if c["kind"] == "cell"}
    assert {"lstm", "gru", "rnn", "toy"} <= names and "leaky" not in names  # (+ any installed)
    assert [d for d in out["disabled"] if d["package"] == "seqpipe-leaky"] == [
        {"name": "seqpipe_leaky", "package": "seqpipe-leaky", "version": "1.0",
         "reason": "excluded by SEQPIPE_PLUGINS"}
    ]  # fmt: skip
    table = run_seqpipe("plugins", "--all", site=plugin_site, env=env).stdout
    assert "seqpipe_leaky" in table and "disabled" in table
    assert "seqpipe_leaky" not in run_seqpipe("plugins", site=plugin_site, env=env).stdout
    only = {"SEQPIPE_PLUGINS": "seqpipe_toy"}
    out = json.loads(run_seqpipe("plugins", "--json", "--all", site=plugin_site, env=only).stdout)
    leaky = [d for d in out["disabled"] if d["package"] == "seqpipe-leaky"]
    assert leaky[0]["reason"] == "not named in SEQPIPE_PLUGINS"


def test_a_disabled_plugin_is_named_where_its_component_is_missing(plugin_site, tmp_path):
    make_installed_plugin(plugin_site, "seqpipe-leaky", "seqpipe_leaky", CORE)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        json.dumps({k: v for k, v in testing.tiny_recipe(cell="leaky").items() if k != "_source"})
    )
    code = "import sys; from seqpipe.config import load_config; from seqpipe.pipeline import Pipeline; Pipeline.from_config(load_config(sys.argv[1]))"
    env = dict(__import__("os").environ, SEQPIPE_PLUGINS="-seqpipe_leaky")
    env["PYTHONPATH"] = f"{plugin_site}:{env.get('PYTHONPATH', '')}"
    result = subprocess.run(
        [sys.executable, "-c", code, str(recipe)], capture_output=True, text=True, env=env
    )
    last = result.stderr.strip().splitlines()[-1]
    installed = last.split("unknown cell 'leaky' (installed: ")[1].split(")")[0].split(", ")
    assert {"gru", "lstm", "rnn"} <= set(installed) and "leaky" not in installed
    assert "installed plugins not loaded: 'seqpipe_leaky' excluded by SEQPIPE_PLUGINS" in last


# -- the template, inspect, dry run ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_plugin_new_writes_a_package_with_an_entry_point(tmp_path, kind):
    root = new_plugin("my_thing", kind, tmp_path)
    pyproject = (root / "pyproject.toml").read_text()
    assert 'name = "seqpipe-my_thing"' in pyproject and 'my_thing = "seqpipe_my_thing"' in pyproject
    hooks = (root / "seqpipe_my_thing" / "__init__.py").read_text()
    assert (
        f"register_{'cells' if kind == 'cell' else kind + ('s' if kind != 'features' else '')}"
        in hooks
    )
    compile((root / "seqpipe_my_thing" / "component.py").read_text(), "component.py", "exec")
    assert "from seqpipe import testing" in (root / "tests" / "test_my_thing.py").read_text()
    with pytest.raises(SeqpipeError, match="already exists"):
        new_plugin("my_thing", kind, tmp_path)


def test_generated_cell_plugin_installs_and_passes_its_own_tests(tmp_path):
    """The whole loop: seqpipe plugin new -> pip install -> its tests pass unchanged."""
    result = run_seqpipe("plugin", "new", "mycell", "--kind", "cell", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
           "--no-build-isolation", "--target", str(site), str(tmp_path / "mycell")]  # fmt: skip
    installed = subprocess.run(pip, capture_output=True, text=True)
    if installed.returncode and "bdist_wheel" in installed.stderr:
        pytest.skip("this environment cannot build wheels offline (no 'wheel' package)")
    assert installed.returncode == 0, installed.stderr
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = f"{site}:{env.get('PYTHONPATH', '')}"
    env.pop("SEQPIPE_PLUGINS", None)
    tests = tmp_path / "mycell" / "tests"
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert "4 passed" in ran.stdout


def test_inspect_prints_components_versions_and_sizes(tmp_path):
    path = Pipeline.from_config(testing.tiny_recipe()).save(tmp_path / "b.safetensors")
    result = run_seqpipe("inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    assert about["components"]["model"]["name"] == "classifier"
    assert about["cells"][0]["name"] == "lstm" and about["cells"][0]["version"]
    assert about["parameters"] == sum(p.numel() for p in Pipeline.load(path).state_dict().values())
    from click.testing import CliRunner

    from seqpipe.cli.inspect import command as inspect

    text = CliRunner().invoke(inspect, [str(path)]).output
    assert "model: classifier (seqpipe " in text and "cell: lstm (seqpipe " in text


def test_install_runs_pip_of_seqpipes_own_python(monkeypatch):
    from click.testing import CliRunner

    from seqpipe.cli import install

    calls = []
    monkeypatch.setattr(
        install.subprocess,
        "run",
        lambda args: calls.append(args) or subprocess.CompletedProcess(args, 0),
    )
    result = CliRunner().invoke(install.command, ["-U", "seqpipe-minrnn"])
    assert result.exit_code == 0
    assert calls == [[sys.executable, "-m", "pip", "install", "--upgrade", "seqpipe-minrnn"]]
