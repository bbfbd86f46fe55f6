"""Frame-aligned (many-to-many) minGRU / minLSTM models, e.g. for CTC speech recognition."""

from __future__ import annotations

import torch
from seqpipe.errors import SeqpipeError
from seqpipe.types import NonNegativeInt, PositiveInt, Probability
from torch import nn

from seqpipe_minrnn.stack import MinRNNStack


class MinRNN(nn.Module):
    """x [B, T, F] -> y [B, T, O]; one output per input frame, lengths unchanged.

    Unidirectional layers are causal, so padding after a sequence cannot change its
    outputs; bidirectional ones reverse each sequence within its own length.
    """

    cell = "gru"  # subclasses pick the cell; it is not a config option

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        dropout: Probability = 0.0,
        mlp_ratio: NonNegativeInt = 2,
        bidirectional: bool = False,
    ):
        super().__init__()
        self.input = nn.Linear(input_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.stack = MinRNNStack(
            self.cell, hidden_size, num_layers, mlp_ratio, dropout, bidirectional
        )
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.as_tensor(lengths)
        steps = x.shape[1]
        if lengths.shape != x.shape[:1] or not bool(((lengths >= 1) & (lengths <= steps)).all()):
            raise SeqpipeError(
                f"{type(self).__name__.lower()}: lengths must be {x.shape[0]} values in "
                f"[1, {steps}], got {lengths.tolist()}"
            )
        h = self.stack(self.dropout(self.input(x)), lengths)
        return self.head(h), lengths


class MinGRU(MinRNN):
    """Stacked minGRU blocks, many-to-many."""

    cell = "gru"


class MinLSTM(MinRNN):
    """Stacked minLSTM blocks, many-to-many."""

    cell = "lstm"
