"""minGRU and minLSTM cells (Feng et al. 2024, "Were RNNs All We Needed?").

Their gates see only the current input, not the previous state, so a whole sequence
is one parallel scan (:mod:`seqpipe_minrnn.scan`) in training, and one cheap update
per token (:meth:`step`) in generation. Both keep their state positive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqpipe_minrnn.scan import g, log_g, parallel_scan_log


class MinGRUCell(nn.Module):
    """``h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t)`` with ``z_t = sigmoid(W_z x_t)``."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(input_size, 2 * hidden_size)  # gate and candidate, fused

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D] -> h [B, T, H]; ``h0`` [B, H] (positive) or None for zeros."""
        k, pre_h = self.linear(x).chunk(2, dim=-1)
        log_z = -F.softplus(-k)  # log sigmoid(k)
        log_one_minus_z = -F.softplus(k)  # log (1 - sigmoid(k))
        log_h0 = None if h0 is None else h0.log()
        return parallel_scan_log(log_one_minus_z, log_z + log_g(pre_h), log_h0)

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One time step: x [B, D], h [B, H] -> new h [B, H]."""
        k, pre_h = self.linear(x).chunk(2, dim=-1)
        z = torch.sigmoid(k)
        return (1 - z) * h + z * g(pre_h)


class MinLSTMCell(nn.Module):
    """``h_t = f'_t h_{t-1} + i'_t g(W_h x_t)``, forget and input gates normalised to sum 1."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(input_size, 3 * hidden_size)  # forget, input, candidate

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D] -> h [B, T, H]; ``h0`` [B, H] (positive) or None for zeros."""
        k_f, k_i, pre_h = self.linear(x).chunk(3, dim=-1)
        diff = F.softplus(-k_f) - F.softplus(-k_i)  # log i - log f
        log_f = -F.softplus(diff)  # log f / (f + i)
        log_i = -F.softplus(-diff)  # log i / (f + i)
        log_h0 = None if h0 is None else h0.log()
        return parallel_scan_log(log_f, log_i + log_g(pre_h), log_h0)

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One time step: x [B, D], h [B, H] -> new h [B, H]."""
        k_f, k_i, pre_h = self.linear(x).chunk(3, dim=-1)
        f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
        return (f * h + i * g(pre_h)) / (f + i)


CELLS = {"gru": MinGRUCell, "lstm": MinLSTMCell}
