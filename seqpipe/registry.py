"""Named components, by kind, with the plugin that provided each one."""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from seqpipe.errors import SeqpipeError

KINDS = ("features", "model", "cell", "decoder", "task", "bundle")

#: what a model may declare when it registers (``shape=``), and what each means
SHAPES = {
    "many-to-many": "forward(x[B,T,F], lengths) -> (y[B,T',O], lengths), one output per frame",
    "many-to-one": "forward(x[B,T,F], lengths) -> logits[B,C], one output per sequence",
    "autoregressive": "forward(tokens[B,T], lengths) -> logits[B,T,V], plus initial_state/step",
    "seq2seq": "forward(x[B,T,F], lengths, targets[B,U]) -> logits[B,U,V], plus encode/decode_step",
}

#: constructor arguments the pipeline fills in (never options, so they need no type hint)
WIRED = frozenset(
    {"input_size", "output_size", "vocab_size", "vocab", "blank", "build_model", "build_cell"}
)


@dataclass
class Component:
    kind: str
    name: str
    target: Any  # the class/factory, or "module:attr" resolved on first use
    plugin: str  # plugin (entry-point or module) name
    package: str  # the distribution to pip-install to get it
    help: str = ""
    shape: tuple[str, ...] = ()  # models: the shapes declared at registration (SHAPES)

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
            if self.kind != "bundle":
                _warn_untyped(self)
        return self.target


def untyped_options(target: Any) -> list[str]:
    """Constructor options of ``target`` without a type hint (wired arguments excepted)."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.annotation is inspect.Parameter.empty
        and p.name not in WIRED | {"self"}
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _warn_untyped(component: Component) -> None:
    import sys

    untyped = untyped_options(component.target)
    if untyped:
        print(
            f"seqpipe: warning: {component.kind} '{component.name}' ({component.package}): "
            f"option{'s' if len(untyped) > 1 else ''} {', '.join(untyped)} "
            "without a type hint accept any value unchecked",
            file=sys.stderr,
        )


@dataclass
class Registry:
    components: dict[str, dict[str, Component]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    #: installed plugins that did not load (disabled by SEQPIPE_PLUGINS, or failed): name -> why
    missing_plugins: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        kind: str,
        name: str,
        target: Any,
        *,
        plugin: str,
        package: str,
        help: str = "",
        shape: str | tuple[str, ...] | None = None,
    ) -> None:
        if kind not in self.components:
            raise ValueError(f"unknown component kind {kind!r}")
        shapes = (shape,) if isinstance(shape, str) else tuple(shape or ())
        if shapes and kind != "model":
            raise SeqpipeError(f"{kind} '{name}': only models declare a shape")
        for one in shapes:
            if one not in SHAPES:
                raise SeqpipeError(
                    f"model '{name}': unknown shape {one!r} (expected one of: {', '.join(SHAPES)})"
                )
        existing = self.components[kind].get(name)
        if existing is not None and existing.plugin != plugin:
            raise SeqpipeError(
                f"{kind} '{name}' is registered by both '{existing.plugin}' and '{plugin}'"
            )
        self.components[kind][name] = Component(kind, name, target, plugin, package, help, shapes)

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def find(self, kind: str, name: str) -> Component | None:
        return self.components[kind].get(name)

    def get(self, kind: str, name: str) -> Component:
        """Look a component up, failing with what exists and the closest match."""
        component = self.find(kind, name)
        if component is None:
            message = unknown_name_message(kind, name, self.names(kind))
            if self.missing_plugins:
                why = "; ".join(f"'{p}' {reason}" for p, reason in self.missing_plugins.items())
                message += f"; installed plugins not loaded: {why}"
            raise SeqpipeError(message)
        return component

    def all(self) -> list[Component]:
        return [c for kind in KINDS for c in self.components[kind].values()]


def unknown_name_message(kind: str, name: str, installed: list[str]) -> str:
    close = difflib.get_close_matches(str(name), installed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {kind} '{name}' ({hint}installed: {', '.join(installed) or 'none'})"
