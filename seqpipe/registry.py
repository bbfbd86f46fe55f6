"""Named components, by kind, with the plugin that provided each one."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any

from seqpipe.errors import SeqpipeError

KINDS = ("features", "model", "decoder", "task", "bundle")


@dataclass
class Component:
    kind: str
    name: str
    target: Any  # the class/factory, or "module:attr" resolved on first use
    plugin: str  # plugin (entry-point or module) name
    package: str  # the distribution to pip-install to get it
    help: str = ""

    def load(self) -> Any:
        """Import and return the target (a class, factory or path)."""
        if isinstance(self.target, str) and ":" in self.target and self.kind != "bundle":
            module, _, attr = self.target.partition(":")
            try:
                obj = importlib.import_module(module)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise SeqpipeError(
                    f"{self.kind} '{self.name}' from plugin '{self.plugin}' cannot be loaded: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.target = obj
        return self.target


@dataclass
class Registry:
    components: dict[str, dict[str, Component]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def add(
        self, kind: str, name: str, target: Any, *, plugin: str, package: str, help: str = ""
    ) -> None:
        if kind not in self.components:
            raise ValueError(f"unknown component kind {kind!r}")
        existing = self.components[kind].get(name)
        if existing is not None and existing.plugin != plugin:
            raise SeqpipeError(
                f"{kind} '{name}' is registered by both '{existing.plugin}' and '{plugin}'"
            )
        self.components[kind][name] = Component(kind, name, target, plugin, package, help)

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def find(self, kind: str, name: str) -> Component | None:
        return self.components[kind].get(name)

    def get(self, kind: str, name: str) -> Component:
        """Look a component up, failing with what exists and the closest match."""
        component = self.find(kind, name)
        if component is None:
            raise SeqpipeError(unknown_name_message(kind, name, self.names(kind)))
        return component

    def all(self) -> list[Component]:
        return [c for kind in KINDS for c in self.components[kind].values()]


def unknown_name_message(kind: str, name: str, installed: list[str]) -> str:
    close = difflib.get_close_matches(str(name), installed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {kind} '{name}' ({hint}installed: {', '.join(installed) or 'none'})"
