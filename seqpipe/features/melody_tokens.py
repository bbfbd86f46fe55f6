"""Melody <-> token encodings: the vocabulary layout every melody encoding shares.

The encodings themselves are ``melody_grid`` (:mod:`seqpipe.features.melody_grid`) and
``melody_events`` (:mod:`seqpipe.features.melody_events`).

Every encoding writes ``<bos> KEY METER TEMPO body... <eos>``: the three conditioning
tokens come first so a model can be asked for "a jig in D" (force them) or pick them
itself (sample them). Subclasses define only the body. Besides ``encode``/``decode``
an encoding exposes per-token tables that generation needs to stay O(1) per step:
``advance`` (ticks a token moves time on), ``pitch_of`` (-1 for non-notes) and
``grammar`` (which tokens may follow a token), all as tensors.
"""

from __future__ import annotations

from functools import cached_property

from seqpipe.midi import TPQ, Melody, Note
from seqpipe.theory import KEYS

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"]
METERS = ["2/4", "3/4", "4/4", "2/2", "3/8", "6/8", "9/8", "12/8", "3/2", "other"]
TEMPO_EDGES = [66, 84, 102, 114, 126, 144, 168, 200]  # qpm bucket edges
TEMPO_VALUES = [60, 76, 92, 108, 120, 132, 156, 184, 216]  # one per bucket
PREFIX = 4  # <bos> KEY METER TEMPO


class MelodyEncoding:
    """Shared vocabulary layout and conditioning tokens; subclasses add the body tokens."""

    def __init__(self, min_pitch: int, max_pitch: int):
        self.min_pitch, self.max_pitch = min_pitch, max_pitch
        self.vocab: list[str] = list(SPECIALS)
        self.kinds: list[str] = ["pad", "bos", "eos"]
        self.key_base = self._add("key", [f"key:{k}" for k in KEYS] + ["key:?"])
        self.meter_base = self._add("meter", [f"meter:{m}" for m in METERS])
        self.tempo_base = self._add("tempo", [f"tempo:{v}" for v in TEMPO_VALUES])
        self.pitch_base = self._add("pitch", [f"note:{p}" for p in range(min_pitch, max_pitch + 1)])
        self._add_body()

    def _add(self, kind: str, names: list[str]) -> int:
        base = len(self.vocab)
        self.vocab += names
        self.kinds += [kind] * len(names)
        return base

    # -- subclass interface -------------------------------------------------------
    def _add_body(self) -> None:
        raise NotImplementedError

    def encode_notes(self, notes: list[Note]) -> list[int]:
        raise NotImplementedError

    def decode_notes(self, tokens: list[int]) -> list[Note]:
        raise NotImplementedError

    def _advance_of(self, token: int) -> int:
        raise NotImplementedError

    def _may_follow(self, prev_kind: str, kind: str) -> bool:
        raise NotImplementedError

    # -- sizes ----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    output_size = vocab_size

    # -- conditioning tokens --------------------------------------------------------
    def key_token(self, key: str | None) -> int:
        return self.key_base + (KEYS.index(key) if key in KEYS else len(KEYS))

    def meter_token(self, time_signature: tuple[int, int]) -> int:
        name = f"{time_signature[0]}/{time_signature[1]}"
        return self.meter_base + (METERS.index(name) if name in METERS else len(METERS) - 1)

    def tempo_token(self, qpm: float) -> int:
        return self.tempo_base + sum(qpm >= edge for edge in TEMPO_EDGES)

    def prefix(self, melody: Melody) -> list[int]:
        return [
            BOS,
            self.key_token(melody.key),
            self.meter_token(melody.time_signature),
            self.tempo_token(melody.tempo),
        ]

    def fold_pitch(self, pitch: int) -> int:
        """Move a pitch by octaves into the encodable range."""
        while pitch < self.min_pitch:
            pitch += 12
        while pitch > self.max_pitch:
            pitch -= 12
        return pitch

    # -- whole melodies -------------------------------------------------------------
    def encode(self, melody: Melody, eos: bool = True) -> list[int]:
        """``<bos> KEY METER TEMPO body [<eos>]``."""
        return self.prefix(melody) + self.encode_notes(melody.notes) + ([EOS] if eos else [])

    def decode(self, tokens: list[int], name: str = "") -> Melody:
        """Tokens (with or without the prefix / <eos>) -> a melody; malformed bits are skipped."""
        tokens = [int(t) for t in tokens]
        if EOS in tokens:
            tokens = tokens[: tokens.index(EOS)]
        melody = Melody(notes=[], name=name)
        body = []
        for t in tokens:
            kind = self.kinds[t] if 0 <= t < self.vocab_size else "pad"
            if kind == "key" and t - self.key_base < len(KEYS):
                melody.key = KEYS[t - self.key_base]
            elif kind == "meter" and METERS[t - self.meter_base] != "other":
                num, den = METERS[t - self.meter_base].split("/")
                melody.time_signature = (int(num), int(den))
            elif kind == "tempo":
                melody.tempo = float(TEMPO_VALUES[t - self.tempo_base])
            elif kind not in ("pad", "bos", "eos", "key", "meter", "tempo"):
                body.append(t)
        melody.notes = self.decode_notes(body)
        return melody

    def count_notes(self, tokens: list[int]) -> int:
        return sum(1 for t in tokens if self.kinds[t] == "pitch")

    # -- tables for generation ------------------------------------------------------
    @cached_property
    def advance(self):
        """[V] long: ticks each token moves time forward."""
        import torch

        return torch.tensor([self._advance_of(t) for t in range(self.vocab_size)])

    @cached_property
    def pitch_of(self):
        """[V] long: the MIDI pitch a token starts, -1 for other tokens."""
        import torch

        return torch.tensor(
            [
                self.min_pitch + t - self.pitch_base if self.kinds[t] == "pitch" else -1
                for t in range(self.vocab_size)
            ]
        )

    @cached_property
    def grammar(self):
        """[V, V] bool: ``grammar[prev, next]`` says whether ``next`` may follow ``prev``."""
        import torch

        order = ["bos", "key", "meter", "tempo"]
        names = sorted(set(self.kinds))
        kind_ok = {}
        for pk in names:
            for nk in names:
                if pk in order[:-1]:
                    ok = nk == order[order.index(pk) + 1]
                elif nk in ("pad", "bos", "key", "meter", "tempo") or pk in ("pad", "eos"):
                    ok = False
                else:
                    ok = self._may_follow(pk, nk)
                kind_ok[pk, nk] = ok
        index = torch.tensor([names.index(k) for k in self.kinds])
        table = torch.tensor([[kind_ok[pk, nk] for nk in names] for pk in names])
        allowed = table[index][:, index]
        return allowed

    def body_kinds(self):
        """[V] bool: tokens that belong to the melody body (not conditioning or specials)."""
        import torch

        return torch.tensor(
            [k not in ("pad", "bos", "eos", "key", "meter", "tempo") for k in self.kinds]
        )

    def info(self) -> dict:
        return {"encoding": type(self).__name__, "vocab": self.vocab, "tpq": TPQ}
