"""Bundles: one safetensors file that loads back with identical outputs, never unpickled."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import seqpipe
from seqpipe.config import load_config, parse_yaml
from seqpipe.errors import SeqpipeError
from seqpipe.pipeline import METADATA_KEY, Pipeline, read_bundle_metadata

RECIPE = """
task: {name: classify, labels: [yes, no, maybe], sample_rate: 8000}
features: {name: logmel, sample_rate: 8000, n_mels: 20}
model: {name: classifier, hidden_size: 16, num_layers: 2, bidirectional: true, pooling: attention}
"""


def tiny_pipeline() -> Pipeline:
    torch.manual_seed(0)
    return Pipeline.from_config(parse_yaml(RECIPE))


def outputs(pipeline: Pipeline) -> torch.Tensor:
    torch.manual_seed(1)
    waves, lengths = torch.randn(3, 4000), torch.tensor([4000, 2500, 1200])
    with torch.no_grad():
        feats, frames = pipeline.features(waves, lengths)
        return pipeline.model(feats, frames)


def test_save_load_gives_identical_outputs(tmp_path):
    pipeline = tiny_pipeline().eval()
    path = pipeline.save(tmp_path / "model.safetensors")
    loaded = Pipeline.load(path, device="cpu")
    assert torch.equal(outputs(pipeline), outputs(loaded))
    assert loaded.config == pipeline.config
    assert not list(tmp_path.glob("*.tmp")), "atomic save leaves no temp file behind"


def test_bundle_is_self_describing(tmp_path):
    path = tiny_pipeline().save(tmp_path / "model.safetensors")
    meta = read_bundle_metadata(path)
    assert meta["format"] == "seqpipe-bundle/1"
    assert meta["seqpipe_version"]
    assert meta["config"]["model"]["hidden_size"] == 16
    assert meta["config"]["task"]["labels"] == ["yes", "no", "maybe"]
    assert meta["components"]["model"] == {
        "name": "classifier",
        "plugin": "seqpipe.models",
        "package": "seqpipe",
        "version": seqpipe.__version__,
    }
    cell = meta["config"]["model"]["cell"]  # the recurrent core, with its package and version
    assert meta["cells"] == [
        {
            "name": cell,
            "plugin": "seqpipe.models",
            "package": "seqpipe",
            "version": seqpipe.__version__,
        }
    ]


def test_renamed_weights_are_named(tmp_path):
    """A bundle whose parameter names no longer match the model (a plugin renamed one)
    fails naming the keys, not with a bare state_dict error."""
    path = tiny_pipeline().save(tmp_path / "model.safetensors")
    tensors = load_file(str(path))
    old = next(k for k in tensors if k.endswith("head.weight"))
    tensors[old.replace("head.weight", "out.weight")] = tensors.pop(old)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    save_file(tensors, str(tmp_path / "renamed.safetensors"), metadata=metadata)
    with pytest.raises(SeqpipeError) as err:
        Pipeline.load(tmp_path / "renamed.safetensors")
    message = str(err.value)
    assert f"missing in the file: {old}" in message
    assert "not in the model: " + old.replace("head.weight", "out.weight") in message


def rewrite_metadata(src, dst, edit) -> None:
    """Copy a bundle, changing its metadata with ``edit(meta)`` (tensors untouched)."""
    meta = read_bundle_metadata(src)
    edit(meta)
    save_file(load_file(str(src)), str(dst), metadata={METADATA_KEY: json.dumps(meta)})


def test_missing_plugin_names_the_package_to_install(tmp_path):
    path = tiny_pipeline().save(tmp_path / "model.safetensors")

    def needs_plugin(meta):
        meta["config"]["model"]["name"] = "fancy_rnn"
        meta["components"]["model"] = {
            "name": "fancy_rnn",
            "plugin": "fancy",
            "package": "seqpipe-fancy",
        }

    rewrite_metadata(path, tmp_path / "plugin.safetensors", needs_plugin)
    with pytest.raises(
        SeqpipeError,
        match=r"needs model 'fancy_rnn' from the plugin package 'seqpipe-fancy'.*pip install seqpipe-fancy",
    ):
        Pipeline.load(tmp_path / "plugin.safetensors")


def test_corrupt_and_foreign_files_are_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01garbage")
    with pytest.raises(SeqpipeError, match=rf"{corrupt}: not a valid seqpipe bundle"):
        Pipeline.load(corrupt)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(SeqpipeError, match="not a seqpipe bundle"):
        Pipeline.load(foreign)
    truncated = tmp_path / "truncated.safetensors"
    data = tiny_pipeline().save(tmp_path / "ok.safetensors").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SeqpipeError, match=rf"{truncated}"):
        Pipeline.load(truncated)


def test_unknown_bundle_name_lists_bundled_models():
    with pytest.raises(SeqpipeError, match=r"unknown model 'no-such-model'"):
        Pipeline.load("no-such-model")


def test_mismatched_weights_are_reported(tmp_path):
    path = tiny_pipeline().save(tmp_path / "model.safetensors")
    rewrite_metadata(
        path,
        tmp_path / "bad.safetensors",
        lambda meta: meta["config"]["model"].update(hidden_size=32),
    )
    with pytest.raises(SeqpipeError, match="weights do not match the bundle's config"):
        Pipeline.load(tmp_path / "bad.safetensors")


SPEECH_RECIPES = Path(__file__).resolve().parents[1] / "configs" / "speech"


def make_bundle(*args) -> subprocess.CompletedProcess:
    """scripts/make_bundle.py, run as the recipes document it."""
    script = SPEECH_RECIPES.parents[1] / "scripts" / "make_bundle.py"
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True
    )


def test_make_bundle_averages_runs_and_attaches_the_recipes_decoder(tmp_path):
    """Several runs' weights become their mean; a different model is refused."""
    recipe = SPEECH_RECIPES / "digits.yaml"
    config = {**load_config(recipe), "decoder": {"name": "ctc_greedy"}}
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        runs.append(Pipeline.from_config(config).save(tmp_path / f"run{seed}.safetensors"))
    out = tmp_path / "shipped.safetensors"
    done = make_bundle(*runs, recipe, out)
    assert done.returncode == 0, done.stderr
    shipped, first, second = (load_file(p) for p in (out, *runs))
    name = next(k for k in shipped if k.endswith("weight_ih_l0"))
    assert not torch.equal(first[name], second[name])
    assert torch.allclose(shipped[name], (first[name] + second[name]) / 2)
    meta = read_bundle_metadata(out)
    assert meta["config"]["decoder"]["name"] == "ctc_beam"  # the recipe's, not the run's
    assert meta["averaged"] == list(map(str, runs))

    other = {**config, "model": {**config["model"], "hidden_size": 64}}
    Pipeline.from_config(other).save(tmp_path / "other.safetensors")
    done = make_bundle(runs[0], tmp_path / "other.safetensors", recipe, out)
    assert done.returncode != 0 and "do not hold the same model" in done.stderr


def test_make_bundle_ships_runs_of_different_seeds_as_one_ensemble(tmp_path):
    """--ensemble keeps each run whole as a member; the bundle decodes their mean posterior."""
    recipe = SPEECH_RECIPES / "digits-base.yaml"
    config = load_config(recipe)
    config["model"] = {**config["model"], "hidden_size": 8, "num_layers": 1}
    config["features"] = {**config["features"], "name": "mfcc"}
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        run = Pipeline.from_config({**config, "seed": seed, "name": f"run{seed}"})
        runs.append(run.save(tmp_path / f"r{seed}.st"))
    out = tmp_path / "ensemble.safetensors"
    done = make_bundle(*runs, recipe, out, "--ensemble")
    assert done.returncode == 0, done.stderr
    meta = read_bundle_metadata(out)
    member = read_bundle_metadata(runs[0])["config"]["model"]  # resolved: defaults filled in
    assert meta["config"]["model"] == {"name": "ctc_ensemble", "size": 2, "member": member}
    assert meta["ensemble"] == list(map(str, runs)) and meta["seeds"] == [0, 1]
    assert meta["config"]["name"] == "digits-base"  # named by the recipe that ships it
    shipped, members = Pipeline.load(out), [Pipeline.load(r) for r in runs]
    waves, lengths = torch.randn(2, 8000), torch.tensor([8000, 5000])
    with torch.no_grad():
        feats, feat_lengths = shipped.features(waves, lengths)
        log_probs, _ = shipped.model(feats, feat_lengths)
        posteriors = [torch.softmax(m.model(feats, feat_lengths)[0], -1) for m in members]
    torch.testing.assert_close(log_probs.exp(), (posteriors[0] + posteriors[1]) / 2)

    other = {**config, "features": {**config["features"], "n_mels": 32}}
    Pipeline.from_config(other).save(tmp_path / "other.safetensors")
    done = make_bundle(runs[0], tmp_path / "other.safetensors", recipe, out, "--ensemble")
    assert done.returncode != 0 and "do not share one model config and front end" in done.stderr
    done = make_bundle(runs[0], recipe, out, "--ensemble")
    assert done.returncode != 0 and "at least two runs" in done.stderr


def test_make_bundle_drops_a_training_only_speller(tmp_path):
    """A ctc_rnn trained with an attention speller ships as plain ctc_rnn, same CTC output."""
    recipe = SPEECH_RECIPES / "digits.yaml"
    config = load_config(recipe)
    config["model"] = {**config["model"], "hidden_size": 16, "num_layers": 1, "speller_size": 8}
    joint = Pipeline.from_config(config).eval()
    run = joint.save(tmp_path / "joint.safetensors")
    out = tmp_path / "shipped.safetensors"
    done = make_bundle(run, recipe, out, "--drop-speller")
    assert done.returncode == 0, done.stderr
    assert any(k.startswith("model.speller.") for k in load_file(run))
    assert not any(k.startswith("model.speller.") for k in load_file(out))
    shipped = Pipeline.load(out)
    assert shipped.config["model"]["speller_size"] == 0 and not shipped.model.joint
    x, lengths = torch.randn(2, 50, joint.features.output_size), torch.tensor([50, 31])
    with torch.no_grad():
        torch.testing.assert_close(shipped.model(x, lengths)[0], joint.model(x, lengths)[0])
