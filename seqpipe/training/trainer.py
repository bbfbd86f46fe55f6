"""The one training loop every task uses: the task supplies data, loss and metrics.

Per optimiser step: forward under autocast (bf16 on CUDA), optional L1 penalty, a
finiteness check agreed by all ranks, backward (DDP all-reduces gradients), clipping
by global norm (the norm is logged), AdamW step, schedule step. Per epoch: validation
on the task's metrics, best-model bundle, early stopping, checkpoint. With
``train.tbptt`` each batch is cut into chunks by the task and the recurrent state is
carried, detached, from chunk to chunk (one optimiser step per chunk).
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from seqpipe.data.batching import BucketBatchSampler
from seqpipe.errors import SeqpipeError
from seqpipe.pipeline import Pipeline
from seqpipe.training import checkpoint as ckpt
from seqpipe.training import distributed as dist_utils
from seqpipe.training.evaluation import autocast, evaluate, loader_args, to_device
from seqpipe.training.metrics_log import MetricsLog
from seqpipe.training.optim import Schedule, build_optimizer, current_lr, l1_penalty
from seqpipe.training.options import TrainOptions
from seqpipe.training.progress import ProgressBar

KILL_ENV = "SEQPIPE_DEBUG_KILL_AT_STEP"  # tests: SIGKILL this process after step N
HASH_ENV = "SEQPIPE_DEBUG_STATE_HASH"  # tests: each rank writes a hash of its weights here


class TrainingError(SeqpipeError):
    pass


@dataclass
class Position:
    """Where training stands; saved in every checkpoint so resume continues mid-epoch."""

    epoch: int = 0  # current epoch, from 0
    batch: int = 0  # batches of the current epoch already trained on
    step: int = 0  # optimiser steps so far
    best: float | None = None  # best primary validation metric so far
    best_epoch: int = -1
    bad_epochs: int = 0  # epochs since the best one (early stopping)
    loss_sum: float = 0.0  # this epoch's training loss x items so far
    items: int = 0
    skipped: int = 0  # non-finite batches skipped (train.skip_nonfinite)
    done: bool = False


def detach_state(state: Any) -> Any:
    """Cut the graph between TBPTT chunks while keeping the values."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(detach_state(v) for v in state)
    return state


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and bytes: equal hashes, bitwise-equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def crossed(last: int, step: int, every: int) -> bool:
    """Has ``step`` reached a multiple of ``every`` since ``last``? (TBPTT steps jump by chunks.)"""
    return step // every > last // every


class Trainer:
    def __init__(
        self,
        pipeline: Pipeline,
        options: TrainOptions,
        run_dir: str | os.PathLike,
        *,
        train_data: list,
        valid_data: list,
        device: torch.device,
        dist: dist_utils.DistInfo | None = None,
        seed: int = 0,
        console=None,
    ):
        self.pipeline = pipeline.to(device)
        self.task = pipeline.task
        self.options = options
        self.run_dir = Path(run_dir)
        self.device = device
        self.dist = dist or dist_utils.DistInfo()
        self.main = self.dist.is_main
        self.console = console
        self.valid_data = valid_data
        self.train_data = train_data
        # bf16 needs no loss scaling; on CPU it is opt-in (slower there, but it works)
        self.bf16 = options.precision == "bf16" or (
            options.precision == "auto" and device.type == "cuda"
        )
        if options.tbptt and not getattr(self.task, "supports_tbptt", False):
            raise TrainingError(
                f"train.tbptt: task '{type(self.task).__name__}' does not support truncated BPTT"
            )
        self.sampler = BucketBatchSampler(
            [self.task.length(x) for x in train_data],
            options.batch_size,
            shuffle=True,
            seed=seed,
            pool=options.bucket_pool,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.loader = DataLoader(
            train_data,
            batch_sampler=self.sampler,
            **loader_args(self.task, device, options.num_workers),
        )
        self.steps_per_epoch = len(self.sampler)
        if self.steps_per_epoch == 0:
            raise TrainingError("data.train: no training examples")
        total = options.epochs * self.steps_per_epoch
        self.total_steps = min(total, options.max_steps or total)
        self.params = [p for p in self.pipeline.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.pipeline, options)
        self.schedule = Schedule(
            self.optimizer, options, self.total_steps, self.task.higher_is_better
        )
        model = dist_utils.wrap_model(self.pipeline.model, self.dist, device)
        self.train_view = (
            pipeline
            if model is self.pipeline.model
            else Pipeline(
                pipeline.config, pipeline.task, pipeline.features, model, pipeline.decoder
            )
        )
        self.pos = Position()
        self.kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
        self.last_saved_step = 0
        self.last_logged_step = 0

    # -- state ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.pipeline.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "rng": ckpt.rng_state(),
            "position": asdict(self.pos),
            "progress": {"steps_per_epoch": self.steps_per_epoch},
        }

    def restore(self, state: dict[str, Any]) -> None:
        try:
            self.pipeline.load_state_dict(state["model"])
        except RuntimeError as exc:
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            detail = lines[1] if len(lines) > 1 else lines[0]  # line 0 is a generic header
            raise TrainingError(
                f"{self.run_dir}: the checkpoint does not fit this config's model ({detail}); "
                f"resume with the run's own config.yaml or start a new --out"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.pos = Position(**state["position"])
        self.last_saved_step = self.last_logged_step = self.pos.step
        saved = state["progress"].get("steps_per_epoch")
        if self.pos.batch and saved != self.steps_per_epoch:
            self.say(
                f"[yellow]warning: the checkpoint's epoch had {saved} batches, this one has "
                f"{self.steps_per_epoch} (data, batch size or ranks changed); the rest of "
                f"epoch {self.pos.epoch + 1} will not match the interrupted run[/]"
            )

    def save_checkpoint(self) -> None:
        if self.main:
            ckpt.save_checkpoint(
                self.run_dir, self.state(), self.pos.step, keep=self.options.keep_checkpoints
            )
        self.last_saved_step = self.pos.step
        dist_utils.barrier(self.dist)

    # -- one step ------------------------------------------------------------------

    def autocast(self):
        return autocast(self.device, self.bf16)

    def train_batch(self, batch: dict[str, Any]) -> None:
        batch = to_device(batch, self.device, non_blocking=self.device.type == "cuda")
        if not self.options.tbptt:
            with self.autocast():
                loss, count = self.task.loss(self.train_view, batch)
            self.optimise(loss, count)
            return
        state = None
        for chunk in self.task.chunks(batch, self.options.tbptt):
            with self.autocast():
                loss, count, state = self.task.chunk_loss(self.train_view, chunk, state)
            self.optimise(loss, count)
            state = detach_state(state)

    def optimise(self, loss: torch.Tensor, count: int) -> None:
        total = loss + self.options.l1 * l1_penalty(self.pipeline) if self.options.l1 else loss
        value = float(total.detach().float())
        if dist_utils.any_true(self.dist, not math.isfinite(value), self.device):
            return self.nonfinite("loss", value)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        clip = self.options.grad_clip or float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip))
        if not math.isfinite(norm):  # the norm is all-reduced already, so ranks agree
            self.optimizer.zero_grad(set_to_none=True)
            return self.nonfinite("gradient norm", norm)
        self.optimizer.step()
        self.schedule.after_step()
        self.pos.step += 1
        self.pos.loss_sum += float(loss.detach().float()) * count
        self.pos.items += count
        self.window["loss"] += float(loss.detach().float()) * count
        self.window["items"] += count
        self.window["grad_norm"] = norm

    def nonfinite(self, what: str, value: float) -> None:
        where = f"step {self.pos.step + 1} (epoch {self.pos.epoch + 1}, batch {self.pos.batch + 1})"
        if self.options.skip_nonfinite:
            self.pos.skipped += 1
            self.say(f"[yellow]skipped batch: {what} is {value} at {where}[/]")
            return
        raise TrainingError(
            f"{what} is {value} at {where}; stopped before updating the weights "
            f"(checkpoints in {self.run_dir / 'checkpoints'} are intact). Lower train.lr, "
            f"check the data, or set train.skip_nonfinite: true to skip such batches"
        )

    # -- evaluation ----------------------------------------------------------------

    def evaluate(self, examples: list) -> dict[str, float]:
        metrics = evaluate(
            self.pipeline,
            examples,
            batch_size=self.options.eval_batch_size or self.options.batch_size,
            bf16=self.bf16,
            num_workers=self.options.num_workers,
        )
        name = self.task.primary_metric
        if name not in metrics:
            raise TrainingError(
                f"task '{type(self.task).__name__}': evaluate() returned no '{name}' "
                f"(its primary_metric); got {', '.join(metrics) or 'nothing'}"
            )
        return dist_utils.broadcast_floats(
            self.dist, {k: float(v) for k, v in metrics.items()}, self.device
        )

    def improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.pos.best is None:
            return True
        return value > self.pos.best if self.task.higher_is_better else value < self.pos.best

    # -- the loop ------------------------------------------------------------------

    def say(self, message: str) -> None:
        if self.main and self.console is not None:
            self.console.print(message)

    def fit(self, resume_state: dict[str, Any] | None = None) -> dict[str, Any]:
        if resume_state is not None:
            self.restore(resume_state)
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        log = (
            MetricsLog(self.run_dir, resume_step=self.pos.step if resume_state else None)
            if self.main
            else None
        )
        bar = ProgressBar(self.console, enabled=self.main)
        self.window = {"loss": 0.0, "items": 0, "grad_norm": 0.0, "time": time.perf_counter()}
        primary = self.task.primary_metric
        try:
            with bar:
                while not self.pos.done and self.pos.epoch < self.options.epochs:
                    self.run_epoch(bar, log)
                    metrics = self.evaluate(self.valid_data)
                    self.end_epoch(metrics, log)
                    bar.update({"metric": f"{primary} {metrics[primary]:.4f}"})
            if self.pos.step != self.last_saved_step:
                self.save_checkpoint()
        finally:
            if log is not None:
                log.close()
        if os.environ.get(HASH_ENV):
            folder = Path(os.environ[HASH_ENV])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"rank{self.dist.rank}.sha256").write_text(
                state_hash(self.pipeline.state_dict())
            )
        return {
            "best": {primary: self.pos.best, "epoch": self.pos.best_epoch + 1},
            "epochs": self.pos.epoch,
            "steps": self.pos.step,
            "skipped_batches": self.pos.skipped,
        }

    def run_epoch(self, bar: ProgressBar, log: MetricsLog | None) -> None:
        self.sampler.set_epoch(self.pos.epoch, start=self.pos.batch)
        self.pipeline.train()
        bar.start_epoch(
            self.pos.epoch + 1, self.options.epochs, self.steps_per_epoch, self.pos.batch
        )
        for batch in self.loader:
            if self.options.max_steps and self.pos.step >= self.options.max_steps:
                self.pos.done = True
                break
            self.train_batch(batch)
            self.pos.batch += 1
            window = self.window
            if (
                crossed(self.last_logged_step, self.pos.step, self.options.log_every)
                and window["items"]
            ):
                self.last_logged_step = self.pos.step
                now = time.perf_counter()
                values = {
                    "loss": window["loss"] / window["items"],
                    "lr": current_lr(self.optimizer),
                    "grad_norm": window["grad_norm"],
                    "items_per_s": window["items"] * self.dist.world_size / (now - window["time"]),
                }
                if log is not None:
                    log.log("train", self.pos.step, self.pos.epoch + 1, values)
                bar.update(values)
                self.window = {"loss": 0.0, "items": 0, "grad_norm": 0.0, "time": now}
            bar.advance()
            if self.options.checkpoint_every and crossed(
                self.last_saved_step, self.pos.step, self.options.checkpoint_every
            ):
                self.save_checkpoint()
            if self.kill_at and self.pos.step >= self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    def end_epoch(self, metrics: dict[str, float], log: MetricsLog | None) -> None:
        value = metrics[self.task.primary_metric]
        self.last_train_loss = self.pos.loss_sum / max(1, self.pos.items)
        if self.improved(value):
            self.pos.best, self.pos.best_epoch, self.pos.bad_epochs = value, self.pos.epoch, 0
            if self.main:
                self.pipeline.save(
                    self.run_dir / "model.safetensors",
                    extra={"metrics": metrics, "epoch": self.pos.epoch + 1, "step": self.pos.step},
                )
        else:
            self.pos.bad_epochs += 1
        self.schedule.after_epoch(value)
        if log is not None:
            log.log(
                "valid",
                self.pos.step,
                self.pos.epoch + 1,
                {**metrics, "train_loss": self.last_train_loss},
            )
        self.say(  # the epoch's line first, then what it decided
            f"epoch {self.pos.epoch + 1}: train loss {self.last_train_loss:.4f}  "
            + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            + ("  [green]best[/]" if self.pos.bad_epochs == 0 else "")
        )
        if self.options.patience and self.pos.bad_epochs >= self.options.patience:
            self.say(
                f"early stopping: no better {self.task.primary_metric} for {self.pos.bad_epochs} epochs"
            )
            self.pos.done = True
        self.pos.epoch += 1
        self.pos.batch = 0
        self.pos.loss_sum, self.pos.items = 0.0, 0
        self.save_checkpoint()
