"""Plugin loading: built-ins, then installed entry points, each failure isolated.

``SEQPIPE_PLUGINS`` limits which installed plugins load: unset loads all of them,
an empty value loads only the built-ins, ``a,b`` loads the entry points named ``a``
and ``b`` (a name may also be the distribution's name). A plugin that fails to
import, or whose hook raises, costs one warning line on stderr; nothing else breaks.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass, field

import pluggy

from seqpipe import __version__, hookspecs
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


@dataclass
class Plugins:
    manager: pluggy.PluginManager
    registry: Registry
    info: dict[str, PluginInfo]


def warn(message: str) -> None:
    print(f"seqpipe: warning: {message}", file=sys.stderr)


def allowed_plugins() -> set[str] | None:
    """The names allowed by ``SEQPIPE_PLUGINS``, or None when every plugin may load."""
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def _load_entry_points(pm: pluggy.PluginManager, info: dict[str, PluginInfo]) -> None:
    allowed = allowed_plugins()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        package = ep.dist.name if ep.dist else ep.name
        version = ep.dist.version if ep.dist else "?"
        if allowed is not None and ep.name not in allowed and package not in allowed:
            continue
        if ep.name in info:  # the same distribution seen twice on sys.path
            continue
        plugin = PluginInfo(ep.name, package, version, builtin=False)
        info[ep.name] = plugin
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not break seqpipe
            plugin.error = _describe(exc)
            warn(f"plugin '{ep.name}' ({package}) failed to load: {plugin.error}")


def _call_isolated(pm: pluggy.PluginManager, hook_name: str, info: dict[str, PluginInfo], **kwargs):
    """Call each implementation of ``hook_name`` on its own, so one failure stays local."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin = info[impl.plugin_name]
        if plugin.error:
            continue
        try:
            impl.function(**{arg: kwargs[arg](plugin) for arg in impl.argnames})
        except Exception as exc:
            plugin.error = _describe(exc)
            warn(f"plugin '{plugin.name}' ({plugin.package}) failed in {hook_name}: {plugin.error}")


@functools.cache
def load() -> Plugins:
    """Load built-in and installed plugins once per process and build the registry."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    info: dict[str, PluginInfo] = {}
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        info[module_name] = PluginInfo(module_name, "seqpipe", __version__, builtin=True)
    _load_entry_points(pm, info)

    registry = Registry()
    for hook_name, kind in _REGISTER_HOOKS.items():

        def bind(plugin: PluginInfo, kind: str = kind):
            def register(name: str, target, help: str = "") -> None:
                registry.add(
                    kind, name, target, plugin=plugin.name, package=plugin.package, help=help
                )
                plugin.components.append(f"{kind}:{name}")

            return register

        _call_isolated(pm, hook_name, info, register=bind)
    return Plugins(pm, registry, info)


def registry() -> Registry:
    return load().registry


def add_commands(cli) -> None:
    """Let every plugin add subcommands to the click group ``cli``."""
    plugins = load()
    _call_isolated(plugins.manager, "register_commands", plugins.info, cli=lambda _plugin: cli)
