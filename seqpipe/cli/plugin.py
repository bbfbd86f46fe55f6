"""``seqpipe plugin new NAME``: start a plugin package from a template."""

import click

from seqpipe.scaffold import KINDS


@click.group("plugin")
def command() -> None:
    """Write seqpipe plugins (see ``seqpipe plugins`` for the installed ones)."""


@command.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), default="cell", show_default=True)
@click.option(
    "--dir", "folder", type=click.Path(file_okay=False), default=".", show_default=True,
    help="where to create the package folder NAME",
)  # fmt: skip
def new(name: str, kind: str, folder: str) -> None:
    """Create the package NAME: pyproject with the entry point, hooks, a typed component,
    README and tests that pass unchanged (pip install -e NAME && pytest NAME)."""
    from seqpipe.scaffold import new_plugin

    root = new_plugin(name, kind, folder)
    click.echo(f"created {root} ({kind} '{name}'); next: pip install -e {root} && pytest {root}")
