"""``seqpipe data``: build training data (speech manifests, melody corpora)."""

import click

from seqpipe.cli.data_import import command as import_command
from seqpipe.cli.data_manifest import manifest
from seqpipe.cli.data_melodies import melodies


@click.group("data")
def command() -> None:
    """Prepare datasets: speech manifests (own recordings or public corpora), melody corpora."""


command.add_command(manifest)
command.add_command(import_command)
command.add_command(melodies)
