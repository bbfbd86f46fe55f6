"""The ``train:`` section of a recipe, typed and validated like every component's options."""

from dataclasses import asdict, dataclass
from typing import Any, Literal

from seqpipe.config import validate_options
from seqpipe.types import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability


@dataclass
class TrainOptions:
    """Every knob of the trainer, with the defaults a small recurrent model trains well with.

    The constructor's type hints are the schema: ``validate_options`` turns a bad value
    into ``recipe.yaml: train.lr: expected a positive number, got 'fast'``.
    """

    epochs: PositiveInt = 10
    max_steps: PositiveInt | None = None  # stop after this many optimiser steps in total
    batch_size: PositiveInt = 16
    eval_batch_size: PositiveInt | None = None
    bucket_pool: PositiveInt = 50  # batches per length-sorting pool (see data/batching.py)
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.01  # AdamW's decoupled L2
    l1: NonNegativeFloat = 0.0  # L1 penalty on the weights, added to the loss
    grad_clip: PositiveFloat | None = 1.0  # max global gradient norm; null = no clipping
    schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: Probability = 0.0  # cosine floor as a fraction of lr
    plateau_factor: Probability = 0.5
    plateau_patience: NonNegativeInt = 1
    patience: NonNegativeInt = 5  # early stopping: epochs without improvement; 0 = off
    tbptt: PositiveInt | None = None  # truncated BPTT chunk length (task must support it)
    checkpoint_every: NonNegativeInt = 0  # also checkpoint every N steps; 0 = per epoch only
    keep_checkpoints: PositiveInt = 2
    skip_nonfinite: bool = False  # skip a NaN/inf batch instead of stopping
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto = bf16 autocast on CUDA
    num_workers: NonNegativeInt | None = None  # DataLoader workers; null = 0 on CPU, 4 on CUDA
    log_every: PositiveInt = 10  # steps between metrics-log lines
    init_from: str | None = None  # a bundle (name or path) whose weights start the run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_options(config: dict[str, Any]) -> TrainOptions:
    """Validate ``config['train']`` (missing = all defaults) with errors naming the file and key."""
    source = config.get("_source", "<config>")
    section = config.get("train") or {}
    if not isinstance(section, dict):
        from seqpipe.config import ConfigError

        raise ConfigError(f"{source}: train: expected a mapping of options, got {section!r}")
    return TrainOptions(**validate_options(TrainOptions, section, where="train", source=source))
