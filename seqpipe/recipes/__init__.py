"""Recipes that ship inside the package: ``seqpipe train NAME`` finds them by name and
``seqpipe recipes`` lists them. They must run anywhere, so their ``data:`` names a built-in
generator (:mod:`seqpipe.data.generators`) instead of files a user may not have.

The repository's own research recipes (``configs/``) need its prepared corpora and stay
there; ``seqpipe train`` takes those by path.
"""

from __future__ import annotations

from pathlib import Path

from seqpipe.errors import SeqpipeError

RECIPES = Path(__file__).resolve().parent


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def describe(name: str) -> str:
    """The first line of a shipped recipe's header comment."""
    for line in (RECIPES / f"{name}.yaml").read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def find_recipe(name_or_path: str) -> Path:
    """A recipe file: ``name_or_path`` if it is a file, else the shipped recipe of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix == "" and (RECIPES / f"{name_or_path}.yaml").is_file():
        return RECIPES / f"{name_or_path}.yaml"
    shipped = ", ".join(recipe_names())
    raise SeqpipeError(
        f"{name_or_path}: no such recipe file or shipped recipe (shipped: {shipped})"
    )
