"""seqpipe-minrnn: minGRU and minLSTM models for seqpipe, loaded as a plugin.

Importing this module must stay cheap (``seqpipe plugins`` imports every plugin), so
it registers import strings and torch loads only when a model is built.
"""

from collections.abc import Callable

import seqpipe

__version__ = "0.1.0"

MODELS = {
    "mingru": ("seqpipe_minrnn.frame:MinGRU", "minGRU blocks, many-to-many, parallel scan"),
    "minlstm": ("seqpipe_minrnn.frame:MinLSTM", "minLSTM blocks, many-to-many, parallel scan"),
    "mingru_lm": ("seqpipe_minrnn.lm:MinGRULM", "minGRU token LM, parallel-scan training"),
    "minlstm_lm": ("seqpipe_minrnn.lm:MinLSTMLM", "minLSTM token LM, parallel-scan training"),
}


@seqpipe.hookimpl
def register_models(register: Callable[..., None]) -> None:
    for name, (target, help) in MODELS.items():
        register(name, target, help=help)
