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
            str(REPO / "seqpipe/recipes/tiny.yaml"),
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


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        {"name": "ctc_rnn", "hidden_size": 8, "num_layers": 1, "channels": 4, "speller_size": 8},
        {"name": "las", "hidden_size": 8, "num_layers": 1, "decoder_hidden_size": 8},
    ],
)
def test_two_gloo_ranks_sync_a_joint_ctc_attention_model(tmp_path, model):
    """The joint loss runs through the model's forward, so DDP syncs the speller and the
    encoder alike (a direct ``forward_joint`` call would leave the ranks drifting apart)."""
    import numpy as np
    import soundfile as sf
    import yaml

    from seqpipe.data.manifest import write_manifest

    rng = np.random.default_rng(0)
    entries = []
    for i, text in enumerate(["one two", "three", "four", "five six", "seven", "eight"]):
        path = tmp_path / f"u{i}.wav"
        sf.write(str(path), (0.1 * rng.standard_normal(3000 + 500 * i)).astype(np.float32), 8000)
        entries.append({"audio": str(path), "text": text, "duration": (3000 + 500 * i) / 8000})
    write_manifest(tmp_path / "m.jsonl", entries)
    recipe = {
        "task": {"name": "speech", "ctc_weight": 0.5},
        "features": {"name": "logmel", "sample_rate": 8000, "n_mels": 16},
        "model": {**model, "dropout": 0.2},
        "data": {"train": str(tmp_path / "m.jsonl"), "valid": str(tmp_path / "m.jsonl")},
        "train": {"epochs": 1, "batch_size": 2, "lr": 0.01},
    }  # fmt: skip
    (tmp_path / "joint.yaml").write_text(yaml.safe_dump(recipe))
    done = torchrun(
        str(tmp_path / "joint.yaml"), "--device", "cpu", "--out", str(tmp_path / "run"),
        hashes=tmp_path / "h",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    hashes = [(tmp_path / "h" / f"rank{r}.sha256").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1]
