"""``seqpipe lm``."""

import click


@click.command("lm")
def command() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe lm' is not implemented yet")
