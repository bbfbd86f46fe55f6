"""``seqpipe transcribe``."""

import click


@click.command("transcribe")
def command() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe transcribe' is not implemented yet")
