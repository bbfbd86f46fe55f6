"""``seqpipe data melodies``."""

import click


@click.command("melodies")
def melodies() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe data melodies' is not implemented yet")
