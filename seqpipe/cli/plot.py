"""``seqpipe plot``."""

import click


@click.command("plot")
def command() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe plot' is not implemented yet")
