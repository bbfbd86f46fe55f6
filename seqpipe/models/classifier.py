"""Many-to-one ``classifier``: a recurrent encoder pooled to one vector, then logits.

``forward(x[B,T,F], lengths[B]) -> logits[B,C]`` (C = ``output_size``, wired by the
task), for whole-utterance labels such as spoken digits or music genre. Pooling:

* ``last``: the final hidden state of each direction at each sequence's own end
  (the forward direction's last real frame, the backward direction's first frame);
* ``mean``: the average over real frames (robust, the usual default);
* ``attention``: a learned weighted mean (:class:`AttentionPooling`); the weights say
  which frames decided, ``forward(..., return_attention=True)`` returns them.
"""

from typing import Literal

import torch
from torch import nn

from seqpipe.models.attention import AttentionPooling, lengths_to_mask
from seqpipe.models.rnn import Cell, RecurrentStack
from seqpipe.types import NonNegativeInt, PositiveInt, Probability


class RecurrentClassifier(nn.Module):
    def __init__(
        self,
        input_size: int,
        output_size: int,
        cell: Cell = "lstm",
        hidden_size: PositiveInt = 128,
        num_layers: PositiveInt = 2,
        bidirectional: bool = True,
        dropout: Probability = 0.0,
        input_dropout: Probability = 0.0,
        input_projection: NonNegativeInt = 0,
        pooling: Literal["mean", "last", "attention"] = "mean",
        attention_size: PositiveInt = 128,
    ):
        super().__init__()
        self.pooling = pooling
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_proj = nn.Linear(input_size, input_projection) if input_projection else None
        self.stack = RecurrentStack(
            cell, input_projection or input_size, hidden_size, num_layers, bidirectional, dropout
        )
        features = self.stack.output_size
        self.pool = AttentionPooling(features, attention_size) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, return_attention: bool = False):
        x = self.input_dropout(x)
        if self.input_proj is not None:
            x = self.input_proj(x)
        out, state = self.stack(x, lengths)
        lengths = lengths.to(out.device)
        weights = None
        if self.pooling == "last":
            h = state[0] if isinstance(state, tuple) else state  # [layers*dirs, B, H]
            dirs = 2 if self.stack.rnn.bidirectional else 1
            pooled = torch.cat(list(h[-dirs:]), dim=-1)  # top layer, every direction
        elif self.pooling == "mean":
            pooled = out.sum(1) / lengths.unsqueeze(1).to(out.dtype)  # padding is zero
        else:
            pooled, weights = self.pool(out, lengths_to_mask(lengths, out.shape[1]))
        logits = self.head(self.dropout(pooled))
        return (logits, weights) if return_attention else logits
