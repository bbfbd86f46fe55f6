"""Token decoders for autoregressive models: sampling (temperature, top-k, top-p) and beam search.

Both implement :class:`seqpipe.decoders.base.TokenDecoder`: they drive the model's
incremental API only (``initial_state``/``step``/``reorder_state``), so each new token
costs O(1) however long the sequence already is, and mask what may come next with a
:class:`~seqpipe.decoders.base.TokenRules` object (grammar, scale, length budget; e.g.
:class:`seqpipe.music.rules.MelodyRules`). Sampled rows that are done leave the batch,
so a batch costs what its rows need, not its longest row times n.
The prompt is run once with batch size 1 and its state copied to every row.

``repeat`` makes sampling repetition-aware: rules that offer ``lookback(state)`` (for
melodies, the token at the same place 1, 2, 4 and 8 bars back and how long each row
has been following it) get those tokens' logits raised, by ``repeat`` nats for a
lookback the row has followed for ``REPEAT_MOMENTUM`` tokens or more and a fraction of
that for one it has just met. Once a melody starts repeating earlier material it tends
to go on (a repeated phrase, not one echoed note), and the model can still leave where
its own preference is stronger: a cadence, a second ending. One scatter per step.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from seqpipe.types import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability

NUCLEUS_CANDIDATES = 32  # top-p looks at this many best tokens first: a cheap top-k, no sort
# (a melody's nucleus at top-p 0.95 holds <= 25; a wider one falls back to a full sort)
REPEAT_MOMENTUM = 8  # tokens (4 notes of the event encoding) followed for the full copy bias


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Keep the ``top_k`` best tokens and the smallest set whose probability reaches ``top_p``."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        k = min(NUCLEUS_CANDIDATES, logits.shape[-1])
        best, order = logits.topk(k, dim=-1)
        probs = logits.softmax(-1).gather(-1, order)
        mass = probs.cumsum(dim=-1)
        if k == logits.shape[-1] or bool((mass[..., -1] > top_p).all()):  # nucleus within k
            drop = mass - probs > top_p  # mass before this token already enough
            drop[..., 0] = False
            kept = best.masked_fill(drop, float("-inf"))
            return torch.full_like(logits, float("-inf")).scatter(-1, order, kept)
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > top_p  # the nucleus is wider than k: sort all
        drop[..., 0] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sample_categorical(
    logits: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One draw per row from softmax(logits), by the exponential-race (Gumbel-max) trick.

    argmax(p / E) with E ~ Exp(1) picks index i with probability p_i; it costs a few
    elementwise ops, where torch.multinomial was the slowest op of a decoding step.
    """
    return (logits.softmax(-1) / exponential_like(logits, generator)).argmax(-1)


def exponential_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Exp(1) draws shaped like ``x``: -log U, U ~ U[0, 1) (U = 0 gives inf: that token
    cannot win). A third of ``Tensor.exponential_``'s time on the CPU (30 against 95 us
    for 64 x 64), which draws each value in scalar code."""
    return torch.empty_like(x).uniform_(generator=generator).log_().neg_()


@contextlib.contextmanager
def no_onednn():
    """oneDNN re-packs the LSTM weights on every call: 2x slower for one-token steps on CPU."""
    before = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)  # torch.backends.mkldnn.flags(), minus its warning
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(before)


@torch.inference_mode()
def run_prompt(model, prompt: list[int], device) -> tuple[torch.Tensor, Any]:
    """Feed the prompt through ``step`` (batch 1); returns the last logits [1, V] and the state."""
    state = model.initial_state(1, device)
    logits = None
    for token in prompt:
        logits, state = model.step(torch.tensor([token], device=device), state)
    return logits, state


class Sampler:
    """Ancestral sampling with temperature, top-k and nucleus (top-p) filtering."""

    def __init__(
        self,
        temperature: PositiveFloat = 1.0,
        top_k: NonNegativeInt = 0,
        top_p: Probability = 1.0,
        repeat: NonNegativeFloat = 0.0,
    ):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.repeat = repeat

    @torch.inference_mode()
    def generate(
        self,
        model,
        prompt: list[int],
        n: int,
        rules,
        max_tokens: int,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """``n`` continuations of ``prompt`` (each without the prompt), sampled in one batch."""
        with no_onednn():
            return self._generate(model, prompt, n, rules, max_tokens, generator)

    def draw(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One token per row; nucleus sampling runs on the best few candidates, unsorted rest.

        The exponential race of :func:`sample_categorical` needs no normalised
        probabilities, so the candidates' softmax probabilities serve as they are.
        """
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self.top_k or self.top_p >= 1.0:
            return sample_categorical(filter_logits(logits, self.top_k, self.top_p), generator)
        k = min(NUCLEUS_CANDIDATES, logits.shape[-1])
        best, order = logits.softmax(-1).topk(k, dim=-1)
        mass = best.cumsum(-1)
        if k < logits.shape[-1] and not float(mass[:, -1].min()) > self.top_p:
            return sample_categorical(filter_logits(logits, top_p=self.top_p), generator)
        best = best.masked_fill(mass - best > self.top_p, 0.0)  # mass before already enough
        race = exponential_like(best, generator)
        return order.gather(-1, (best / race).argmax(-1, keepdim=True)).squeeze(-1)

    def copy_bias(self, logits: torch.Tensor, lookback) -> torch.Tensor:
        """``logits`` [B, V] with each lookback candidate [B, K] raised by its share of
        ``repeat``: (1 + run) / (1 + REPEAT_MOMENTUM) of it, run capped at the momentum."""
        candidates, runs = lookback
        share = (1 + runs.clamp(max=REPEAT_MOMENTUM)) / (1 + REPEAT_MOMENTUM)
        bias = torch.where(candidates >= 0, self.repeat * share, 0.0).to(logits.dtype)
        return logits.scatter_add(1, candidates.clamp(min=0), bias)

    def _generate(self, model, prompt, n, rules, max_tokens, generator) -> list[list[int]]:
        device = next(model.parameters()).device
        repeat = self.repeat > 0 and hasattr(rules, "lookback")
        logits, state = run_prompt(model, prompt, device)
        index = torch.zeros(n, dtype=torch.long, device=device)
        logits, state = logits.index_select(0, index), model.reorder_state(state, index)
        prev = torch.full((n,), prompt[-1], dtype=torch.long, device=device)
        rstate = rules.start(n, prompt, device)
        rows = torch.arange(n, device=device)  # each working row's place in the output
        chunks, out = [], []  # (rows, tokens) for each stretch between two compactions
        for t in range(max_tokens):
            logits = torch.where(rules.allowed(prev, rstate), logits, -torch.inf)
            if repeat:
                logits = self.copy_bias(logits, rules.lookback(rstate))
            prev = self.draw(logits, generator)
            out.append(prev)
            rstate = rules.update(prev, rstate)
            if (t + 1) % CHECK_EVERY == 0 or t + 1 == max_tokens:
                done = rules.done(rstate)
                if bool(done.all()):
                    break
                if bool(done.any()):  # finished rows leave the batch: later steps are cheaper
                    chunks.append((rows, torch.stack(out, 1)))
                    out, keep = [], (~done).nonzero().squeeze(1)
                    rows, prev = rows[keep], prev[keep]
                    state, rstate = model.reorder_state(state, keep), rules.select(rstate, keep)
            logits, state = model.step(prev, state)
        chunks.append((rows, torch.stack(out, 1)))
        return rules.trim(assemble(chunks, n).tolist())


CHECK_EVERY = 8  # steps between looks at which rows are done (each look waits for the device)


def assemble(chunks: list[tuple[torch.Tensor, torch.Tensor]], n: int) -> torch.Tensor:
    """Rows' tokens back in their original order, [n, T]; a row that left early repeats its
    last token (its end marker or padding) to the end, which ``rules.trim`` cuts."""
    total = sum(tokens.shape[1] for _, tokens in chunks)
    result = chunks[0][1].new_empty(n, total)
    t = 0
    for rows, tokens in chunks:
        result[rows, t : t + tokens.shape[1]] = tokens
        t += tokens.shape[1]
        result[rows, t:] = tokens[:, -1:]
    return result


class BeamSearch:
    """Beam search: the ``n`` most probable continuations among ``beam_size`` (>= n) beams."""

    def __init__(self, beam_size: PositiveInt = 4, temperature: PositiveFloat = 1.0):
        self.beam_size, self.temperature = beam_size, temperature

    @torch.inference_mode()
    def generate(
        self,
        model,
        prompt: list[int],
        n: int,
        rules,
        max_tokens: int,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        with no_onednn():
            return self._generate(model, prompt, n, rules, max_tokens)

    def _generate(self, model, prompt, n, rules, max_tokens) -> list[list[int]]:
        device = next(model.parameters()).device
        width = max(self.beam_size, n)
        logits, state = run_prompt(model, prompt, device)
        prev = torch.tensor([prompt[-1]], device=device)
        rstate = rules.start(1, prompt, device)
        scores = torch.zeros(1, device=device)
        history = torch.zeros(1, 0, dtype=torch.long, device=device)
        for _ in range(max_tokens):
            done = rules.done(rstate)  # finished beams only extend with padding, at no cost
            logp = (logits / self.temperature).log_softmax(-1)
            logp = logp.masked_fill(~rules.allowed(prev, rstate), float("-inf"))
            logp = torch.where(done[:, None], rules.pad_only(logp), logp)
            total = (scores[:, None] + logp).flatten()
            k = min(width, int(torch.isfinite(total).sum()))
            scores, flat = total.topk(k)
            beam, token = flat // logp.shape[1], flat % logp.shape[1]
            history = torch.cat([history.index_select(0, beam), token[:, None]], 1)
            state, rstate = model.reorder_state(state, beam), rules.select(rstate, beam)
            rstate = rules.update(token, rstate)
            prev = token
            if rules.finished(rstate):
                break
            logits, state = model.step(token, state)
        return rules.trim(history[:n].tolist())
