"""``ctc_ensemble``: several CTC models of one config whose frame posteriors are averaged.

Small models trained from scratch with different seeds err on different clips of a
speaker they never heard (two seeds of the digits recipe: 4.0 and 7.6 % WER on one real
speaker), and the mean of their posteriors decodes more reliably than a seed drawn at
random (docs/lab/speech-log.md#digits). The members read the pipeline's one feature front
end, so they must have been trained on the same features; ``scripts/make_bundle.py
--ensemble`` builds one from trained runs. Every CTC decoder works on it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import torch
from annotated_types import Ge
from torch import nn


def mean_posterior(log_probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """log(mean(exp(each))): the members' log-probabilities [..., V] averaged as probabilities."""
    return torch.logsumexp(torch.stack(list(log_probs)), 0) - math.log(len(log_probs))


class CTCEnsemble(nn.Module):
    """``forward(x, lengths) -> (log of the members' mean posterior [B,T',V], lengths)``."""

    def __init__(
        self,
        build_model: Callable[[dict[str, Any]], nn.Module],
        member: dict[str, Any],
        size: Annotated[int, Ge(2)] = 2,
    ):
        """``member``: the config section of one member model; ``build_model`` (handed in by
        the pipeline) builds it with the pipeline's wiring, so members get the sizes the
        features and the task give."""
        super().__init__()
        self.members = nn.ModuleList(build_model(member) for _ in range(size))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(x, lengths) for member in self.members]  # one config: same lengths
        log_probs = [torch.log_softmax(out.float(), -1) for out, _ in outputs]
        return mean_posterior(log_probs), outputs[0][1]
