"""The recurrent-core contract: what ``cell:`` names in ``classifier``, ``rnn_lm``,
``seq2seq`` and ``ctc_rnn``.

A core turns a padded batch of frames into a padded batch of features, one per frame::

    forward(x[B,T,F], lengths[B]) -> (y[B,T,H], lengths[B])    # H = core.output_size

and a composite model puts the rest around it (embedding or input projection, pooling,
heads, CTC projection, attention, ``step()`` plumbing). Cores register with the
``register_cells`` hook, like seqpipe's own ``lstm``, ``gru`` and ``rnn``
(``models/rnn.py``), and a recipe names one as ``cell: mingru`` or, with options of the
core's own, ``cell: {name: mingru, mlp_ratio: 4}``.

The composite hands the core its sizes: ``input_size``, ``hidden_size``, ``num_layers``,
``bidirectional`` and ``dropout``, each only if the core's constructor takes it (so a
core that has no ``bidirectional`` parameter cannot be asked for one). A recipe cannot
set those inside ``cell:``; they are the composite's options.

Optional parts, needed only by some composites:

* ``bidirectional: bool`` (default False): the second half of ``y``'s features runs
  backwards; ``ctc_rnn`` requires it, ``classifier``'s ``last`` pooling reads it.
* ``initial_state(batch_size, device) -> state``, ``step(x[B,F], state) -> (y[B,H], state)``:
  O(1) work per step, equal to ``forward`` frame by frame (``seqpipe.testing`` checks
  this); ``rnn_lm`` generation needs them.
* ``reorder_state(state, index[B']) -> state``: pick batch rows (beam search). Without
  it, every tensor in ``state`` (nested tuples/lists/dicts) is indexed on dimension 1,
  the batch dimension of an nn.LSTM/GRU state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, Union, runtime_checkable

import torch
from torch import nn

from seqpipe.errors import SeqpipeError

#: what ``cell:`` accepts: a core's name, or a mapping with ``name`` and the core's options
CellSpec = Union[str, dict[str, Any]]  # noqa: UP007 (pydantic reads it at runtime)
#: the factory the pipeline wires into composites: ``build_cell(spec, **sizes) -> core``
BuildCell = Callable[..., nn.Module]
#: the sizes a composite offers a core's constructor
SIZES = ("input_size", "hidden_size", "num_layers", "bidirectional", "dropout")
BUILTIN_CELLS = {
    "lstm": "LSTMCore",
    "gru": "GRUCore",
    "rnn": "RNNCore",
}


@runtime_checkable
class RecurrentCore(Protocol):
    """The required part of the contract (the optional methods are listed above)."""

    output_size: int

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def cell_name(spec: CellSpec) -> str:
    return str(spec["name"]) if isinstance(spec, dict) else str(spec)


def make_core(cell: CellSpec, build_cell: BuildCell | None, *, who: str, **sizes: Any) -> nn.Module:
    """Build the core ``cell`` names with ``sizes`` (those in ``SIZES``).

    ``build_cell`` is what the pipeline wires (any registered core); a model built by
    hand, without it, can use the built-in ``lstm``/``gru``/``rnn`` only.
    """
    name = cell_name(cell)
    if build_cell is not None:
        core = build_cell(cell, **sizes)
    elif name in BUILTIN_CELLS:
        from seqpipe.models import rnn

        options = {k: v for k, v in cell.items() if k != "name"} if isinstance(cell, dict) else {}
        core = getattr(rnn, BUILTIN_CELLS[name])(**sizes, **options)
    else:
        raise SeqpipeError(
            f"{who}: cell '{name}' is not built in (lstm, gru, rnn); plugin cells need the "
            "model built by a pipeline (Pipeline.from_config), which passes build_cell"
        )
    if not isinstance(getattr(core, "output_size", None), int):
        raise SeqpipeError(f"{who}: cell '{name}' has no integer output_size")
    if sizes.get("bidirectional") and not getattr(core, "bidirectional", False):
        raise SeqpipeError(
            f"{who}: cell '{name}' cannot run bidirectionally (bidirectional: true asks for it)"
        )
    return core


def needs_step(core: nn.Module, name: str, who: str) -> None:
    """Fail with one line if ``core`` cannot generate step by step."""
    missing = [m for m in ("initial_state", "step") if not callable(getattr(core, m, None))]
    if missing or getattr(core, "bidirectional", False):
        why = "is bidirectional" if not missing else f"has no {' or '.join(missing)}()"
        raise SeqpipeError(f"{who}: cell '{name}' {why}, so it cannot generate step by step")


def reorder_state(core: nn.Module, state: Any, index: torch.Tensor) -> Any:
    """``core.reorder_state`` if it has one, else index every tensor on dimension 1."""
    if callable(getattr(core, "reorder_state", None)):
        return core.reorder_state(state, index)
    return _index_dim1(state, index)


def _index_dim1(state: Any, index: torch.Tensor) -> Any:
    if isinstance(state, torch.Tensor):
        return state.index_select(1, index)
    if isinstance(state, dict):
        return {k: _index_dim1(v, index) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(_index_dim1(v, index) for v in state)
    return state


def last_frames(y: torch.Tensor, lengths: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """Each sequence's final features [B,H]: the forward half at its last real frame and,
    bidirectional, the backward half at frame 0 (where the backward pass ends)."""
    last = (lengths.to(y.device) - 1).view(-1, 1, 1).expand(-1, 1, y.shape[2])
    end = y.gather(1, last).squeeze(1)
    if not bidirectional:
        return end
    half = y.shape[2] // 2
    return torch.cat([end[:, :half], y[:, 0, half:]], dim=-1)


class Encoder(nn.Module):
    """input dropout -> [input projection] -> core -> dropout: a core as a frame encoder.

    The attribute names match ``RecurrentFrameModel`` without its heads, so a built-in
    core's weights keep their keys (``input_proj.*``, ``stack.rnn.*``).
    """

    def __init__(
        self, core_of: Callable[[int], nn.Module], input_size: int, input_projection: int = 0,
        dropout: float = 0.0, input_dropout: float = 0.0,
    ):  # fmt: skip
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_proj = nn.Linear(input_size, input_projection) if input_projection else None
        self.stack = core_of(input_projection or input_size)
        self.dropout = nn.Dropout(dropout)
        self.output_size = self.stack.output_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.input_dropout(x)
        if self.input_proj is not None:
            x = self.input_proj(x)
        y, lengths = self.stack(x, lengths)
        return self.dropout(y), lengths
