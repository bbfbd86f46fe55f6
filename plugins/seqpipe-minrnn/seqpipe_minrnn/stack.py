"""Residual blocks of min-RNN layers: nanoGPT's block with the RNN in attention's place.

Each block mixes over time with a minGRU/minLSTM and over channels with an MLP, both
pre-norm and residual: the nanoGPT-style stacking Feng et al. use for language models.
"""

from __future__ import annotations

import torch
from torch import nn

from seqpipe_minrnn.cells import CELLS


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x [B, T, ...] within its own length; padding stays last.

    Its own inverse. Keeping padding at the end is what stops it leaking into the
    backward direction of a bidirectional layer.
    """
    t = torch.arange(x.shape[1], device=x.device)
    n = lengths.to(x.device).unsqueeze(1)
    index = torch.where(t < n, n - 1 - t, t)  # [B, T]
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class Block(nn.Module):
    """x + RNN(LayerNorm(x)), then x + MLP(LayerNorm(x)); the RNN's output is projected back."""

    def __init__(
        self, cell: str, size: int, mlp_ratio: int, dropout: float, bidirectional: bool = False
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(size)
        self.rnn = CELLS[cell](size, size)
        self.rnn_reverse = CELLS[cell](size, size) if bidirectional else None
        self.proj = nn.Linear(size * (2 if bidirectional else 1), size)
        self.norm2 = nn.LayerNorm(size) if mlp_ratio else None
        self.mlp = (
            nn.Sequential(
                nn.Linear(size, mlp_ratio * size), nn.GELU(), nn.Linear(mlp_ratio * size, size)
            )
            if mlp_ratio
            else None
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]; ``lengths`` is needed only when bidirectional."""
        u = self.norm1(x)
        h = self.rnn(u)
        if self.rnn_reverse is not None:
            back = reverse_padded(self.rnn_reverse(reverse_padded(u, lengths)), lengths)
            h = torch.cat([h, back], dim=-1)
        x = x + self.dropout(self.proj(h))
        if self.mlp is not None:
            x = x + self.dropout(self.mlp(self.norm2(x)))
        return x

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: x [B, D], h [B, D] -> (output [B, D], new h)."""
        h = self.rnn.step(self.norm1(x), h)
        x = x + self.dropout(self.proj(h))
        if self.mlp is not None:
            x = x + self.dropout(self.mlp(self.norm2(x)))
        return x, h


class MinRNNStack(nn.Module):
    """``num_layers`` blocks and a final LayerNorm; state is [num_layers, B, size] like nn.GRU's."""

    def __init__(
        self,
        cell: str,
        size: int,
        num_layers: int,
        mlp_ratio: int,
        dropout: float,
        bidirectional: bool = False,
    ):
        super().__init__()
        self.size = size
        self.bidirectional = bidirectional
        self.blocks = nn.ModuleList(
            Block(cell, size, mlp_ratio, dropout, bidirectional) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, lengths)
        return self.norm(x)

    def initial_state(self, batch_size: int, device: torch.device | str) -> torch.Tensor:
        return torch.zeros(len(self.blocks), batch_size, self.size, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.bidirectional:
            raise ValueError("a bidirectional stack cannot run step by step")
        new_state = []
        for block, h in zip(self.blocks, state, strict=True):
            x, h = block.step(x, h)
            new_state.append(h)
        return self.norm(x), torch.stack(new_state)
