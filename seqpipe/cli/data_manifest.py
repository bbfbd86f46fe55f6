"""``seqpipe data manifest``."""

import click


@click.command("manifest")
def manifest() -> None:
    """(not yet implemented)"""
    raise click.ClickException("'seqpipe data manifest' is not implemented yet")
