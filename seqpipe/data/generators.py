"""Built-in data generators a recipe's ``data: {generate: NAME}`` may name: each writes a
small data set into a folder and returns its manifests by split, so a shipped recipe
(:mod:`seqpipe.recipes`) trains anywhere without downloads."""

from __future__ import annotations

import importlib
from pathlib import Path

from seqpipe.errors import SeqpipeError

GENERATORS = {
    "tones": "seqpipe.data.tones:write_tone_dataset",  # three tones, 8 kHz, seconds to train
}


def generate(name: str, folder: Path, source: str = "<config>") -> dict[str, Path]:
    """Run generator ``name`` into ``folder``; returns ``{split: manifest}``."""
    target = GENERATORS.get(name)
    if target is None:
        known = ", ".join(sorted(GENERATORS))
        raise SeqpipeError(
            f"{source}: data.generate: unknown generator {name!r} (built in: {known})"
        )
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(folder)
