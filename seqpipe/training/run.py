"""One training run from a recipe: run directory, seeding, data, resume, final artefacts.

The run directory ends up holding ``config.yaml`` (the resolved recipe),
``metrics.jsonl``, ``checkpoints/`` (the newest two), ``model.safetensors`` (the best
model as a bundle), ``summary.json`` and ``curves.png``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from seqpipe.atomic import check_writable, write_text
from seqpipe.errors import SeqpipeError


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def data_sources(config: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The recipe's ``data`` with each split's source: ``generate: NAME`` makes the splits
    it lacks with a built-in generator in ``run_dir/data``; a relative path that is not
    there from the working directory is read relative to the recipe file."""
    source = config.get("_source", "<config>")
    data = config.get("data") or {}
    if not isinstance(data, dict):
        raise SeqpipeError(f"{source}: data: expected a mapping with 'train' and 'valid'")
    data = {k: v for k, v in data.items() if v not in (None, "")}
    generator = data.pop("generate", None)
    if generator and not all(split in data for split in ("train", "valid")):
        from seqpipe.data.generators import generate

        made = generate(str(generator), Path(run_dir or ".") / "data", source)
        data = {**{split: str(path) for split, path in made.items()}, **data}
    for split in ("train", "valid"):
        if data.get(split) in (None, ""):
            raise SeqpipeError(f"{source}: data.{split}: required (a path the task can read)")
    return {split: beside_recipe(value, source) for split, value in data.items()}


def beside_recipe(value: Any, source: str) -> Any:
    """``value`` (a data path) relative to the recipe ``source`` when it names nothing from
    the working directory and something there (the repository's ``configs/`` name
    ``data/...`` from its root; a recipe elsewhere names files beside itself)."""
    if not isinstance(value, str) or Path(value).is_absolute() or Path(value).exists():
        return value
    beside = Path(source).parent / value
    return str(beside) if beside.exists() else value


def recipe_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``key.path: old -> new`` for every value that differs between two resolved recipes."""
    changes = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            changes += recipe_changes(a, b, f"{path}.")
        elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and list(a) == list(b):
            continue  # a YAML list read back as a validated tuple
        elif a != b:
            changes.append(f"{path}: {a!r} -> {b!r}")
    return changes


def init_weights(pipeline, name_or_path: str) -> list[str]:
    """Start from a trained bundle's weights (fine-tuning): the same architecture, except
    that submodules the bundle has none of at all (e.g. a training-only ``speller``) start
    fresh. Returns those submodules' names."""
    from seqpipe.pipeline import read_bundle_metadata, read_weights, resolve_bundle
    from seqpipe.plugins import registry

    path = resolve_bundle(name_or_path, registry())
    read_bundle_metadata(path)  # a clear error for a file that is not a bundle
    state = read_weights(path)
    fresh = sorted(
        name
        for name, module in pipeline.model.named_children()
        if not any(k.startswith(f"model.{name}.") for k in state)
        and next(module.parameters(), None) is not None
    )
    prefixes = tuple(f"model.{name}." for name in fresh)
    own = {k: v for k, v in pipeline.state_dict().items() if k.startswith(prefixes)}
    try:  # strict: every other weight must come from the bundle, and all of it must fit
        pipeline.load_state_dict({**state, **own}, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise SeqpipeError(
            f"{path}: train.init_from: weights do not fit this recipe's model: {first}"
        ) from None
    return fresh


def default_run_dir(config: dict[str, Any]) -> Path:
    name = config.get("name") or Path(config.get("_source", "run")).stem
    return Path("runs") / str(name)


def dry_run(config: dict[str, Any], batch_size: int | None = None) -> dict[str, Any]:
    """Build the recipe's pipeline, read its data, collate one training batch and compute
    its loss and gradients once; nothing is written. Returns what it saw."""
    import torch

    from seqpipe.pipeline import Pipeline
    from seqpipe.training.options import train_options

    options = train_options(config)
    data = data_sources(config)
    seed_everything(int(config.get("seed", 0) or 0))
    pipeline = Pipeline.from_config(config)
    task = pipeline.task
    train_data = task.load_data(data["train"], train=True)
    valid_data = task.load_data(data["valid"], train=False)
    if not train_data:
        raise SeqpipeError(f"{config.get('_source', '<config>')}: data.train: no examples")
    examples = list(train_data[: batch_size or options.batch_size])
    batch = task.collate(examples)
    pipeline.train()
    loss, count = task.loss(pipeline, batch)
    loss.backward()
    shapes = {k: tuple(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return {
        "components": {s: pipeline.config[s]["name"] for s in ("task", "features", "model")},
        "cells": pipeline.cells,
        "parameters": sum(p.numel() for p in pipeline.parameters()),
        "examples": {"train": len(train_data), "valid": len(valid_data)},
        "batch": shapes,
        "loss": float(loss.detach()),
        "items": int(count),
    }


def fit(
    config: dict[str, Any],
    run_dir: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    resume: bool = False,
    console=None,
) -> dict[str, Any]:
    """Train the pipeline described by ``config``; returns the run's summary."""
    import yaml

    from seqpipe.device import pick_device
    from seqpipe.pipeline import Pipeline
    from seqpipe.training import checkpoint as ckpt
    from seqpipe.training import distributed
    from seqpipe.training.options import train_options
    from seqpipe.training.trainer import Trainer

    options = train_options(config)
    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    check_writable(run_dir)  # not after an epoch of training
    seed = int(config.get("seed", 0) or 0)
    dist, torch_device = distributed.setup(pick_device(device))
    try:
        resume_state = None
        if resume:
            found = ckpt.load_latest(run_dir, quarantine=dist.is_main)
            if found is not None:
                path, resume_state = found
                if console is not None and dist.is_main:
                    console.print(f"resuming from {path}")
            elif console is not None and dist.is_main:
                console.print(
                    f"seqpipe: warning: --resume: no checkpoint in {run_dir}; starting from scratch",
                    soft_wrap=True,
                )
        elif ckpt.list_checkpoints(run_dir):
            raise SeqpipeError(
                f"{run_dir}: already holds checkpoints of a run; pass --resume to continue "
                f"it or --out to start a new one"
            )
        distributed.barrier(dist)
        seed_everything(seed)
        pipeline = Pipeline.from_config(config)
        data = data_sources(config, run_dir)  # after the config validates: it may write data
        if options.init_from and resume_state is None:  # a resumed run has its own weights
            fresh = init_weights(pipeline, options.init_from)
            if fresh and console is not None and dist.is_main:
                console.print(f"init_from: not in {options.init_from}, starts fresh: {fresh}")
        task = pipeline.task
        train_data = task.load_data(data["train"], train=True)
        valid_data = task.load_data(data["valid"], train=False)
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            resolved = {**pipeline.config, "train": options.to_dict(), "seed": seed}
            previous = run_dir / "config.yaml"
            if resume_state is not None and previous.exists():
                # allowed (fine-tuning, more epochs), but never silent
                changes = recipe_changes(yaml.safe_load(previous.read_text()) or {}, resolved)
                if changes and console is not None:
                    console.print(f"resuming with a changed recipe: {'; '.join(changes)}")
            write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        if console is not None and dist.is_main:
            from seqpipe.device import device_name

            params = sum(p.numel() for p in pipeline.parameters())
            console.print(
                f"training {config['model']['name']} ({params:,} parameters) on "
                f"{device_name(torch_device)}"
                + (f" x{dist.world_size} ranks" if dist.enabled else "")
                + f": {len(train_data)} train / {len(valid_data)} valid examples -> {run_dir}"
            )
        trainer = Trainer(
            pipeline,
            options,
            run_dir,
            train_data=train_data,
            valid_data=valid_data,
            device=torch_device,
            dist=dist,
            seed=seed,
            console=console,
        )
        summary = trainer.fit(resume_state)
        del trainer  # its DDP wrapper holds the process group, which teardown must outlive
        summary["run_dir"] = str(run_dir)
        summary["primary_metric"] = task.primary_metric
        if dist.is_main:
            write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
            try:
                from seqpipe.training.curves import plot_run

                plot_run(run_dir)
            except ImportError:  # matplotlib missing: curves are a nicety
                pass
        # Leave together, so no rank tears its group down while another is still busy
        # (CI once saw a rank abort in shutdown: "terminate called without an active exception").
        distributed.barrier(dist)
        return summary
    finally:
        distributed.teardown(dist)
