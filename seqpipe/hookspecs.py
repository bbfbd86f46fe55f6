"""The seqpipe plugin API.

A plugin is any module or object with functions named like the hooks below,
decorated with ``seqpipe.hookimpl``. Installed packages advertise plugins through
the ``seqpipe`` entry-point group; seqpipe's own components register through
exactly these hooks too (see ``seqpipe/models/__init__.py`` for an example).

Every ``register_*`` hook receives ``register(name, target, help="")``:

* ``name``: what users write in configs and on the command line (``model: {name: lstm}``).
* ``target``: the class (or factory) to build, or an import string
  ``"package.module:Class"``, which keeps ``seqpipe plugins`` and ``seqpipe --help``
  fast because nothing heavy is imported until the component is used.
* ``help``: one line shown by ``seqpipe plugins``.

Constructors take their options as keyword arguments with type hints; seqpipe
validates config values against those hints. Arguments the task wires (``input_size``,
``output_size``, ``vocab_size``, ``vocab``, ``blank``) are filled in by the pipeline, not
by the user, and so is ``build_model`` (a factory for models that hold other models).
The contracts components meet: ``tasks/base.py``, ``features/base.py``,
``decoders/base.py`` and docs/architecture.md.
"""

import pluggy

hookspec = pluggy.HookspecMarker("seqpipe")
hookimpl = pluggy.HookimplMarker("seqpipe")


@hookspec
def register_features(register):
    """Register feature extractors / encoders: raw input -> model input (audio -> log-mel, MIDI -> tokens)."""


@hookspec
def register_models(register):
    """Register sequence models (``torch.nn.Module`` subclasses)."""


@hookspec
def register_decoders(register):
    """Register decoders: model outputs -> text, labels or token sequences."""


@hookspec
def register_tasks(register):
    """Register tasks: a task defines the data, the loss, the metrics and how components are wired."""


@hookspec
def register_bundles(register):
    """Register pretrained bundles by name (``target`` is a path to a ``.safetensors`` bundle)."""


@hookspec
def register_commands(cli):
    """Add subcommands to the ``seqpipe`` click group, e.g. ``@cli.command()``."""
