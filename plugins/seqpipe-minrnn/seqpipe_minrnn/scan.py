"""The log-space parallel scan that lets minGRU and minLSTM train without a loop over time.

Both cells compute ``h_t = a_t * h_{t-1} + b_t`` where ``a_t`` in (0, 1) and ``b_t > 0``
depend on the input only, never on ``h_{t-1}``. Unrolled, that is
``h_t = A_t * (h_0 + sum_{s<=t} b_s / A_s)`` with ``A_t = a_1 * ... * a_t``: a cumulative
sum followed by a cumulative log-sum-exp once written in logs (Heinsen 2023; Feng et al.
2024, appendix). Logs keep products of hundreds of gates from underflowing, which is
also why the candidate state goes through ``g`` below: it must stay positive.

``torch.logcumsumexp`` is exact but slow on CPU (a scalar loop, about 3x the rest of a
layer's forward and backward), so :func:`logcumsumexp` does most of the work with
vectorised ``exp``/``cumsum``/``log`` inside blocks and falls back to it only when a
block's values span too wide a range for float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def g(x: torch.Tensor) -> torch.Tensor:
    """A positive, continuous stand-in for the identity (``x + 0.5`` above 0, sigmoid below)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: torch.Tensor) -> torch.Tensor:
    """``log(g(x))`` computed without ever taking the log of a tiny number."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


BLOCK = 32
SAFE_RANGE = 80.0  # exp(-80) is still a normal float32; exp(-88) is not


def logcumsumexp(v: torch.Tensor) -> torch.Tensor:
    """``torch.logcumsumexp(v, dim=1)`` for v [B, T, H], computed blockwise when that is exact.

    Inside a block of ``BLOCK`` steps: ``log(cumsum(exp(v - m))) + m`` with m the block's
    maximum; across blocks: an exact logcumsumexp over the T / BLOCK block totals. If any
    value sits more than ``SAFE_RANGE`` below its block's maximum, exp would underflow,
    so the whole call goes to ``torch.logcumsumexp``.
    """
    batch, steps, hidden = v.shape
    blocks = -(-steps // BLOCK)
    w = F.pad(v, (0, 0, 0, blocks * BLOCK - steps), value=float("-inf"))
    w = w.view(batch, blocks, BLOCK, hidden)
    m = w.detach().amax(dim=2, keepdim=True)  # the result does not depend on m: no gradient
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    if bool(((m - w.detach()) > SAFE_RANGE).logical_and_(torch.isfinite(w.detach())).any()):
        return torch.logcumsumexp(v, dim=1)
    local = torch.log(torch.cumsum(torch.exp(w - m), dim=2)) + m
    carry = torch.logcumsumexp(local[:, :, -1], dim=1)  # totals of blocks 0..k
    carry = F.pad(carry, (0, 0, 1, 0), value=float("-inf"))[:, :-1]  # of blocks before k
    out = torch.logaddexp(carry.unsqueeze(2), local)
    return out.view(batch, blocks * BLOCK, hidden)[:, :steps]


def parallel_scan_log(
    log_a: torch.Tensor, log_b: torch.Tensor, log_h0: torch.Tensor | None = None
) -> torch.Tensor:
    """All ``h_t`` of ``h_t = a_t h_{t-1} + b_t`` from ``log a``, ``log b`` ([B, T, H]).

    ``log_h0`` ([B, H]) is the log of the state before the first step; None means
    ``h_0 = 0`` (pass None rather than log 0, whose gradient is NaN). Returns ``h`` as
    [B, T, H]. Causal: ``h_t`` depends on steps <= t only (up to float rounding, since a
    block's shift ``m`` may come from later steps).
    """
    if log_h0 is not None:
        # h_0 enters as an extra first value whose coefficient is 1 (log 1 = 0).
        log_a = F.pad(log_a, (0, 0, 1, 0))
        log_b = torch.cat([log_h0.unsqueeze(1), log_b], dim=1)
    a_star = torch.cumsum(log_a, dim=1)  # log A_t
    log_h = a_star + logcumsumexp(log_b - a_star)
    h = torch.exp(log_h)
    return h if log_h0 is None else h[:, 1:]
