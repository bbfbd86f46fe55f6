"""The one exception type the CLI turns into a clean one-line message."""


class SeqpipeError(Exception):
    """A user-facing error: bad input, unknown name, invalid config, missing plugin.

    The message should name the file (or name) and the problem in one line.
    """


def printable(text: object) -> str:
    """``text`` with control characters (ANSI escapes, newlines) written as escapes, so a
    name read from a file cannot drive the terminal or break a one-line message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


class _Spelled(dict):
    def __init__(self, spell):
        super().__init__()
        self.spell = spell

    def __missing__(self, name: str) -> str:
        return self.spell(name)


class ParameterError(SeqpipeError):
    """A bad argument to a library call, named as the Python API spells it.

    The message reads ``bars 0: length must be positive``; ``problem`` may name other
    parameters as ``{key}``. The ``seqpipe`` commands print the same error with their
    flags instead (``--bars 0: ...``, :meth:`spelled`).
    """

    def __init__(self, parameter: str, problem: str, value: object = None):
        self.parameter, self.problem, self.value = parameter, problem, value
        super().__init__(self.spelled(str))

    def spelled(self, spell) -> str:
        """The message with each parameter name passed through ``spell`` (name -> flag)."""
        name = spell(self.parameter)
        shown = name if self.value is None else f"{name} {printable(self.value)}"
        return f"{shown}: {self.problem.format_map(_Spelled(spell))}"
