"""The run's metrics: a JSONL file (always) and TensorBoard events (when installed).

One JSON object per line: ``{"split": "train"|"valid", "step": ..., "epoch": ..., ...}``.
JSONL survives a crash mid-write (at most the last line is lost) and is trivial to
read back for ``seqpipe plot``. On resume, lines past the checkpoint's step are
dropped so a killed run's redone steps are not logged twice.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from seqpipe.atomic import write_text

FILENAME = "metrics.jsonl"


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete line of a run's metrics log (a torn last line is ignored)."""
    path = Path(run_dir) / FILENAME
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class MetricsLog:
    """Appends rows to ``RUN/metrics.jsonl`` and mirrors scalars to TensorBoard if available."""

    def __init__(self, run_dir: str | os.PathLike, resume_step: int | None = None):
        self.path = Path(run_dir) / FILENAME
        if resume_step is not None:
            self._truncate(resume_step)
        elif self.path.exists():
            self.path.unlink()
        self.file = self.path.open("a")
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        except ImportError:  # the optional `tensorboard` extra is not installed
            print(
                "seqpipe: warning: no TensorBoard logs (pip install 'seqpipe[tensorboard]'); "
                f"metrics still go to {self.path}",
                file=sys.stderr,
            )

    def _truncate(self, step: int) -> None:
        rows = [r for r in read_metrics(self.path.parent) if r.get("step", 0) <= step]
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))

    def log(self, split: str, step: int, epoch: int, values: dict[str, Any]) -> None:
        row = {"split": split, "step": step, "epoch": epoch}
        row.update({k: _plain(v) for k, v in values.items()})
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.tensorboard is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self.tensorboard.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
