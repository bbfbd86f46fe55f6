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
time (generation; a ring buffer of the last bars, O(1) per token). The melody rules'
repetition-aware sampling and the ``rnn_lm`` model's ``lookback_bars`` inputs both use it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

DEFAULT_BAR = 96  # ticks (4/4) until a meter token says otherwise


@dataclass
class BarMemory:
    """Per row: the bars written so far (a ring buffer) and the lookback facts after them."""

    bar: torch.Tensor  # [B] ticks per bar of the row's meter
    time: torch.Tensor  # [B] ticks reached
    stamp: torch.Tensor  # [B, R] tick whose tokens a ring slot holds (-1: none)
    tokens: torch.Tensor  # [B, R, 2] first and second body token written at that tick
    sub: torch.Tensor  # [B] body tokens written at the current tick so far
    candidates: torch.Tensor  # [B, K] token this place ``distances`` bars ago (-1: none)
    runs: torch.Tensor  # [B, K] body tokens in a row that matched their candidate

    def select(self, index: torch.Tensor) -> BarMemory:
        return BarMemory(*(getattr(self, f.name).index_select(0, index) for f in fields(self)))

    @property
    def position(self) -> torch.Tensor:
        """[B] ticks into the current bar."""
        return self.time.remainder(self.bar)


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

    def to(self, device) -> BarLookback:
        for name in ("advance", "bar_ticks", "body", "distances"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def start(self, n: int, device) -> BarMemory:
        K = len(self.distances)

        def full(*shape):
            return torch.full(shape, -1, dtype=torch.long, device=device)

        zeros = torch.zeros(n, dtype=torch.long, device=device)
        return BarMemory(
            bar=zeros + DEFAULT_BAR,
            time=zeros,
            stamp=full(n, self.ring),
            tokens=full(n, self.ring, 2),
            sub=zeros,
            candidates=full(n, K),
            runs=torch.zeros(n, K, dtype=torch.long, device=device),
        )

    def write(self, mem: BarMemory, token: torch.Tensor) -> BarMemory:
        """The memory after each row wrote ``token`` [B] (any token: a meter token sets the
        bar, other non-body tokens change nothing but the candidates' reading)."""
        rows = torch.arange(token.shape[0], device=token.device)
        body, advance = self.body[token], self.advance[token]
        meter = self.bar_ticks[token]
        bar = torch.where(meter > 0, meter, mem.bar)
        runs = torch.where(
            body[:, None], torch.where(token[:, None] == mem.candidates, mem.runs + 1, 0), mem.runs
        )
        slot = mem.time % self.ring
        old_stamp, old = mem.stamp[rows, slot], mem.tokens[rows, slot]  # [B], [B, 2]
        first = body & (mem.sub == 0)
        second = body & (mem.sub == 1)
        new = torch.stack(
            [
                torch.where(first, token, old[:, 0]),
                torch.where(first, -1, torch.where(second, token, old[:, 1])),
            ],
            1,
        )
        stamp, tokens = mem.stamp.clone(), mem.tokens.clone()
        stamp[rows, slot] = torch.where(first, mem.time, old_stamp)
        tokens[rows, slot] = new
        sub = torch.where(body, torch.where(advance > 0, 0, mem.sub + 1), mem.sub)
        time = mem.time + advance
        back = time[:, None] - bar[:, None] * self.distances  # [B, K] ticks looked back at
        slots = back.remainder(self.ring)
        there = (back >= 0) & (stamp.gather(1, slots) == back)
        held = tokens[rows[:, None], slots, sub.clamp(max=1)[:, None]]
        return BarMemory(bar, time, stamp, tokens, sub, torch.where(there, held, -1), runs)

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
