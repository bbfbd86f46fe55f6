"""The one exception type the CLI turns into a clean one-line message."""


class SeqpipeError(Exception):
    """A user-facing error: bad input, unknown name, invalid config, missing plugin.

    The message should name the file (or name) and the problem in one line.
    """


def printable(text: object) -> str:
    """``text`` with control characters (ANSI escapes, newlines) written as escapes, so a
    name read from a file cannot drive the terminal or break a one-line message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
