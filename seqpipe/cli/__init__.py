"""The ``seqpipe`` command. Subcommands come from plugins, built-ins included.

Only click is imported here; each command imports torch and friends inside its
body, so ``seqpipe --help`` stays fast.
"""

from __future__ import annotations

import errno

import click

from seqpipe import __version__
from seqpipe.errors import ParameterError, SeqpipeError


def flag_spelling(command: click.Command):
    """name -> flag for the options of ``command`` and its subcommands (``max_chunk`` ->
    ``--max-chunk``); a name no option has stays as it is."""
    flags: dict[str, str] = {}
    stack = [command]
    while stack:
        cmd = stack.pop()
        for param in cmd.params:
            if isinstance(param, click.Option):
                flags.setdefault(param.name, max(param.opts, key=len))
        stack += getattr(cmd, "commands", {}).values()
    return lambda name: flags.get(name, name)


class SeqpipeGroup(click.Group):
    """Turns SeqpipeError (and an unexpected OSError) into a one-line message and exit code 1;
    a ParameterError names the command's flag."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ParameterError as exc:
            command = self.get_command(ctx, ctx.invoked_subcommand or "") or self
            raise click.ClickException(exc.spelled(flag_spelling(command))) from None
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
