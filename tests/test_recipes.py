"""Shipped recipes: found by name from any folder, making their own data; recipe-relative
data paths; the training log's event order."""

import yaml

from conftest import run_seqpipe
from seqpipe.data.tones import write_tone_dataset
from seqpipe.recipes import RECIPES, find_recipe

FAST = ["--set", "train.epochs=3", "--set", "train.patience=1", "--device", "cpu"]


def test_train_tiny_runs_from_any_folder_and_logs_early_stopping_last(tmp_path):
    listed = run_seqpipe("recipes", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.startswith("tiny\t")
    # lr 1e-12: nothing improves after epoch 1, so patience 1 stops after epoch 2
    result = run_seqpipe(
        "train", "tiny", "--out", "r", *FAST, "--set", "train.lr=1e-12", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "model.safetensors").exists()
    assert (tmp_path / "r" / "data" / "train.jsonl").exists()  # data: {generate: tones}
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    epochs = [i for i, line in enumerate(lines) if line.startswith("epoch ")]
    stop = next(i for i, line in enumerate(lines) if line.startswith("early stopping"))
    assert len(epochs) == 2 and epochs[-1] < stop


def test_data_paths_resolve_beside_the_recipe_file(tmp_path):
    folder = tmp_path / "project"
    write_tone_dataset(folder / "tones", {"train": 2, "valid": 1})
    recipe = yaml.safe_load((RECIPES / "tiny.yaml").read_text())
    recipe["data"] = {"train": "tones/train.jsonl", "valid": "tones/valid.jsonl"}
    (folder / "mine.yaml").write_text(yaml.safe_dump(recipe))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_seqpipe("train", str(folder / "mine.yaml"), "--out", "r", *FAST, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "6 train / 3 valid examples" in result.stderr
    assert not (elsewhere / "r" / "data").exists()  # nothing generated


def test_an_unknown_recipe_name_lists_the_shipped_ones(tmp_path):
    result = run_seqpipe("train", "tinyy", cwd=tmp_path)
    assert result.returncode == 1
    assert "tinyy: no such recipe file or shipped recipe (shipped: tiny)" in result.stderr
    assert find_recipe(str(RECIPES / "tiny.yaml")) == RECIPES / "tiny.yaml"
