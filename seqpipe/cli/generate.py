"""``seqpipe generate``."""

import click


@click.command("generate")
def command() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe generate' is not implemented yet")
