"""Test helpers for plugin authors: check a component against its contract.

Shipped with seqpipe (as pytest ships ``pytester``) so a plugin's tests need no copy of
seqpipe's own fixtures and no internals. Each ``check_*`` function raises
``AssertionError`` saying what broke; call them from plain pytest tests::

    from seqpipe import testing

    def test_my_cell_meets_the_core_contract():
        core = testing.build("cell", "mycell", input_size=5, hidden_size=8)
        testing.check_padding_invariance(core, input_size=5)
        testing.check_step_matches_forward(core, input_size=5)

    def test_my_cell_trains_in_a_bundle(tmp_path):
        testing.check_bundle_round_trip(testing.tiny_recipe(cell="mycell"), tmp_path)

Components are looked up through installed entry points, exactly as users get them;
:func:`reload_plugins` makes seqpipe look again (after installing into ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqpipe.errors import SeqpipeError

#: recipe for a seconds-long pipeline per model shape: random inputs, no data files
_TASKS = {
    "many-to-one": {"name": "classify", "labels": ["a", "b", "c"], "sample_rate": 8000},
    "many-to-many": {"name": "speech"},
    "autoregressive": {"name": "melody"},
}
_FEATURES = {
    "many-to-one": {"name": "logmel", "sample_rate": 8000, "n_mels": 8},
    "many-to-many": {"name": "logmel", "sample_rate": 8000, "n_mels": 8},
    "autoregressive": {"name": "melody_events"},
}


def reload_plugins():
    """Forget the plugins loaded so far (they load once per process) and return the new
    registry, e.g. after putting a freshly installed plugin on ``sys.path``."""
    from seqpipe import plugins

    plugins.load.cache_clear()
    return plugins.registry()


def build(kind: str, name: str, **arguments: Any):
    """Build the registered component ``kind``/``name`` (``cell``, ``model``, ``features``,
    ``decoder``) with ``arguments``, options validated as a recipe's would be."""
    from seqpipe.config import validate_options
    from seqpipe.plugins import registry
    from seqpipe.registry import WIRED

    target = registry().get(kind, name).load()
    sizes = {"hidden_size", "num_layers", "bidirectional", "dropout"} if kind == "cell" else set()
    wired = {k: v for k, v in arguments.items() if k in WIRED | sizes}
    options = {k: v for k, v in arguments.items() if k not in wired}
    options = validate_options(target, options, where=kind, source="test", wired=frozenset(wired))
    return target(**options, **wired)


def tiny_recipe(
    *, cell: Any = None, model: dict[str, Any] | None = None, shape: str = "many-to-one"
) -> dict[str, Any]:
    """A recipe (as ``load_config`` returns it) for a tiny pipeline: ``cell`` as the core
    of the shape's built-in composite (``classifier``, ``ctc_rnn``, ``rnn_lm``), or your
    own ``model`` section."""
    if model is None:
        composite = {"many-to-one": "classifier", "many-to-many": "ctc_rnn"}
        model = {"name": composite.get(shape, "rnn_lm"), "hidden_size": 8, "num_layers": 1}
        if shape == "many-to-many":
            model.update(channels=4, subsample=2, dropout=0.0)
        if shape == "many-to-one":
            model["bidirectional"] = False  # a core need not run backwards
        if cell is not None:
            model["cell"] = cell
    return {
        "task": dict(_TASKS[shape]),
        "features": dict(_FEATURES[shape]),
        "model": dict(model),
        "seed": 0,
        "_source": "<tiny recipe>",
    }


def _padded(input_size: int, lengths: list[int], loud: float, generator) -> torch.Tensor:
    x = torch.randn(len(lengths), max(lengths), input_size, generator=generator)
    for i, n in enumerate(lengths):
        x[i, n:] = loud  # loud padding shows up anywhere it leaks
    return x.double()


def check_padding_invariance(
    module: torch.nn.Module,
    input_size: int,
    lengths: tuple[int, ...] = (9, 5, 2),
    atol: float = 1e-6,
) -> None:
    """``forward(x, lengths)`` gives each sequence's real frames the values it gets alone
    (for a core or a many-to-many model; run in float64, eval mode)."""
    module = module.double().eval()
    x = _padded(input_size, list(lengths), 1e3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        y, out_lengths = module(x, torch.tensor(lengths))
        for i, n in enumerate(torch.as_tensor(out_lengths).tolist()):
            alone, _ = module(x[i : i + 1, : lengths[i]], torch.tensor(lengths[i : i + 1]))
            if not torch.allclose(y[i, :n], alone[0, :n], atol=atol, rtol=0):
                worst = (y[i, :n] - alone[0, :n]).abs().max().item()
                raise AssertionError(
                    f"padding changes sequence {i}'s outputs (length {lengths[i]} in a batch "
                    f"padded to {max(lengths)}): max difference {worst:.3g}"
                )


def check_step_matches_forward(
    core: torch.nn.Module, input_size: int, steps: int = 7, atol: float = 1e-6
) -> None:
    """``initial_state`` + ``step`` frame by frame equals ``forward`` over the sequence, and
    ``reorder_state`` (or the default, batch dimension 1) continues the rows it picks."""
    from seqpipe.models.core import reorder_state

    core = core.double().eval()
    x = torch.randn(3, steps, input_size, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        y, _ = core(x, torch.full((3,), steps))
        state, outs = core.initial_state(3, "cpu"), []
        for t in range(steps):
            out, state = core.step(x[:, t], state)
            outs.append(out)
        stepped = torch.stack(outs, 1)
        if not torch.allclose(stepped, y, atol=atol, rtol=0):
            worst = (stepped - y).abs().max().item()
            raise AssertionError(f"step() differs from forward(): max difference {worst:.3g}")
        index = torch.tensor([2, 2, 0])
        picked, _ = core.step(x[index, 0], reorder_state(core, state, index))
        direct, _ = core.step(x[:, 0], state)
        if not torch.allclose(picked, direct[index], atol=atol, rtol=0):
            raise AssertionError("reorder_state(state, index) does not pick the rows of index")


def _batch(pipeline) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed model input for the pipeline: tokens for a token LM, frames otherwise."""
    gen = torch.Generator().manual_seed(2)
    wiring = pipeline.wiring
    if "input_size" not in wiring:
        return torch.randint(0, wiring["vocab_size"], (2, 6), generator=gen), torch.tensor([6, 4])
    return torch.randn(2, 12, wiring["input_size"], generator=gen), torch.tensor([12, 7])


def check_bundle_round_trip(recipe: dict[str, Any], folder: str | Path) -> Path:
    """Build the recipe's pipeline, save it as a bundle in ``folder``, load it back: same
    config, same weights, same outputs, and each plugin component's package recorded.
    Returns the bundle's path."""
    from seqpipe.pipeline import Pipeline, read_bundle_metadata

    torch.manual_seed(0)
    pipeline = Pipeline.from_config(recipe).eval()
    path = pipeline.save(Path(folder) / "round_trip.safetensors")
    loaded = Pipeline.load(path)
    if loaded.config != pipeline.config:
        raise AssertionError(f"config changed: {pipeline.config} -> {loaded.config}")
    x, lengths = _batch(pipeline)
    with torch.no_grad():
        before, after = pipeline.model(x, lengths), loaded.model(x, lengths)
    before = before[0] if isinstance(before, tuple) else before
    after = after[0] if isinstance(after, tuple) else after
    if not torch.equal(before, after):
        raise AssertionError("the loaded bundle computes different outputs")
    meta = read_bundle_metadata(path)
    for part in [*meta["components"].values(), *meta.get("cells", [])]:
        if not part.get("package") or not part.get("version"):
            raise AssertionError(f"bundle does not record package and version of {part}")
    return path


def check_options(kind: str, name: str, invalid: dict[str, Any] | None = None) -> None:
    """Every option of the component has a type hint, its defaults validate, and each
    value in ``invalid`` (option -> a wrong value) is refused with a message naming it."""
    from seqpipe.config import ConfigError, validate_options
    from seqpipe.plugins import registry
    from seqpipe.registry import WIRED, untyped_options

    target = registry().get(kind, name).load()
    untyped = untyped_options(target)
    if untyped:
        raise AssertionError(f"{kind} '{name}': options without a type hint: {untyped}")
    sizes = {"hidden_size", "num_layers", "bidirectional", "dropout"} if kind == "cell" else set()
    wired = frozenset(WIRED | sizes)
    validate_options(target, {}, where=kind, source="test", wired=wired)
    for option, value in (invalid or {}).items():
        try:
            validate_options(target, {option: value}, where=kind, source="test", wired=wired)
        except (ConfigError, SeqpipeError) as exc:
            if f"{kind}.{option}" not in str(exc):
                raise AssertionError(f"the error does not name {kind}.{option}: {exc}") from None
            continue
        raise AssertionError(f"{kind} '{name}' accepts {option}={value!r}")
