"""A rich progress bar for training: epoch, batches, loss, metric, lr, throughput.

On a terminal it redraws in place; elsewhere (logs, CI, tests) it stays silent and
the trainer's one line per epoch is the record.
"""

from __future__ import annotations

from typing import Any


class ProgressBar:
    def __init__(self, console=None, enabled: bool = True):
        self.progress = None
        self.task = None
        self.fields: dict[str, Any] = {}
        if not enabled or console is None or not console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )

    def __enter__(self) -> ProgressBar:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int, epochs: int, total: int, done: int) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(
            "train", total=total, completed=done, epoch=f"{epoch}/{epochs}", info=""
        )

    def update(self, values: dict[str, float]) -> None:
        """Show the latest training numbers (and the last validation metric, if any)."""
        self.fields.update(values)
        if self.progress is None or self.task is None:
            return
        parts = []
        for key, fmt in (("loss", ".4f"), ("metric", ""), ("lr", ".2e"), ("items_per_s", ".0f")):
            if key in self.fields:
                value = self.fields[key]
                parts.append(
                    f"{key.replace('items_per_s', 'items/s')} {value:{fmt}}" if fmt else str(value)
                )
        self.progress.update(self.task, info="  ".join(parts))

    def advance(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)
