"""Fault tolerance for real: SIGKILL a training process mid-epoch, resume, same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_seqpipe
from seqpipe.config import load_config
from seqpipe.data.tones import write_tone_dataset
from seqpipe.training.checkpoint import list_checkpoints
from seqpipe.training.run import fit

REPO = Path(__file__).resolve().parents[1]
ENV = {"OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.mark.slow  # subprocesses: each pays torch's import
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    """Only the killed run is a subprocess (a real SIGKILL); the others run in-process."""
    tones = write_tone_dataset(tmp_path / "tones", {"train": 4, "valid": 2})
    args = [
        "train",
        str(REPO / "seqpipe/recipes/tiny.yaml"),
        "--set", f"data.train={tones['train']}",
        "--set", f"data.valid={tones['valid']}",
        "--set", "train.epochs=3",
        "--set", "train.checkpoint_every=2",
        "--set", "train.log_every=1",
        "--set", "model.dropout=0.3",  # the RNG state must be restored too
        "--set", "model.input_dropout=0.1",
        "--device", "cpu",
    ]  # fmt: skip
    overrides = [a for a in args[2:-2] if a != "--set"]
    fit(load_config(args[1], overrides), tmp_path / "whole", device="cpu")

    # 3 batches per epoch; killed after step 5, so the newest checkpoint is step 4:
    # epoch 2, one batch in (resume must continue mid-epoch)
    killed = run_seqpipe(
        *args, "--out", str(tmp_path / "killed"), env={**ENV, "SEQPIPE_DEBUG_KILL_AT_STEP": "5"}
    )
    assert killed.returncode == -9  # SIGKILL, no chance to clean up
    newest = list_checkpoints(tmp_path / "killed")[-1]
    position = torch.load(newest, weights_only=True)["position"]
    assert (position["step"], position["epoch"], position["batch"]) == (4, 1, 1)

    from rich.console import Console

    console = Console(record=True, width=200)
    fit(
        load_config(args[1], overrides),
        tmp_path / "killed",
        device="cpu",
        resume=True,
        console=console,
    )
    assert f"resuming from {newest}" in console.export_text()

    final = [list_checkpoints(tmp_path / run)[-1] for run in ("whole", "killed")]
    assert final[0].name == final[1].name == "step-00000009.pt"
    a, b = (torch.load(p, weights_only=True) for p in final)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key  # bitwise on CPU
    best = [load_file(tmp_path / run / "model.safetensors") for run in ("whole", "killed")]
    assert all(torch.equal(best[0][k], best[1][k]) for k in best[0])

    # the redone steps are logged once, and the logs agree
    logs = [
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("whole", "killed")
    ]
    steps = [r["step"] for r in logs[1] if r["split"] == "train"]
    assert steps == sorted(set(steps)) == list(range(1, 10))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "items_per_s"} for r in rows]  # noqa: E731
    assert strip(logs[0]) == strip(logs[1])
