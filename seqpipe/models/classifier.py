"""Many-to-one ``classifier``: a recurrent encoder pooled to one vector, then logits.

``forward(x[B,T,F], lengths[B]) -> logits[B,C]`` (C = ``output_size``, wired by the
task), for whole-utterance labels such as spoken digits or music genre. Pooling:

* ``last``: the final features of each direction at each sequence's own end
  (the forward direction's last real frame, the backward direction's first frame);
* ``mean``: the average over real frames (robust, the usual default);
* ``attention``: a learned weighted mean (:class:`AttentionPooling`); the weights say
  which frames decided, ``forward(..., return_attention=True)`` returns them.

``cell`` is any recurrent core (``models/core.py``): ``lstm``, ``gru``, ``rnn`` or a plugin's.
"""

from typing import Literal

import torch
from torch import nn

from seqpipe.models.attention import AttentionPooling, lengths_to_mask
from seqpipe.models.core import BuildCell, CellSpec, last_frames, make_core
from seqpipe.types import NonNegativeInt, PositiveInt, Probability


class RecurrentClassifier(nn.Module):
    def __init__(
        self,
        input_size: int,
        output_size: int,
        cell: CellSpec = "lstm",
        hidden_size: PositiveInt = 128,
        num_layers: PositiveInt = 2,
        bidirectional: bool = True,
        dropout: Probability = 0.0,
        input_dropout: Probability = 0.0,
        input_projection: NonNegativeInt = 0,
        pooling: Literal["mean", "last", "attention"] = "mean",
        attention_size: PositiveInt = 128,
        build_cell: BuildCell | None = None,
    ):
        super().__init__()
        self.pooling = pooling
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_proj = nn.Linear(input_size, input_projection) if input_projection else None
        self.stack = make_core(
            cell,
            build_cell,
            who="classifier",
            input_size=input_projection or input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        self.bidirectional = bool(getattr(self.stack, "bidirectional", False))
        features = self.stack.output_size
        self.pool = AttentionPooling(features, attention_size) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, return_attention: bool = False):
        x = self.input_dropout(x)
        if self.input_proj is not None:
            x = self.input_proj(x)
        out, _ = self.stack(x, lengths)
        lengths = torch.as_tensor(lengths).to(out.device)
        weights = None
        if self.pooling == "last":
            pooled = last_frames(out, lengths, self.bidirectional)
        elif self.pooling == "mean":
            mask = lengths_to_mask(lengths, out.shape[1]).unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / lengths.unsqueeze(1).to(out.dtype)
        else:
            pooled, weights = self.pool(out, lengths_to_mask(lengths, out.shape[1]))
        logits = self.head(self.dropout(pooled))
        return (logits, weights) if return_attention else logits
