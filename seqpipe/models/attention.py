"""Attention for recurrent models: scoring functions, pooling and self-attention.

Every module takes a boolean ``mask`` (True = a real time step, False = padding) and
returns its attention weights next to its output, so they can be plotted. Padded
steps get exactly zero weight. All sequences must have at least one real step.

Shapes: ``B`` batch, ``Q`` queries, ``T`` key/value steps.

* :class:`AdditiveAttention` (Bahdanau et al. 2015): ``v . tanh(W q + U k)``.
* :class:`DotProductAttention` (Luong et al. 2015 / Vaswani et al. 2017): ``q . k / sqrt(d)``.
* :class:`LocationAwareAttention` (Chorowski et al. 2015): additive plus a convolution
  over the previous step's weights, so the decoder knows where it last looked (LAS).
* :class:`AttentionPooling`: many-to-one, a learned query over the whole sequence.
* :class:`SelfAttention`: many-to-many, every step attends to every real step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """[B] lengths -> [B, T] bool mask, True on real steps."""
    max_len = int(lengths.max()) if max_len is None else max_len
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last dim with padded positions forced to weight 0.

    ``mask`` broadcasts against ``scores`` ([B, T] is treated as [B, 1, T] for 3-d scores).
    """
    if mask is not None:
        while mask.dim() < scores.dim():
            mask = mask.unsqueeze(-2)
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def _as_queries(query: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Accept one query per item [B, D] or several [B, Q, D]; return [B, Q, D] and a flag."""
    if query.dim() == 2:
        return query.unsqueeze(1), True
    return query, False


def _finish(context: torch.Tensor, weights: torch.Tensor, single: bool):
    return (context.squeeze(1), weights.squeeze(1)) if single else (context, weights)


class AdditiveAttention(nn.Module):
    """Bahdanau attention: score(q, k) = v . tanh(W q + U k).

    ``forward(query[B,Dq] or [B,Q,Dq], keys[B,T,Dk], mask[B,T])`` ->
    ``(context[B,(Q,)Dk], weights[B,(Q,)T])``. The context is a weighted sum of ``keys``.
    Call :meth:`process_keys` once per utterance and pass the result as ``processed``
    to avoid re-projecting the keys at every decoder step.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int = 128):
        super().__init__()
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)
        self.key_proj = nn.Linear(key_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def process_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return self.key_proj(keys)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor | None = None,
        processed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        query, single = _as_queries(query)
        processed = self.process_keys(keys) if processed is None else processed
        energy = torch.tanh(self.query_proj(query).unsqueeze(2) + processed.unsqueeze(1))
        weights = masked_softmax(self.v(energy).squeeze(-1), mask)  # [B, Q, T]
        return _finish(weights @ keys, weights, single)


class DotProductAttention(nn.Module):
    """Scaled dot-product attention: score(q, k) = (W q) . k / sqrt(Dk).

    The query is projected to the key size when the two differ (Luong's "general" score).
    Same call signature and outputs as :class:`AdditiveAttention`.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int = 0):
        super().__init__()
        # attention_size is accepted for a uniform constructor; the score lives in key space
        self.query_proj = (
            nn.Identity() if query_size == key_size else nn.Linear(query_size, key_size, bias=False)
        )
        self.scale = 1.0 / math.sqrt(key_size)

    def process_keys(self, keys: torch.Tensor) -> torch.Tensor:
        return keys

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor | None = None,
        processed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        query, single = _as_queries(query)
        scores = self.query_proj(query) @ keys.transpose(1, 2) * self.scale  # [B, Q, T]
        weights = masked_softmax(scores, mask)
        return _finish(weights @ keys, weights, single)


class LocationAwareAttention(AdditiveAttention):
    """Chorowski et al. (2015): score = v . tanh(W q + U k + V conv(previous weights)).

    Additive attention plus a location term, so it shares W, U and v with its parent.

    The convolution over the previous alignment lets the score prefer moving forward
    from where the decoder last looked, which keeps long utterances aligned. It needs
    the previous weights, so it takes one query per item: ``query[B,Dq]``,
    ``previous[B,T]`` (zeros, or a one-hot on step 0, at the first decoder step; LAS
    and Tacotron 2 pass the cumulative sum of all previous weights instead).
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        attention_size: int = 128,
        channels: int = 10,
        kernel_size: int = 31,
    ):
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd so the convolution keeps the length")
        super().__init__(query_size, key_size, attention_size)  # W, U, v and process_keys
        self.conv = nn.Conv1d(1, channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.location_proj = nn.Linear(channels, attention_size, bias=False)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
        processed: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if query.dim() != 2:
            raise ValueError("location-aware attention takes one query per item: [B, D]")
        processed = self.process_keys(keys) if processed is None else processed
        if previous is None:
            previous = keys.new_zeros(keys.shape[:2])
        location = self.location_proj(self.conv(previous.unsqueeze(1)).transpose(1, 2))
        energy = torch.tanh(self.query_proj(query).unsqueeze(1) + processed + location)
        weights = masked_softmax(self.v(energy).squeeze(-1), mask)  # [B, T]
        return (weights.unsqueeze(1) @ keys).squeeze(1), weights


ATTENTION = {
    "additive": AdditiveAttention,
    "dot": DotProductAttention,
    "location": LocationAwareAttention,
}


class AttentionPooling(nn.Module):
    """Many-to-one pooling: a weighted mean whose weights a small MLP learns.

    ``forward(x[B,T,D], mask[B,T]) -> (pooled[B,D], weights[B,T])``; the weights show
    which frames decided the class.
    """

    def __init__(self, input_size: int, attention_size: int = 128):
        super().__init__()
        self.proj = nn.Linear(input_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weights = masked_softmax(self.v(torch.tanh(self.proj(x))).squeeze(-1), mask)
        return (weights.unsqueeze(1) @ x).squeeze(1), weights


class SelfAttention(nn.Module):
    """Multi-head self-attention over (bidirectional) recurrent outputs, residual + LayerNorm.

    Gives every frame direct access to the whole utterance, on top of what the
    recurrence carried. Padded keys are masked, so real frames never see padding.
    ``forward(x[B,T,D], mask[B,T]) -> (y[B,T,D], weights[B,H,T,T])``.
    """

    def __init__(self, size: int, num_heads: int = 1, dropout: float = 0.0):
        super().__init__()
        if size % num_heads:
            raise ValueError(f"size {size} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(size, 3 * size)
        self.out = nn.Linear(size, size)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(size)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, D = x.shape
        H = self.num_heads
        q, k, v = self.qkv(x).split(D, dim=-1)
        q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))  # [B, H, T, d]
        scores = q @ k.transpose(-1, -2) / math.sqrt(D // H)  # [B, H, T, T]
        weights = masked_softmax(scores, None if mask is None else mask[:, None, None, :])
        y = (self.dropout(weights) @ v).transpose(1, 2).reshape(B, T, D)
        return self.norm(x + self.dropout(self.out(y))), weights


def local_window_attention(
    attention: AdditiveAttention, outputs: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention of each step over the last ``window`` outputs (itself included).

    Parallel over time for training: ``outputs[B,T,D] -> (context[B,T,D], weights[B,T,window])``;
    weights[..., -1] is the current step, weights[..., 0] the oldest. Steps before the
    start of the sequence are masked.
    """
    B, T, D = outputs.shape
    keys = attention.process_keys(outputs)  # [B, T, A]
    pad = window - 1
    # windows[b, t, j] = step t - pad + j (zero padding on the left is masked out)
    win_values = F.pad(outputs, (0, 0, pad, 0)).unfold(1, window, 1).transpose(-1, -2)
    win_keys = F.pad(keys, (0, 0, pad, 0)).unfold(1, window, 1).transpose(-1, -2)
    position = (
        torch.arange(T, device=outputs.device).unsqueeze(1)
        - pad
        + torch.arange(window, device=outputs.device)
    )
    mask = (position >= 0).unsqueeze(0).expand(B, T, window)
    energy = torch.tanh(attention.query_proj(outputs).unsqueeze(2) + win_keys)  # [B, T, W, A]
    weights = masked_softmax(attention.v(energy).squeeze(-1), mask)
    context = (weights.unsqueeze(2) @ win_values).squeeze(2)
    return context, weights
