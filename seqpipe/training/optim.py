"""AdamW, the learning-rate schedule, and the L1 penalty.

AdamW's weight decay is decoupled L2 regularisation; biases and norm gains are not
decayed (decaying them only hurts). The schedule is either linear warm-up then cosine
decay to ``min_lr_ratio * lr`` (stepped per optimiser step), or reduce-on-plateau
(stepped per epoch on the task's primary validation metric), or constant after warm-up.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seqpipe.training.options import TrainOptions


def build_optimizer(model: nn.Module, options: TrainOptions) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.dim() < 2 else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": options.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=options.lr)


class WarmupCosine:
    """lr multiplier: linear 0->1 over ``warmup`` steps, then cosine 1->``floor`` by ``total``.

    A class (not a lambda) so LambdaLR's state_dict stays plain data.
    """

    def __init__(self, warmup: int, total: int, floor: float, cosine: bool):
        self.warmup, self.total, self.floor, self.cosine = warmup, max(total, 1), floor, cosine

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if not self.cosine:
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


class Schedule:
    """One object for both kinds: ``after_step()`` every optimiser step, ``after_epoch(metric)``."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        options: TrainOptions,
        total_steps: int,
        higher_is_better: bool,
    ):
        self.kind = options.schedule
        self.warmup = WarmupCosine(
            options.warmup_steps, total_steps, options.min_lr_ratio, cosine=self.kind == "cosine"
        )
        self.per_step = torch.optim.lr_scheduler.LambdaLR(optimizer, self.warmup)
        self.plateau = None
        if self.kind == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="max" if higher_is_better else "min",
                factor=options.plateau_factor,
                patience=options.plateau_patience,
            )

    def after_step(self) -> None:
        self.per_step.step()

    def after_epoch(self, metric: float) -> None:
        if self.plateau is not None:
            self.plateau.step(metric)
            # keep LambdaLR's base in step with the plateau's reductions
            self.per_step.base_lrs = [
                g["lr"] / self.warmup(self.per_step.last_epoch)
                for g in self.per_step.optimizer.param_groups
            ]

    def state_dict(self) -> dict:
        state = {"per_step": self.per_step.state_dict()}
        state["per_step"].pop("lr_lambdas", None)
        if self.plateau is not None:
            state["plateau"] = self.plateau.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        per_step = dict(state["per_step"], lr_lambdas=[None] * len(self.per_step.lr_lambdas))
        self.per_step.load_state_dict(per_step)
        if self.plateau is not None and "plateau" in state:
            self.plateau.load_state_dict(state["plateau"])


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of absolute weights (matrices only, like weight decay)."""
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad and p.dim() >= 2)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return optimizer.param_groups[0]["lr"]
