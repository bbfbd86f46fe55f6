"""minGRU / minLSTM as seqpipe recurrent cores (``cell: mingru`` in any composite model).

The core contract (``seqpipe/models/core.py``): ``forward(x[B,T,F], lengths) ->
(y[B,T,H], lengths)``, ``output_size``, ``bidirectional``, and for generation
``initial_state`` / ``step`` / ``reorder_state``. seqpipe's ``classifier``, ``rnn_lm``,
``seq2seq`` and ``ctc_rnn`` put the embedding, pooling, heads and CTC projection around it.
"""

from __future__ import annotations

import torch
from seqpipe.errors import SeqpipeError
from seqpipe.types import NonNegativeInt, PositiveInt, Probability
from torch import nn

from seqpipe_minrnn.stack import MinRNNStack


class MinRNNCore(nn.Module):
    """Linear input projection -> residual min-RNN blocks -> LayerNorm; y is [B, T, hidden_size].

    Unidirectional blocks are causal, so padding after a sequence cannot change its
    outputs; bidirectional ones reverse each sequence within its own length.
    """

    cell = "gru"  # subclasses pick the cell; it is not a config option

    def __init__(
        self,
        input_size: int,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        mlp_ratio: NonNegativeInt = 2,
    ):
        super().__init__()
        self.input = nn.Linear(input_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.stack = MinRNNStack(
            self.cell, hidden_size, num_layers, mlp_ratio, dropout, bidirectional
        )
        self.output_size = hidden_size
        self.bidirectional = bidirectional

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.as_tensor(lengths)
        steps = x.shape[1]
        if lengths.shape != x.shape[:1] or not bool(((lengths >= 1) & (lengths <= steps)).all()):
            raise SeqpipeError(
                f"min{self.cell}: lengths must be {x.shape[0]} values in [1, {steps}], "
                f"got {lengths.tolist()}"
            )
        return self.stack(self.dropout(self.input(x)), lengths), lengths

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """[num_layers, B, hidden_size] zeros, as nn.GRU's."""
        return self.stack.initial_state(batch_size, device).to(self.input.weight.dtype)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame x [B, F] -> (y [B, hidden_size], new state); O(1) per step."""
        return self.stack.step(self.dropout(self.input(x)), state)

    def reorder_state(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` of the state (beam search); the batch dimension is 1."""
        return state.index_select(1, index)


class MinGRU(MinRNNCore):
    """Stacked minGRU blocks."""

    cell = "gru"


class MinLSTM(MinRNNCore):
    """Stacked minLSTM blocks."""

    cell = "lstm"
