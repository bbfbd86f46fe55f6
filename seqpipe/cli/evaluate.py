"""``seqpipe evaluate``."""

import click


@click.command("evaluate")
def command() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe evaluate' is not implemented yet")
