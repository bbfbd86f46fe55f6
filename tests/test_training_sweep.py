"""``seqpipe sweep``: every grid point runs, the table is sorted by the validation metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqpipe.data.tones import write_tone_dataset
from seqpipe.errors import SeqpipeError
from seqpipe.training.sweep import parse_grid, sweep

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def test_grid_keys_resolve_and_values_parse():
    grid = parse_grid(["lr=1e-3,3e-4", "hidden_size=8,16", "features.n_mels=8", "dropout=0:0.5"])
    assert grid == {
        "train.lr": [0.001, 0.0003],
        "model.hidden_size": [8, 16],
        "features.n_mels": [8],
        "model.dropout": [("range", 0, 0.5)],
    }
    with pytest.raises(SeqpipeError, match="expected KEY=VALUE"):
        parse_grid(["lr"])


def test_grid_sweep_writes_a_sorted_table(tmp_path):
    tones = write_tone_dataset(tmp_path / "tones", {"train": 4, "valid": 2})
    fixed = [f"data.train={tones['train']}", f"data.valid={tones['valid']}", "train.epochs=2"]
    # lr 1e-6 cannot learn in two epochs; 0.03 can (the tiny recipe's own lr)
    rows = sweep(
        str(REPO / "seqpipe/recipes/tiny.yaml"),
        ["lr=1e-6,0.03"],
        tmp_path / "sweep",
        overrides=fixed,
    )
    assert [r["train.lr"] for r in rows] == [0.03, 1e-6]
    assert rows[0]["accuracy"] >= rows[1]["accuracy"]
    saved = json.loads((tmp_path / "sweep/results.json").read_text())
    assert saved == rows
    table = (tmp_path / "sweep/results.md").read_text().splitlines()
    assert table[0].startswith("| trial | train.lr | accuracy |") and len(table) == 4
    assert (tmp_path / "sweep/trial-000/model.safetensors").exists()


def test_random_search_with_optuna(tmp_path):
    pytest.importorskip("optuna", reason="the optional 'sweep' extra (optuna) is not installed")
    tones = write_tone_dataset(tmp_path / "tones", {"train": 2, "valid": 1})
    fixed = [f"data.train={tones['train']}", f"data.valid={tones['valid']}", "train.epochs=1"]
    rows = sweep(
        str(REPO / "seqpipe/recipes/tiny.yaml"),
        ["lr=1e-4:1e-1", "hidden_size=4,8"],
        tmp_path / "sweep",
        overrides=fixed,
        trials=2,
    )
    assert len(rows) == 2
    assert all(1e-4 <= r["train.lr"] <= 1e-1 and r["model.hidden_size"] in (4, 8) for r in rows)
