"""The one exception type the CLI turns into a clean one-line message."""


class SeqpipeError(Exception):
    """A user-facing error: bad input, unknown name, invalid config, missing plugin.

    The message should name the file (or name) and the problem in one line.
    """
