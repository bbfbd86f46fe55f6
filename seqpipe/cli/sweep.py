"""``seqpipe sweep``."""

import click


@click.command("sweep")
def command() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe sweep' is not implemented yet")
