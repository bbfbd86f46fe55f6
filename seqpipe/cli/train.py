"""``seqpipe train``."""

import click


@click.command("train")
def command() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe train' is not implemented yet")
