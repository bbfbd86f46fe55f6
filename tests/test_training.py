"""The training engine in-process: batching, options, schedule, NaN handling, checkpoints, TBPTT."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from seqpipe.config import ConfigError, load_config
from seqpipe.data.batching import BucketBatchSampler
from seqpipe.data.tones import write_tone_dataset
from seqpipe.errors import SeqpipeError
from seqpipe.pipeline import Pipeline
from seqpipe.tasks.base import Task
from seqpipe.training import checkpoint as ckpt
from seqpipe.training.options import TrainOptions, train_options
from seqpipe.training.run import fit
from seqpipe.training.trainer import Trainer, TrainingError

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[str, Path]:
    return write_tone_dataset(tmp_path_factory.mktemp("tones"), {"train": 4, "valid": 2})


def tiny_config(tones, *overrides: str) -> dict:
    return load_config(
        REPO / "seqpipe/recipes/tiny.yaml",
        [f"data.train={tones['train']}", f"data.valid={tones['valid']}", *overrides],
    )


# -- batching ----------------------------------------------------------------------


def test_buckets_cover_every_example_once_with_similar_lengths():
    lengths = [(i * 37) % 101 + 1 for i in range(200)]
    sampler = BucketBatchSampler(lengths, 8, shuffle=True, seed=3, pool=5)
    sampler.set_epoch(0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(200))
    # within a pool of 5 batches lengths are sorted, so a batch's spread is far below random
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 30  # random batches of 8 from 1..101 spread ~80
    sampler.set_epoch(0)
    assert list(sampler) == batches  # a pure function of (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0, start=3)
    assert list(sampler) == batches[3:]  # resume mid-epoch


def test_buckets_split_across_ranks_in_equal_counts():
    lengths = list(range(1, 52))
    ranks = [BucketBatchSampler(lengths, 4, seed=1, rank=r, world_size=3) for r in range(3)]
    per_rank = [list(s) for s in ranks]
    assert len({len(b) for b in per_rank}) == 1  # equal steps, or DDP would hang
    seen = {i for batches in per_rank for b in batches for i in b}
    assert seen == set(range(51))


# -- options and schedule ------------------------------------------------------------


def test_train_section_errors_name_file_and_key():
    with pytest.raises(ConfigError, match=r"^r.yaml: train.lr: expected a positive number"):
        train_options({"_source": "r.yaml", "train": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"train.epoch: unknown option \(expected one of: epochs"):
        train_options({"_source": "r.yaml", "train": {"epoch": 3}})


def test_warmup_then_cosine_and_plateau():
    from seqpipe.training.optim import Schedule

    param = nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.AdamW([param], lr=1.0)
    schedule = Schedule(opt, TrainOptions(warmup_steps=3, min_lr_ratio=0.1), 13, False)
    lrs = []
    for _ in range(13):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.after_step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 9 / 10)))
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))

    opt = torch.optim.AdamW([param], lr=1.0)
    plateau = Schedule(opt, TrainOptions(schedule="plateau", plateau_patience=0), 10, True)
    plateau.after_epoch(0.5)
    plateau.after_epoch(0.4)  # worse accuracy -> halve
    opt.step()
    plateau.after_step()  # the per-step warm-up must not undo the reduction
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)


# -- non-finite losses -------------------------------------------------------------------


def poisoned_trainer(tones, tmp_path, *overrides, at_call=3):
    """A real tiny run whose loss turns NaN on the ``at_call``-th training batch."""
    config = tiny_config(tones, *overrides)
    torch.manual_seed(0)
    pipeline = Pipeline.from_config(config)
    task = pipeline.task
    real_loss, calls, before = task.loss, [0], {}

    def loss(p, batch):
        value, count = real_loss(p, batch)
        calls[0] += 1
        if calls[0] == at_call:
            before.update({k: v.clone() for k, v in pipeline.state_dict().items()})
            return value * float("nan"), count
        return value, count

    task.loss = loss
    data = {s: task.load_data(config["data"][s], train=s == "train") for s in ("train", "valid")}
    trainer = Trainer(
        pipeline,
        train_options(config),
        tmp_path,
        train_data=data["train"],
        valid_data=data["valid"],
        device=torch.device("cpu"),
    )
    return trainer, before


def test_nan_loss_stops_naming_the_step_and_keeps_weights(tones, tmp_path):
    trainer, before = poisoned_trainer(tones, tmp_path, "train.checkpoint_every=1")
    with pytest.raises(TrainingError, match=r"loss is nan at step 3 \(epoch 1, batch 3\)"):
        trainer.fit()
    after = trainer.pipeline.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no update from the bad batch
    path, state = ckpt.load_latest(tmp_path)
    assert path.name == "step-00000002.pt"
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_nan_loss_skipped_when_configured(tones, tmp_path):
    trainer, _ = poisoned_trainer(tones, tmp_path, "train.skip_nonfinite=true", "train.epochs=1")
    summary = trainer.fit()
    assert summary["skipped_batches"] == 1
    assert summary["steps"] == trainer.steps_per_epoch - 1
    assert all(torch.isfinite(p).all() for p in trainer.pipeline.parameters())


# -- checkpoints ---------------------------------------------------------------------------


def test_corrupt_checkpoint_is_reported_and_the_previous_one_used(tones, tmp_path, capsys):
    config = tiny_config(tones, "train.epochs=2", "train.checkpoint_every=2")
    fit(config, tmp_path)
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    assert len(names) == 2  # keep_checkpoints: 2
    newest = ckpt.list_checkpoints(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated mid-write by a crash
    path, state = ckpt.load_latest(tmp_path)
    assert path.name == names[0]
    err = capsys.readouterr().err
    assert f"{newest.name}: checkpoint is corrupt or truncated" in err
    assert f"falling back to {names[0]}" in err
    assert newest.with_suffix(".pt.corrupt").exists() and not newest.exists()
    # resuming from the older checkpoint completes the run
    summary = fit(
        tiny_config(tones, "train.epochs=2", "train.checkpoint_every=2"), tmp_path, resume=True
    )
    assert summary["epochs"] == 2
    assert (tmp_path / "model.safetensors").exists()


def test_refuses_to_overwrite_a_run_without_resume(tones, tmp_path):
    fit(tiny_config(tones, "train.epochs=1"), tmp_path)
    with pytest.raises(SeqpipeError, match="already holds checkpoints.*--resume"):
        fit(tiny_config(tones, "train.epochs=1"), tmp_path)


def test_checkpoint_loads_with_weights_only(tones, tmp_path):
    config = tiny_config(tones, "train.epochs=1", "train.schedule=plateau", "train.num_workers=1")
    fit(config, tmp_path)  # with a DataLoader worker process, as on a GPU machine
    path = ckpt.list_checkpoints(tmp_path)[-1]
    state = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert state["position"]["epoch"] == 1 and state["position"]["batch"] == 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "valid"} == {r["split"] for r in rows}
    assert all("grad_norm" in r and "lr" in r for r in rows if r["split"] == "train")


# -- truncated BPTT ------------------------------------------------------------------------


class Sum(Task):
    """Toy regression task over long sequences: predict the running sum, chunk by chunk."""

    supports_tbptt = True

    def length(self, example):
        return len(example)

    def collate(self, examples):
        x = torch.stack(examples)[..., None]
        return {"x": x, "y": x.cumsum(1), "lengths": torch.full((len(examples),), x.shape[1])}

    def loss(self, pipeline, batch):
        out, _ = pipeline.model(batch["x"])
        return nn.functional.mse_loss(pipeline.model.head(out), batch["y"]), len(batch["x"])

    def chunks(self, batch, size):
        return [
            {k: batch[k][:, i : i + size] for k in ("x", "y")}
            for i in range(0, batch["x"].shape[1], size)
        ]

    def chunk_loss(self, pipeline, chunk, state):
        out, state = pipeline.model(chunk["x"], state)
        return nn.functional.mse_loss(pipeline.model.head(out), chunk["y"]), len(chunk["x"]), state

    def evaluate(self, pipeline, batches):
        total = count = 0.0
        for batch in batches:
            out, _ = pipeline.model(batch["x"])
            total += float(nn.functional.mse_loss(pipeline.model.head(out), batch["y"])) * len(
                batch["x"]
            )
            count += len(batch["x"])
        return {"loss": total / count}


class GRU(nn.GRU):
    def __init__(self):
        super().__init__(1, 8, batch_first=True)
        self.head = nn.Linear(8, 1)


def test_truncated_bptt_carries_detached_state(tmp_path):
    torch.manual_seed(0)
    data = [torch.randn(40) * 0.1 for _ in range(8)]
    pipeline = Pipeline({"task": {"name": "sum"}}, Sum(), nn.Identity(), GRU())
    trainer = Trainer(
        pipeline,
        TrainOptions(epochs=2, batch_size=4, tbptt=10, patience=0),
        tmp_path,
        train_data=data,
        valid_data=data[:4],
        device=torch.device("cpu"),
    )
    summary = trainer.fit()  # a non-detached state would fail on the second chunk's backward
    assert summary["steps"] == 2 * 2 * 4  # epochs x batches x chunks of 10 frames


def test_tbptt_rejected_for_tasks_without_it(tones):
    config = tiny_config(tones, "train.tbptt=50")
    pipeline = Pipeline.from_config(config)
    with pytest.raises(TrainingError, match="train.tbptt: task 'Classify' does not support"):
        Trainer(
            pipeline,
            train_options(config),
            "unused",
            train_data=[],
            valid_data=[],
            device=torch.device("cpu"),
        )


# -- the tiny recipe, end to end through the CLI ----------------------------------------------


def test_tiny_recipe_trains_end_to_end(tmp_path):
    import time

    from click.testing import CliRunner

    from seqpipe.cli import build_cli

    tones = write_tone_dataset(tmp_path / "tones")  # the recipe's own size: 8 + 3 per label
    run = tmp_path / "run"
    cli, runner = build_cli(), CliRunner()
    sets = ["--set", f"data.train={tones['train']}", "--set", f"data.valid={tones['valid']}"]
    start = time.perf_counter()
    result = runner.invoke(
        cli, ["train", str(REPO / "seqpipe/recipes/tiny.yaml"), *sets, "--out", str(run)]
    )
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - start < 60
    for name in ("model.safetensors", "metrics.jsonl", "curves.png", "config.yaml", "summary.json"):
        assert (run / name).stat().st_size > 0, name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"]["accuracy"] >= 0.85  # chance is 1/3: it learned

    result = runner.invoke(
        cli, ["evaluate", str(run / "model.safetensors"), str(tones["valid"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] == pytest.approx(summary["best"]["accuracy"])

    (run / "curves.png").unlink()
    result = runner.invoke(cli, ["plot", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_l1_penalty_shrinks_weights(tmp_path):
    data = [torch.randn(12) * 0.1 for _ in range(8)]

    def weight_l1(l1: float) -> float:
        torch.manual_seed(0)
        pipeline = Pipeline({"task": {"name": "sum"}}, Sum(), nn.Identity(), GRU())
        options = TrainOptions(
            epochs=5,
            batch_size=4,
            lr=0.03,
            l1=l1,
            weight_decay=0.0,
            patience=0,
            schedule="constant",
        )
        Trainer(
            pipeline,
            options,
            tmp_path / str(l1),
            train_data=data,
            valid_data=data[:4],
            device=torch.device("cpu"),
        ).fit()
        return float(sum(p.detach().abs().sum() for p in pipeline.parameters() if p.dim() >= 2))

    assert weight_l1(1.0) < 0.5 * weight_l1(0.0)  # AdamW steps ~lr per weight toward 0


def test_tensorboard_events_when_installed(tones, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional 'tensorboard' extra is not installed")
    fit(tiny_config(tones, "train.epochs=1"), tmp_path)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_classify_manifest_errors_name_the_file_and_entry(tones, tmp_path):
    from seqpipe.tasks.classify import Classify

    task = Classify(labels=["low", "mid", "high"], sample_rate=8000)
    good = next(line for line in Path(tones["train"]).read_text().splitlines() if line.strip())
    audio = str(Path(tones["train"]).parent / json.loads(good)["audio"])
    bad_label = tmp_path / "bad_label.jsonl"
    bad_label.write_text(json.dumps({"audio": audio, "label": "ultra"}) + "\n")
    with pytest.raises(SeqpipeError, match=rf"{bad_label}: entry 1: label 'ultra' is not one of"):
        task.load_data(bad_label, train=False)
    no_label = tmp_path / "no_label.jsonl"
    no_label.write_text(json.dumps({"audio": audio}) + "\n")
    with pytest.raises(
        SeqpipeError, match=rf"{no_label}:1: expected an object with 'audio' and 'label'"
    ):
        task.load_data(no_label, train=False)


def test_resume_with_a_changed_recipe_says_what_changed(tones, tmp_path):
    import io

    from rich.console import Console

    fit(tiny_config(tones, "train.epochs=1"), tmp_path)
    out = io.StringIO()
    console = Console(file=out, width=400)
    fit(
        tiny_config(tones, "train.epochs=2", "model.dropout=0.2"),
        tmp_path,
        resume=True,
        console=console,
    )
    text = out.getvalue()
    assert "resuming with a changed recipe:" in text
    assert "model.dropout: 0.0 -> 0.2" in text and "train.epochs: 1 -> 2" in text


def test_recipe_changes_take_a_yaml_list_for_the_tuple_it_validates_to():
    from seqpipe.training.run import recipe_changes

    old = {"model": {"train_lookahead": [10, 25], "dropout": 0.1}}
    assert recipe_changes(old, {"model": {"train_lookahead": (10, 25), "dropout": 0.2}}) == [
        "model.dropout: 0.1 -> 0.2"
    ]
    assert recipe_changes(old, {"model": {"train_lookahead": (10, 20), "dropout": 0.1}}) == [
        "model.train_lookahead: [10, 25] -> (10, 20)"
    ]


def test_init_from_starts_from_a_bundles_weights(tones, tmp_path):
    from safetensors.torch import load_file

    fit(tiny_config(tones, "train.epochs=1"), tmp_path / "first")
    first = tmp_path / "first" / "model.safetensors"
    # a learning rate too small to move the weights: the run ends where it started
    still = ["train.epochs=1", "train.lr=1e-12", "train.weight_decay=0", "seed=7"]
    fit(tiny_config(tones, *still, f"train.init_from={first}"), tmp_path / "tuned")
    fit(tiny_config(tones, *still), tmp_path / "fresh")
    start, tuned, fresh = (
        load_file(str(tmp_path / run / "model.safetensors")) for run in ("first", "tuned", "fresh")
    )
    assert all(torch.allclose(start[k], tuned[k], atol=1e-6) for k in start)
    assert not all(torch.allclose(start[k], fresh[k], atol=1e-6) for k in start)
    wider = tiny_config(tones, "model.hidden_size=7", f"train.init_from={first}")
    with pytest.raises(SeqpipeError, match=r"first/model.safetensors: train.init_from: weights"):
        fit(wider, tmp_path / "wider")


def test_dry_run_builds_one_batch_and_its_loss_without_writing(tones, tmp_path, monkeypatch):
    from seqpipe.training.run import dry_run

    monkeypatch.chdir(tmp_path)
    seen = dry_run(tiny_config(tones), batch_size=3)
    assert seen["components"]["model"] == "classifier" and seen["cells"] == ["gru"]
    assert seen["examples"] == {"train": 12, "valid": 6}
    assert seen["batch"]["lengths"] == (3,) and seen["items"] == 3
    assert seen["loss"] > 0
    assert list(tmp_path.iterdir()) == []  # no run directory, no checkpoint
