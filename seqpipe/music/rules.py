"""What may come next in a melody being generated: grammar, key, scale, length.

:class:`MelodyRules` keeps, per generated row, the time reached and the time to stop
at, and turns them into a [B, V] mask with a handful of tensor ops per step: the
encoding's grammar, an optional scale, tokens that would overshoot the requested
length, and a forced ``<eos>`` exactly at it (the last note always ends on the final
bar line, so every file has the requested length). It is the ``rules`` object of the
token decoders' contract (:class:`seqpipe.decoders.base.TokenRules`).

With ``lookback`` bars (e.g. 1, 2, 4, 8) it also remembers, per row, which tokens
started at each tick of the last ``max(lookback)`` bars (a ring buffer), and offers the
decoder, for each lookback, the token written at the same place that many bars earlier
and how many tokens in a row the melody has been following it (:meth:`lookback`): what
a repetition-aware sampler biases toward. Still O(1) per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from seqpipe.features.melody_form import BarMemory, lookback_for
from seqpipe.features.melody_tokens import EOS, METERS, PAD, PREFIX, MelodyEncoding
from seqpipe.midi import TPQ

NO_TARGET = 1 << 40


@dataclass
class RowState:
    pos: int  # tokens so far in the full sequence (prompt included)
    time: torch.Tensor  # [B] ticks reached before the ``pending`` tokens
    target: torch.Tensor  # [B] ticks to stop at
    ended: torch.Tensor  # [B] bool, <eos> emitted before the ``pending`` tokens
    memory: BarMemory | None = None  # with lookback bars only
    pending: tuple[torch.Tensor, ...] = ()  # tokens [B] not yet counted (``_counted``)


class MelodyRules:
    """Per-step masks for :mod:`seqpipe.decoders.sampling` (see its docstring for the protocol)."""

    def __init__(
        self,
        encoding: MelodyEncoding,
        *,
        bars: int | None = None,
        target_ticks: int | None = None,
        forced: list[int | None] | None = None,
        scale: set[int] | None = None,
        min_ticks: int = 0,
        lookback: tuple[int, ...] = (),
    ):
        """``min_ticks``: without ``target_ticks``, the model may only pick a meter whose
        ``bars`` last at least this long (a primer must fit). ``lookback``: bar distances
        :meth:`lookback` offers candidates from (empty: no memory is kept)."""
        self.enc = encoding
        self.lookback_bars = tuple(lookback)
        self.bars, self.target_ticks = bars, target_ticks
        self.forced = forced or []
        V = encoding.vocab_size
        kinds = encoding.kinds
        self.grammar = encoding.grammar
        self.advance = encoding.advance
        self.min_advance = int(self.advance[self.advance > 0].min())
        # tokens that may not use up the last tick: a rest (the last event is a sounding
        # note) and an event-encoding pitch (its duration tokens follow)
        body = encoding.body_kinds()
        self.opens = torch.tensor([k in ("rest", "shift") for k in kinds]) | (
            body & (self.advance == 0)
        )
        self.free = ~body  # conditioning tokens take no time
        self.ok = torch.ones(V, dtype=torch.bool)
        if scale is not None:
            pitch = encoding.pitch_of
            self.ok = (pitch < 0) | torch.isin(pitch % 12, torch.tensor(sorted(scale)))
        self.eos_only = torch.zeros(V, dtype=torch.bool)
        self.eos_only[EOS] = True
        self.pad_only_mask = torch.zeros(V, dtype=torch.bool)
        self.pad_only_mask[PAD] = True
        self.bar_ticks = torch.zeros(V, dtype=torch.long)
        for i, name in enumerate(METERS):
            num, den = (4, 4) if name == "other" else map(int, name.split("/"))
            self.bar_ticks[encoding.meter_base + i] = num * 4 * TPQ // den
        if target_ticks is None and bars:
            self.ok &= (self.bar_ticks == 0) | (bars * self.bar_ticks >= min_ticks)

    def _reachable(self) -> torch.Tensor:
        """Which tick counts a sum of token advances fills exactly, as a lookup table.

        Entries ``0..L-1`` come from a small dynamic programme; past ``L`` (beyond the
        Frobenius number of the step sizes) a count is fillable iff it is a multiple of
        their gcd, which entries ``L..L+g-1`` encode: look up ``L + r % g``.
        """
        steps = sorted(set(self.advance[self.advance > 0].tolist()))
        self.reach_limit, self.reach_gcd = steps[0] * steps[-1] + steps[-1], math.gcd(*steps)
        reach = [True] + [False] * (self.reach_limit - 1)
        for r in range(1, self.reach_limit):
            reach[r] = any(s <= r and reach[r - s] for s in steps)
        return torch.tensor(reach + [j == 0 for j in range(self.reach_gcd)])

    def _fits(self, device) -> torch.Tensor:
        """[far + 1 + gcd, V]: which tokens fit (not <eos>) with ``r`` ticks left, row ``r``
        for r <= ``far``; further from the end it depends only on r modulo the gcd, row
        ``far + 1 + (r - far - 1) % gcd`` (:meth:`_fits_row`)."""
        left = torch.arange(self.far + 1 + self.reach_gcd, device=device)[:, None] - self.advance
        far = self.reach_limit + left.remainder(self.reach_gcd)
        fits = (left >= 0) & self.reachable[
            torch.where(left < self.reach_limit, left.clamp(min=0), far)
        ]
        fits = (fits & ~(self.opens & (left == 0))) | self.free
        fits[:, EOS] = False
        return fits

    def _fits_row(self, remaining: torch.Tensor) -> torch.Tensor:
        """Rows of :meth:`_fits` for ``remaining`` [B] ticks."""
        far = self.far + 1 + (remaining - self.far - 1).remainder(self.reach_gcd)
        return torch.where(remaining > self.far, far, remaining)

    def _target_from(self, meter_tokens: torch.Tensor) -> torch.Tensor:
        return self.bars * self.bar_ticks[meter_tokens]

    def start(self, n: int, prompt: list[int], device) -> RowState:
        self.forced_from = len(prompt)
        self.reachable = self._reachable().to(device)
        for name in (
            "grammar",
            "advance",
            "opens",
            "free",
            "ok",
            "eos_only",
            "pad_only_mask",
            "bar_ticks",
        ):
            setattr(self, name, getattr(self, name).to(device))
        self.grammar_ok = self.grammar & self.ok
        self.max_advance, self.far_until = int(self.advance.max()), 0
        self.far = self.reach_limit + self.max_advance  # beyond, every token leaves >= the limit
        self.fits = self._fits(device)
        self.far_next = self.grammar_ok & self.fits[self.far + 1]  # [prev, next] when gcd is 1
        time = int(self.advance[torch.tensor(prompt, device=device)].sum())
        target = NO_TARGET
        if self.target_ticks is not None:
            target = self.target_ticks
        elif len(prompt) > 2:  # the meter token is in the prompt
            target = int(self._target_from(torch.tensor(prompt[2], device=device)))
        state = RowState(
            pos=len(prompt),
            time=torch.full((n,), time, dtype=torch.long, device=device),
            target=torch.full((n,), target, dtype=torch.long, device=device),
            ended=torch.zeros(n, dtype=torch.bool, device=device),
        )
        if self.lookback_bars:
            state.memory = self._remember(prompt, n, device)
        return state

    # -- lookback memory ------------------------------------------------------------
    def _remember(self, prompt: list[int], n: int, device) -> BarMemory:
        """Each row's memory of the bars (:mod:`seqpipe.features.melody_form`) after the prompt."""
        self.memory = lookback_for(self.enc, self.lookback_bars).to(device)
        memory = self.memory.start(n, device)
        for token in prompt:
            memory = self.memory.write(memory, torch.full((n,), token, device=device))
        return memory

    def lookback(self, st: RowState) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, K] tokens written at this place ``lookback`` bars ago (-1: none there), and
        [B, K] how many tokens in a row each row has matched that lookback's candidates."""
        return st.memory.candidates, st.memory.runs

    def allowed(self, prev: torch.Tensor, st: RowState) -> torch.Tensor:
        forced = st.pos - self.forced_from
        if forced < len(self.forced) and self.forced[forced] is not None:
            mask = torch.zeros(
                prev.shape[0], self.ok.shape[0], dtype=torch.bool, device=prev.device
            )
            mask[:, self.forced[forced]] = True  # a token the user gave (meter, tempo, primer)
            return mask
        if st.pos < self.far_until and self.reach_gcd == 1:  # the common case: one lookup
            return self.far_next.index_select(0, prev)
        st = self._counted(st)
        remaining = st.target - st.time
        far = st.pos < self.far_until or self._far_for(st.pos, remaining)
        if far and self.reach_gcd == 1:
            return self.far_next.index_select(0, prev)
        mask = self.grammar_ok[prev] & self.fits[self._fits_row(remaining)]
        if far:  # every row far from its end: <eos> is not due
            return mask
        stop = ~mask.any(1, keepdim=True)  # nothing fits: the requested length is reached
        mask = torch.where(stop, self.eos_only, mask)
        return torch.where(st.ended[:, None], self.pad_only_mask, mask)

    def _far_for(self, pos: int, remaining: torch.Tensor) -> bool:
        """Whether every row is far from its end; if so, note for how many more tokens it
        stays so (each advances at most ``advance.max()``), sparing a device sync a step."""
        spare = int(remaining.min()) - self.far
        if spare < 0:
            return False
        self.far_until = pos + 1 + spare // self.max_advance
        return True

    def update(self, token: torch.Tensor, st: RowState) -> RowState:
        """``st`` after ``token`` [B]; the time and <eos> flags count it when next read
        (:meth:`_counted`: far from the end a sampler reads them every few steps only)."""
        target = st.target
        if st.pos < PREFIX and self.target_ticks is None and self.bars:
            self.far_until = 0  # the target may change here
            meter = self.bar_ticks[token] > 0
            target = torch.where(meter, self._target_from(token), target)
        memory = self.memory.write(st.memory, token) if st.memory is not None else None
        return RowState(st.pos + 1, st.time, target, st.ended, memory, (*st.pending, token))

    def _counted(self, st: RowState) -> RowState:
        """``st`` with its pending tokens added to its time and <eos> flags (in place: the
        values it stands for do not change)."""
        if st.pending:
            tokens = torch.stack(st.pending)  # [N, B]
            st.time = st.time + self.advance[tokens].sum(0)
            st.ended = st.ended | (tokens == EOS).any(0)
            st.pending = ()
        return st

    def select(self, st: RowState, index: torch.Tensor) -> RowState:
        st = self._counted(st)
        memory = st.memory.select(index) if st.memory is not None else None
        return RowState(st.pos, st.time[index], st.target[index], st.ended[index], memory)

    def finished(self, st: RowState) -> bool:
        return bool(self._counted(st).ended.all())

    def done(self, st: RowState) -> torch.Tensor:
        return self._counted(st).ended

    def pad_only(self, logp: torch.Tensor) -> torch.Tensor:
        return torch.where(self.pad_only_mask, 0.0, float("-inf")).expand_as(logp)

    @staticmethod
    def trim(rows: list[list[int]]) -> list[list[int]]:
        out = []
        for row in rows:
            cut = next((i for i, t in enumerate(row) if t in (EOS, PAD)), len(row))
            out.append(row[:cut])
        return out
