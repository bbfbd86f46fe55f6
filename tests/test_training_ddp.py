"""DistributedDataParallel on CPU: two gloo ranks under torchrun end with identical weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqpipe.data.tones import write_tone_dataset
from seqpipe.training.checkpoint import list_checkpoints
from seqpipe.training.trainer import state_hash

REPO = Path(__file__).resolve().parents[1]


def torchrun(*args: str, hashes: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", SEQPIPE_DEBUG_STATE_HASH=str(hashes))
    env.pop("SEQPIPE_PLUGINS", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    return subprocess.run(
        [*command, "-m", "seqpipe", "train", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow  # subprocesses: each pays torch's import
def test_two_gloo_ranks_train_identical_weights_and_resume(tmp_path):
    tones = write_tone_dataset(tmp_path / "tones", {"train": 4, "valid": 2})
    run = tmp_path / "run"

    def args(epochs: int) -> list[str]:
        return [
            str(REPO / "configs/tiny.yaml"),
            "--set", f"data.train={tones['train']}",
            "--set", f"data.valid={tones['valid']}",
            "--set", f"train.epochs={epochs}",
            "--set", "model.dropout=0.2",  # ranks draw different masks; DDP still syncs gradients
            "--device", "cpu",
            "--out", str(run),
        ]  # fmt: skip

    first = torchrun(*args(1), hashes=tmp_path / "h1")
    assert first.returncode == 0, first.stderr[-3000:]
    hashes = [(tmp_path / "h1" / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1]
    # 12 examples, batch 4 -> 3 batches split over 2 ranks (padded to 4): 2 steps each
    checkpoint = torch.load(list_checkpoints(run)[-1], weights_only=True)
    assert checkpoint["position"]["step"] == 2
    assert (run / "model.safetensors").exists() and (run / "metrics.jsonl").exists()
    assert first.stderr.count("training classifier") == 1  # only rank 0 reports
    assert first.stderr.count("done: best accuracy") == 1

    # resume the same run for a second epoch, still in lock-step
    second = torchrun(*args(2), "--resume", hashes=tmp_path / "h2")

    assert second.returncode == 0, second.stderr[-3000:]
    hashes = [(tmp_path / "h2" / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1]
    checkpoint = torch.load(list_checkpoints(run)[-1], weights_only=True)
    assert checkpoint["position"]["step"] == 4 and checkpoint["position"]["epoch"] == 2
    assert state_hash(checkpoint["model"]) == hashes[0]  # rank 0 saved what both ranks hold
