"""Autoregressive token language models on minGRU / minLSTM (e.g. for melody generation).

Training runs the whole sequence as parallel scans; generation calls :meth:`step`,
whose cost per token does not grow with the length generated so far. seqpipe's
sampling and beam-search decoders also call :meth:`reorder_state` to pick batch rows.
"""

from __future__ import annotations

import torch
from seqpipe.types import NonNegativeInt, PositiveInt, Probability
from torch import nn

from seqpipe_minrnn.stack import MinRNNStack


class MinRNNLM(nn.Module):
    """tokens [B, T] -> next-token logits [B, T, V]; state is [num_layers, B, hidden_size]."""

    cell = "gru"  # subclasses pick the cell; it is not a config option

    def __init__(
        self,
        vocab_size: int,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        dropout: Probability = 0.0,
        mlp_ratio: NonNegativeInt = 2,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.stack = MinRNNStack(self.cell, hidden_size, num_layers, mlp_ratio, dropout)
        self.head = nn.Linear(hidden_size, vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Causal, so ``lengths`` is not needed: padding only follows the real tokens."""
        x = self.embed(tokens.clamp(min=0))  # padding ids (e.g. -100) never matter
        return self.head(self.stack(self.dropout(x)))

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        state = self.stack.initial_state(batch_size, device)
        return state.to(self.head.weight.dtype)

    def reorder_state(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` of the state (beam search); the batch dimension is 1, as in nn.GRU."""
        return state.index_select(1, index)

    def step(self, token: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """token [B] long -> (logits [B, V], new state)."""
        h, state = self.stack.step(self.dropout(self.embed(token.clamp(min=0))), state)
        return self.head(h), state


class MinGRULM(MinRNNLM):
    """minGRU token language model."""

    cell = "gru"


class MinLSTMLM(MinRNNLM):
    """minLSTM token language model."""

    cell = "lstm"
