"""Hyperparameter search: a grid (every combination) or a random/TPE search with Optuna.

``--grid lr=1e-3,3e-4 hidden_size=128,256``: a bare key is a ``train:`` option when
the trainer has one by that name, else a ``model:`` option; dotted keys are used as
they are (``features.n_mels=40,80``). With ``--trials N`` Optuna (the ``sweep`` extra)
samples N trials from the same value lists, or from ``key=low:high`` ranges (log scale
for positive floats). Each trial is a full run in ``OUT/trial-NNN``; the results table
(``results.md`` and ``results.json``), sorted best first by the task's primary
validation metric, is rewritten after every trial so a stopped sweep keeps its results.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from seqpipe.atomic import write_text
from seqpipe.errors import SeqpipeError
from seqpipe.training.options import TrainOptions


def resolve_key(key: str) -> str:
    if "." in key or key == "seed":
        return key
    if key in {f.name for f in fields(TrainOptions)}:
        return f"train.{key}"
    return f"model.{key}"


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["lr=1e-3,3e-4", ...]`` -> ``{"train.lr": [0.001, 0.0003], ...}`` (values as YAML)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise SeqpipeError(f"--grid {item!r}: expected KEY=VALUE,VALUE,... or KEY=LOW:HIGH")
        if ":" in raw and "," not in raw:
            low, high = (_scalar(v) for v in raw.split(":", 1))
            if not all(isinstance(v, int | float) for v in (low, high)) or low >= high:
                raise SeqpipeError(f"--grid {item!r}: a range needs two numbers, LOW < HIGH")
            grid[resolve_key(key.strip())] = [("range", low, high)]
        else:
            grid[resolve_key(key.strip())] = [_scalar(v) for v in raw.split(",")]
    return grid


def _scalar(text: str) -> Any:
    value = yaml.safe_load(text.strip())
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(value)
        except ValueError:
            return value
    return value


def grid_trials(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if any(isinstance(v, tuple) for values in grid.values() for v in values):
        raise SeqpipeError("--grid: LOW:HIGH ranges need random search (--trials N)")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def run_trial(
    config_path: str, overrides: list[str], params: dict[str, Any], run_dir: Path, device, console
) -> dict[str, Any]:
    from seqpipe.config import load_config
    from seqpipe.training.run import fit

    settings = [f"{key}={json.dumps(value)}" for key, value in params.items()]
    config = load_config(config_path, [*overrides, *settings])
    if console is not None:
        console.rule(f"{run_dir.name}: " + "  ".join(f"{k}={v}" for k, v in params.items()))
    try:
        summary = fit(config, run_dir, device=device, console=console)
    except SeqpipeError as exc:  # one failed trial (diverged, bad value) must not end the sweep
        if console is not None:
            console.print(f"[red]{run_dir.name} failed: {exc}[/]")
        return {"trial": run_dir.name, **params, "error": str(exc), "run_dir": str(run_dir)}
    metric = summary["primary_metric"]
    return {
        "trial": run_dir.name,
        **params,
        metric: summary["best"][metric],
        "best_epoch": summary["best"]["epoch"],
        "run_dir": str(run_dir),
    }


def direction(config_path: str, overrides: list[str]) -> tuple[str, bool]:
    """(primary metric, higher is better) of the recipe's task, without building anything."""
    from seqpipe.config import load_config
    from seqpipe.plugins import registry

    config = load_config(config_path, overrides)
    task = registry().get("task", config["task"]["name"]).load()
    return task.primary_metric, bool(task.higher_is_better)


def sort_results(rows: list[dict[str, Any]], metric: str, higher: bool) -> list[dict[str, Any]]:
    def key(row):
        value = row.get(metric)
        missing = value is None or value != value
        return (missing, -value if (higher and not missing) else (value if not missing else 0))

    return sorted(rows, key=key)


def write_results(out: Path, rows: list[dict[str, Any]], metric: str, higher: bool) -> Path:
    rows = sort_results(rows, metric, higher)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            f"{row.get(c):.4g}" if isinstance(row.get(c), float) else str(row.get(c, ""))
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for name, text in (
        ("results.md", "\n".join(lines) + "\n"),
        ("results.json", json.dumps(rows, indent=2) + "\n"),
    ):
        write_text(out / name, text)
    return out / "results.md"


def sweep(
    config_path: str,
    grid_items: list[str],
    out: str | os.PathLike,
    *,
    overrides: list[str] = (),
    trials: int | None = None,
    seed: int = 0,
    device: str | None = None,
    console=None,
) -> list[dict[str, Any]]:
    """Run the trials; returns the result rows, best first."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grid = parse_grid(list(grid_items))
    metric, higher = direction(config_path, list(overrides))
    rows: list[dict[str, Any]] = []
    if trials is None:
        for number, params in enumerate(grid_trials(grid)):
            rows.append(
                run_trial(
                    config_path,
                    list(overrides),
                    params,
                    out / f"trial-{number:03d}",
                    device,
                    console,
                )
            )
            write_results(out, rows, metric, higher)
        return sort_results(rows, metric, higher)
    try:
        import optuna
    except ImportError:
        raise SeqpipeError(
            "--trials needs Optuna: pip install 'seqpipe[sweep]' (or use the grid alone)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if higher else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )

    def objective(trial) -> float:
        params = {}
        for key, values in grid.items():
            if isinstance(values[0], tuple):
                _, low, high = values[0]
                if isinstance(low, int) and isinstance(high, int):
                    params[key] = trial.suggest_int(key, low, high)
                else:
                    params[key] = trial.suggest_float(key, low, high, log=low > 0)
            else:
                params[key] = trial.suggest_categorical(key, values)
        row = run_trial(
            config_path, list(overrides), params, out / f"trial-{trial.number:03d}", device, console
        )
        rows.append(row)
        write_results(out, rows, metric, higher)
        value = row[metric]
        return float("nan") if value is None else value

    study.optimize(objective, n_trials=trials)
    return sort_results(rows, metric, higher)
