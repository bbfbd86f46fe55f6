"""The ``seqpipe`` command. Subcommands come from plugins, built-ins included.

Only click is imported here; each command imports torch and friends inside its
body, so ``seqpipe --help`` stays fast.
"""

from __future__ import annotations

import errno

import click

from seqpipe import __version__
from seqpipe.errors import SeqpipeError


class SeqpipeGroup(click.Group):
    """Turns SeqpipeError (and an unexpected OSError) into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SeqpipeError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a read or write nothing expected to fail (disk full...)
            if exc.errno == errno.EPIPE:
                raise  # click quiets a closed stdout (seqpipe ... | head)
            raise click.ClickException(
                f"{exc.filename or 'seqpipe'}: {exc.strerror or exc}"
            ) from None


@click.group(cls=SeqpipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seqpipe")
def cli() -> None:
    """Recurrent sequence pipelines: speech-to-text and MIDI melody generation.

    \b
    Examples:
      seqpipe transcribe talk.wav -f srt
      seqpipe generate -o tune.mid --seed 1
      seqpipe train configs/speech/digits-base.yaml --out runs/digits-base
      seqpipe plugins
    """


_commands_added = False


def build_cli() -> click.Group:
    global _commands_added
    if not _commands_added:
        from seqpipe import plugins

        plugins.add_commands(cli)
        _commands_added = True
    return cli


def main(argv: list[str] | None = None) -> None:
    build_cli().main(args=argv, prog_name="seqpipe")
