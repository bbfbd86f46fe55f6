"""Built-in plugin adding seqpipe's own subcommands, through the same hook plugins use."""

import importlib

from seqpipe.hookspecs import hookimpl

# module (under seqpipe.cli) -> attribute holding the click command or group
BUILTIN_COMMANDS = (
    "plugins",
    "plugin",
    "install",
    "uninstall",
    "inspect",
    "info",
    "train",
    "recipes",
    "evaluate",
    "plot",
    "sweep",
    "transcribe",
    "notes",
    "generate",
    "data",
    "lm",
    "export",
)


@hookimpl
def register_commands(cli):
    for name in BUILTIN_COMMANDS:
        module = importlib.import_module(f"seqpipe.cli.{name}")
        cli.add_command(module.command)
