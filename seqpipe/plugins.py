"""Plugin loading: built-ins, then installed entry points, each failure isolated.

``SEQPIPE_PLUGINS`` limits which installed plugins load: unset loads all of them,
an empty value loads only the built-ins, ``a,b`` loads the entry points named ``a``
and ``b`` (a name may also be the distribution's name), and ``-c`` excludes ``c``
(``-c`` alone: every installed plugin but ``c``). A plugin that fails to
import, or whose hook raises, costs one warning line on stderr; nothing else breaks.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import click
import pluggy

from seqpipe import __version__, hookspecs
from seqpipe.errors import printable
from seqpipe.registry import Registry

ENTRY_POINT_GROUP = "seqpipe"
ALLOW_ENV = "SEQPIPE_PLUGINS"

# Built-in plugins: each module's hookimpls register that kind's components.
BUILTIN_PLUGINS = (
    "seqpipe.features",
    "seqpipe.models",
    "seqpipe.decoders",
    "seqpipe.tasks",
    "seqpipe.bundled",
    "seqpipe.cli.commands",
)

_REGISTER_HOOKS = {
    "register_features": "features",
    "register_models": "model",
    "register_cells": "cell",
    "register_decoders": "decoder",
    "register_tasks": "task",
    "register_bundles": "bundle",
}


@dataclass
class PluginInfo:
    name: str
    package: str
    version: str
    builtin: bool
    error: str | None = None
    components: list[str] = field(default_factory=list)
    disabled: str | None = None  # why an installed plugin was not loaded


@dataclass
class Plugins:
    manager: pluggy.PluginManager
    registry: Registry
    info: dict[str, PluginInfo]
    disabled: list[PluginInfo] = field(default_factory=list)  # installed, not loaded


def warn(message: str) -> None:
    print(f"seqpipe: warning: {message}", file=sys.stderr)


def plugin_filter() -> tuple[set[str] | None, set[str]]:
    """``SEQPIPE_PLUGINS`` read: (the names allowed, None when every plugin may load;
    the names excluded with ``-name``)."""
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None, set()
    parts = [part.strip() for part in value.split(",") if part.strip()]
    excluded = {part[1:].strip() for part in parts if part.startswith("-")}
    allowed = {part for part in parts if not part.startswith("-")}
    return (None if excluded and not allowed else allowed), excluded


def allowed_plugins() -> set[str] | None:
    """The names allowed by ``SEQPIPE_PLUGINS``, or None when every plugin may load."""
    return plugin_filter()[0]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


class _UserInterrupt:
    """Tells a Ctrl-C from the user apart from a plugin raising KeyboardInterrupt itself.

    While active, SIGINT sets ``pressed`` before raising KeyboardInterrupt as usual, so
    only a KeyboardInterrupt with ``pressed`` set is the user's (and ends seqpipe).
    """

    def __init__(self) -> None:
        self.pressed = False
        self.previous = None

    def __enter__(self) -> _UserInterrupt:
        def on_sigint(signum, frame):
            self.pressed = True
            raise KeyboardInterrupt

        try:
            self.previous = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main thread: every KeyboardInterrupt counts as the user's
            self.pressed = True
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _isolated(plugin: PluginInfo, what: str, call) -> None:
    """Run ``call()``; any exception it raises, SystemExit and other BaseExceptions
    included, disables ``plugin`` with one warning line. Only the user's Ctrl-C goes on."""
    with _UserInterrupt() as interrupt:
        try:
            call()
        except KeyboardInterrupt as exc:
            if interrupt.pressed:
                raise
            plugin.error = _describe(exc)
        except BaseException as exc:  # a broken plugin must not break seqpipe
            plugin.error = _describe(exc)
    if plugin.error:
        warn(f"plugin '{plugin.name}' ({plugin.package}) {what}: {plugin.error}")


def _load_entry_points(
    pm: pluggy.PluginManager, info: dict[str, PluginInfo], disabled: list[PluginInfo]
) -> None:
    allowed, excluded = plugin_filter()
    seen: set[str] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        package = ep.dist.name if ep.dist else ep.name
        version = ep.dist.version if ep.dist else "?"
        seen |= {ep.name, package}
        if ep.name in info or any(d.name == ep.name for d in disabled):
            continue  # the same distribution seen twice on sys.path
        why = None
        if {ep.name, package} & excluded:
            why = f"excluded by {ALLOW_ENV}"
        elif allowed is not None and ep.name not in allowed and package not in allowed:
            why = f"not named in {ALLOW_ENV}"
        if why:
            disabled.append(PluginInfo(ep.name, package, version, builtin=False, disabled=why))
            continue
        plugin = PluginInfo(ep.name, package, version, builtin=False)
        info[ep.name] = plugin
        _isolated(plugin, "failed to load", lambda ep=ep: pm.register(ep.load(), name=ep.name))
    for name in sorted(((allowed or set()) | excluded) - seen):
        installed = ", ".join(sorted(seen)) or "none"
        warn(f"{ALLOW_ENV} names '{printable(name)}', which is not an installed plugin "
             f"(installed: {installed})")  # fmt: skip


def _call_isolated(pm: pluggy.PluginManager, hook_name: str, info: dict[str, PluginInfo], **kwargs):
    """Call each implementation of ``hook_name`` on its own, so one failure stays local."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin = info[impl.plugin_name]
        if plugin.error:
            continue
        args = {arg: kwargs[arg](plugin) for arg in impl.argnames}
        _isolated(
            plugin, f"failed in {hook_name}", lambda impl=impl, args=args: impl.function(**args)
        )


@functools.cache
def load() -> Plugins:
    """Load built-in and installed plugins once per process and build the registry."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    info: dict[str, PluginInfo] = {}
    disabled: list[PluginInfo] = []
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        info[module_name] = PluginInfo(module_name, "seqpipe", __version__, builtin=True)
    _load_entry_points(pm, info, disabled)

    registry = Registry()
    for hook_name, kind in _REGISTER_HOOKS.items():

        def bind(plugin: PluginInfo, kind: str = kind):
            def register(name: str, target, help: str = "", shape=None) -> None:
                registry.add(
                    kind,
                    name,
                    target,
                    plugin=plugin.name,
                    package=plugin.package,
                    help=help,
                    shape=shape,
                )
                plugin.components.append(f"{kind}:{name}")

            return register

        _call_isolated(pm, hook_name, info, register=bind)
    for plugin in [*disabled, *info.values()]:
        if plugin.disabled or plugin.error:
            registry.missing_plugins[plugin.name] = plugin.disabled or f"failed: {plugin.error}"
    return Plugins(pm, registry, info, disabled)


def registry() -> Registry:
    return load().registry


def add_commands(cli) -> None:
    """Let every plugin add subcommands to the click group ``cli``; a plugin's command
    never replaces one of seqpipe's own (it is dropped, with a warning)."""
    plugins = load()
    _call_isolated(plugins.manager, "register_commands", plugins.info, cli=_GuardedGroup.of(cli))


@dataclass
class _GuardedGroup:
    """What a plugin's ``register_commands`` gets as ``cli``: the group, except that adding a
    command under a built-in command's name is refused with a warning."""

    group: Any
    plugin: PluginInfo

    @classmethod
    def of(cls, group):
        return lambda plugin: group if plugin.builtin else cls(group, plugin)

    def add_command(self, cmd, name: str | None = None) -> None:
        name = name or cmd.name
        existing = self.group.commands.get(name)
        if existing is not None and existing.callback is not None and _builtin(existing):
            warn(f"plugin '{self.plugin.name}' ({self.plugin.package}) tried to replace the "
                 f"built-in command '{printable(name)}'; kept the built-in")  # fmt: skip
            return
        self.group.add_command(cmd, name)

    def command(self, *args, **kwargs):
        def decorator(f):
            cmd = click.command(*args, **kwargs)(f)
            self.add_command(cmd)
            return cmd

        return decorator

    def __getattr__(self, name: str):
        return getattr(self.group, name)


def _builtin(command) -> bool:
    module = getattr(command.callback, "__module__", "") or ""
    return module == "seqpipe" or module.startswith("seqpipe.")


def describe(show_disabled: bool = False) -> dict[str, Any]:
    """What ``seqpipe plugins --json`` prints: every component with its plugin and
    package, every loaded plugin with its status and, if asked, the installed plugins
    that did not load and why."""
    plugins = load()
    out: dict[str, Any] = {
        "components": [
            {"kind": c.kind, "name": c.name, "plugin": c.plugin, "package": c.package,
             "help": c.help}
            for c in plugins.registry.all()
        ],
        "plugins": [
            {"name": p.name, "package": p.package, "version": p.version, "builtin": p.builtin,
             "error": p.error, "components": len(p.components)}
            for p in plugins.info.values()
        ],
    }  # fmt: skip
    if show_disabled:
        out["disabled"] = [
            {"name": p.name, "package": p.package, "version": p.version, "reason": p.disabled}
            for p in plugins.disabled
        ]
    return out
