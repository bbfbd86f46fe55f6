"""Built-in tasks, registered through the same hook as third-party ones."""

from seqpipe.hookspecs import hookimpl


@hookimpl
def register_tasks(register):
    pass
