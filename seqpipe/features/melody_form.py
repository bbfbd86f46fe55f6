"""Where a melody token stands in its bar, and what was written there 1, 2, 4, 8 bars ago.

Magenta's Lookback RNN feeds each step the event one and two bars back and whether the
melody is repeating it; these are the same facts for a token encoding, from its
``advance`` (ticks each token moves time on) and the meter token's bar length. After
token ``t`` (time ``now``), for each lookback distance of ``k`` bars:

* ``candidates[..., k]``: the token written at ``now - k`` bars that the next token
  would match if the melody repeated (the first token written at that tick, or the
  second when one has already been written at ``now``: a pitch's duration); -1 if none;
* ``runs[..., k]``: how many body tokens in a row have matched their candidate;
* ``position``: ticks into the bar at ``now``.

Two ways to the same numbers: :meth:`BarLookback.all_at_once` for a padded batch
(training; parallel over time) and :meth:`BarLookback.write`, one token per row at a
time (generation; a ring buffer of the last bars, O(1) per token). A single row on the
CPU (one melody) keeps its memory in plain Python (:class:`RowMemory`): two dozen tensor
ops per token would cost more than the model's own step. The melody rules'
repetition-aware sampling and the ``rnn_lm`` model's ``lookback_bars`` inputs both use it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import torch

DEFAULT_BAR = 96  # ticks (4/4) until a meter token says otherwise


@dataclass
class BarMemory:
    """Per row: the bars written so far (a ring buffer) and the lookback facts after them.

    The ring's tensors are written in place by :meth:`BarLookback.write` (a generation
    never goes back to an older state; ``select`` copies, so beams stay apart)."""

    bar: torch.Tensor  # [B] ticks per bar of the row's meter
    time: torch.Tensor  # [B] ticks reached
    stamp: torch.Tensor  # [B, R + 1] tick whose tokens a ring slot holds (slot R: scratch)
    first: torch.Tensor  # [B, R + 1] first body token written at that tick
    second: torch.Tensor  # [B, R + 1] second one (-1: none), e.g. a pitch's duration
    sub: torch.Tensor  # [B] body tokens written at the current tick so far
    candidates: torch.Tensor  # [B, K] token this place ``distances`` bars ago (-1: none)
    runs: torch.Tensor  # [B, K] body tokens in a row that matched their candidate

    def select(self, index: torch.Tensor) -> BarMemory:
        return BarMemory(*(getattr(self, f.name).index_select(0, index) for f in fields(self)))

    @property
    def position(self) -> torch.Tensor:
        """[B] ticks into the current bar."""
        return self.time.remainder(self.bar)


NEVER = -(1 << 40)  # the stamp of a slot nothing was written to


@dataclass
class RowMemory:
    """:class:`BarMemory` for one row, in Python ints and dicts (slot -> value)."""

    bar: int
    time: int
    stamp: dict[int, int]
    first: dict[int, int]
    second: dict[int, int]
    sub: int
    cands: list[int]
    run_list: list[int]
    ring: int

    @cached_property
    def candidates(self) -> torch.Tensor:
        return torch.tensor([self.cands])

    @cached_property
    def runs(self) -> torch.Tensor:
        return torch.tensor([self.run_list])

    @property
    def position(self) -> torch.Tensor:
        return torch.tensor([self.time % self.bar])

    def select(self, index: torch.Tensor) -> BarMemory | RowMemory:
        if index.tolist() == [0]:
            return self
        return self.tensors().select(index)

    def tensors(self) -> BarMemory:
        """The same memory as a one-row :class:`BarMemory` (several rows follow it)."""
        stamp = torch.full((1, self.ring + 1), NEVER, dtype=torch.long)
        first = torch.full((1, self.ring + 1), -1, dtype=torch.long)
        second = first.clone()
        for slot, value in self.stamp.items():
            stamp[0, slot] = value
            first[0, slot] = self.first[slot]
            second[0, slot] = self.second[slot]

        def one(value):
            return torch.tensor([value])

        return BarMemory(one(self.bar), one(self.time), stamp, first, second, one(self.sub),
                         self.candidates, self.runs)  # fmt: skip


class BarLookback:
    """Lookback facts for one encoding's tables (see the module docstring).

    ``advance`` [V]: ticks each token moves time on; ``bar_ticks`` [V]: a meter token's
    bar length (0 for other tokens); ``body`` [V]: melody tokens (the prefix and the end
    marker are not written); ``distances``: lookbacks in bars.
    """

    def __init__(
        self,
        advance: torch.Tensor,
        bar_ticks: torch.Tensor,
        body: torch.Tensor,
        distances: tuple[int, ...],
    ):
        self.advance, self.bar_ticks, self.body = advance.long(), bar_ticks.long(), body.bool()
        self.distances = torch.tensor(distances, dtype=torch.long)
        self.ring = max(distances) * max(int(self.bar_ticks.max()), DEFAULT_BAR) + 1
        self._pack()

    def _pack(self) -> None:
        """Per token, one row of what :meth:`write` needs: [V, 5] (body, advance, bar
        ticks, 1 - body, whether time stays)."""
        body = self.body.long()
        self.table = torch.stack(
            [body, self.advance, self.bar_ticks, 1 - body, (self.advance == 0).long()], 1
        )
        self.rows_info = [tuple(row) for row in self.table.tolist()]
        self.distance_list = self.distances.tolist()

    def to(self, device) -> BarLookback:
        if self.table.device != torch.device(device):
            for name in ("advance", "bar_ticks", "body", "distances", "table"):
                setattr(self, name, getattr(self, name).to(device))
        return self

    def start(self, n: int, device) -> BarMemory | RowMemory:
        K, R = len(self.distances), self.ring + 1
        if n == 1 and torch.device(device).type == "cpu":
            return RowMemory(DEFAULT_BAR, 0, {}, {}, {}, 0, [-1] * K, [0] * K, self.ring)

        def full(value, *shape):
            return torch.full(shape, value, dtype=torch.long, device=device)

        return BarMemory(
            bar=full(DEFAULT_BAR, n),
            time=full(0, n),
            stamp=full(NEVER, n, R),
            first=full(-1, n, R),
            second=full(-1, n, R),
            sub=full(0, n),
            candidates=full(-1, n, K),
            runs=full(0, n, K),
        )

    def write(self, mem: BarMemory, token: torch.Tensor) -> BarMemory:
        """The memory after each row wrote ``token`` [B] (any token: a meter token sets the
        bar, other non-body tokens change nothing but the candidates' reading). The ring
        is updated in place (``scatter_``, one op a field); slot R takes the writes a row
        should not make. ~30 small ops: this runs once per generated token."""
        if isinstance(mem, RowMemory):
            return self._write_row(mem, int(token))
        body, advance, meter, not_body, stays = self.table.index_select(0, token).unbind(1)
        runs = torch.where(
            token[:, None] == mem.candidates, mem.runs + 1, mem.runs * not_body[:, None]
        )
        fresh = mem.sub == 0
        slot = torch.where(body > 0, mem.time % self.ring, self.ring)[:, None]
        # a tick's first body token stamps the slot and opens it; the tick's later body
        # tokens (same time, so the same slot and stamp) only write ``second``
        mem.stamp.scatter_(1, slot, mem.time[:, None])
        mem.first.scatter_(1, torch.where(fresh[:, None], slot, self.ring), token[:, None])
        mem.second.scatter_(1, slot, torch.where(fresh, -1, token)[:, None])
        bar = torch.where(meter > 0, meter, mem.bar)
        sub = (mem.sub + body) * stays
        time = mem.time + advance
        back = time[:, None] - bar[:, None] * self.distances  # [B, K] ticks looked back at
        slots = back.remainder(self.ring)
        held = torch.where(
            (sub == 0)[:, None], mem.first.gather(1, slots), mem.second.gather(1, slots)
        )
        candidates = torch.where(mem.stamp.gather(1, slots) == back, held, -1)
        return BarMemory(bar, time, mem.stamp, mem.first, mem.second, sub, candidates, runs)

    def _write_row(self, mem: RowMemory, token: int) -> RowMemory:
        """:meth:`write` for one row, in Python."""
        body, advance, meter, _, stays = self.rows_info[token]
        runs = [
            r + 1 if token == c else (0 if body else r)
            for c, r in zip(mem.cands, mem.run_list, strict=True)
        ]
        if body:
            slot = mem.time % self.ring
            if mem.sub == 0:
                mem.stamp[slot], mem.first[slot], mem.second[slot] = mem.time, token, -1
            else:
                mem.second[slot] = token
        bar = meter if meter > 0 else mem.bar
        sub = (mem.sub + body) * stays
        time = mem.time + advance
        held = mem.first if sub == 0 else mem.second
        cands = []
        for distance in self.distance_list:
            back = time - bar * distance
            slot = back % self.ring
            cands.append(held[slot] if mem.stamp.get(slot, NEVER) == back else -1)
        return RowMemory(bar, time, mem.stamp, mem.first, mem.second, sub, cands, runs, self.ring)

    def all_at_once(self, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For every position of ``tokens`` [B, T] (padding: any token that is not a body
        token), what :meth:`write` gives after that token: (candidates [B, T, K], runs
        [B, T, K], position [B, T]). Parallel over time."""
        B, T = tokens.shape
        K = len(self.distances)
        body, advance = self.body[tokens], self.advance[tokens] * self.body[tokens]
        meter = self.bar_ticks[tokens]
        bar = torch.where(meter.amax(1) > 0, meter.amax(1), DEFAULT_BAR)  # [B]
        now = advance.cumsum(1)  # [B, T] time after each token
        before = now - advance
        # body tokens before each one at the same tick (ticks never go back, so a tick's
        # tokens are contiguous): its index among them, 0 = first
        count = body.long().cumsum(1)
        counted_before = count - body.long()
        starts = torch.ones_like(body)
        starts[:, 1:] = before[:, 1:] != before[:, :-1]
        base = torch.where(starts, counted_before, 0).cummax(1).values
        index = counted_before - base  # [B, T] this token's place among its tick's tokens
        sub_after = torch.where(advance > 0, 0, count - base)  # what write() keeps in sub
        span = int(now.max()) + 1 if T else 1
        grid = torch.full((B, span + 1, 2), -1, dtype=torch.long, device=tokens.device)
        written = body & (index < 2)
        b, t = written.nonzero(as_tuple=True)
        grid[b, before[b, t], index[b, t]] = tokens[b, t]
        back = now[..., None] - bar[:, None, None] * self.distances  # [B, T, K]
        rows = torch.arange(B, device=tokens.device)[:, None, None]
        held = grid[rows, back.clamp(min=0), sub_after.clamp(max=1)[..., None].expand(B, T, K)]
        candidates = torch.where(back >= 0, held, -1)
        # runs: body tokens matching the previous position's candidate, since the last miss
        previous = torch.cat([candidates.new_full((B, 1, K), -1), candidates[:, :-1]], 1)
        match = body[..., None] & (tokens[..., None] == previous)
        miss = body[..., None] & ~match
        matched = match.long().cumsum(1)
        runs = matched - torch.where(miss, matched, 0).cummax(1).values
        return candidates, runs, now.remainder(bar[:, None])


def lookback_for(encoding, distances: tuple[int, ...]) -> BarLookback:
    """A :class:`BarLookback` from a melody encoding's tables."""
    from seqpipe.features.melody_tokens import METERS
    from seqpipe.midi import TPQ

    bar_ticks = torch.zeros(encoding.vocab_size, dtype=torch.long)
    for i, name in enumerate(METERS):
        num, den = (4, 4) if name == "other" else map(int, name.split("/"))
        bar_ticks[encoding.meter_base + i] = num * 4 * TPQ // den
    return BarLookback(encoding.advance, bar_ticks, encoding.body_kinds(), distances)
