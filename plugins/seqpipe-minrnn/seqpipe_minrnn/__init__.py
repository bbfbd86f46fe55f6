"""seqpipe-minrnn: minGRU and minLSTM recurrent cores for seqpipe, loaded as a plugin.

They register as cells, so any of seqpipe's composite models can run on them:
``model: {name: rnn_lm, cell: mingru}``, ``{name: classifier, cell: minlstm}``,
``{name: ctc_rnn, cell: {name: mingru, mlp_ratio: 4}}``.

Importing this module must stay cheap (``seqpipe plugins`` imports every plugin), so
it registers import strings and torch loads only when a core is built.
"""

from collections.abc import Callable

import seqpipe

__version__ = "0.2.0"

CELLS = {
    "mingru": ("seqpipe_minrnn.core:MinGRU", "minGRU blocks, parallel-scan training, O(1) step"),
    "minlstm": ("seqpipe_minrnn.core:MinLSTM", "minLSTM blocks, parallel-scan training, O(1) step"),
}


@seqpipe.hookimpl
def register_cells(register: Callable[..., None]) -> None:
    for name, (target, help) in CELLS.items():
        register(name, target, help=help)
