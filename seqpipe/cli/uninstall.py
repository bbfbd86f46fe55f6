"""``seqpipe uninstall``: pip uninstall, run by seqpipe's own Python (see ``install``)."""

import click

from seqpipe.cli.install import pip


@click.command("uninstall")
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
def command(packages, yes) -> None:
    """Remove PACKAGES from seqpipe's environment (pip uninstall)."""
    pip("uninstall", *(["--yes"] if yes else []), *packages)
