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
* ``shape`` (models only): which contract the model meets, one of ``many-to-many``,
  ``many-to-one``, ``autoregressive``, ``seq2seq`` (or a tuple of them); a task checks it
  when the pipeline is built and says what it needs (``registry.SHAPES``).

Constructors take their options as keyword arguments with type hints; seqpipe
validates config values against those hints. Arguments the task wires (``input_size``,
``output_size``, ``vocab_size``, ``vocab``, ``blank``) are filled in by the pipeline, not
by the user, and so are ``build_model`` (a factory for models that hold other models)
and ``build_cell`` (a factory for the recurrent core a ``cell:`` option names). An option
without a type hint accepts anything, so loading such a component prints a warning.
The contracts components meet: ``models/core.py`` (recurrent cores), ``tasks/base.py``,
``features/base.py``, ``decoders/base.py`` and docs/architecture.md; ``seqpipe.testing``
checks a component against its contract.
"""

import pluggy

hookspec = pluggy.HookspecMarker("seqpipe")
hookimpl = pluggy.HookimplMarker("seqpipe")


@hookspec
def register_features(register):
    """Register feature extractors / encoders: raw input -> model input (audio -> log-mel, MIDI -> tokens)."""


@hookspec
def register_models(register):
    """Register sequence models (``torch.nn.Module`` subclasses), each with its ``shape``."""


@hookspec
def register_cells(register):
    """Register recurrent cores, usable as ``cell:`` in ``classifier``, ``rnn_lm``,
    ``seq2seq`` and ``ctc_rnn``: ``forward(x[B,T,F], lengths) -> (y[B,T,H], lengths)``,
    ``output_size``, optionally ``bidirectional``, ``initial_state``/``step``/``reorder_state``
    (the contract is ``seqpipe/models/core.py``)."""


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
