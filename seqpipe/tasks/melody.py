"""``melody``: train a next-token language model on melodies and measure it per note.

Loss is token cross-entropy. The headline metric is NLL per note: a tune's total NLL
over its melody tokens (everything after the conditioning prefix, ``<eos>`` included)
divided by its number of notes, summed over tunes first. Unlike per-token loss it
compares fairly across encodings and with the Markov baseline. Training tunes are
transposed at random (``transpose: 5`` = up to 5 semitones either way) each time they
are batched; evaluation never transposes. A transposed tune's key token is not a target
(its loss is masked): the key a model picks on its own then follows the corpus's keys
(mostly G and D for folk tunes) rather than the flat spread transposition makes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from seqpipe.features.melody_tokens import PAD, PREFIX, MelodyEncoding
from seqpipe.midi import Melody
from seqpipe.tasks.base import Task
from seqpipe.types import NonNegativeInt, PositiveInt


@dataclass
class MelodyExample:
    melody: Melody
    tokens: list[int]
    train: bool = False  # training batches: transposed (if enabled) and cut to equal lengths


class MelodyTask(Task):
    model_shapes = ("autoregressive",)
    primary_metric = "nll_per_note"
    higher_is_better = False

    def __init__(
        self,
        transpose: NonNegativeInt = 5,
        max_tokens: PositiveInt = 2048,
        sample_melodies: NonNegativeInt = 64,
        sample_bars: PositiveInt = 16,
        baseline: bool = True,
    ):
        self.transpose = transpose
        self.max_tokens = max_tokens
        self.sample_melodies = sample_melodies
        self.sample_bars = sample_bars
        self.baseline = baseline
        self.encoding: MelodyEncoding | None = None

    def wire(self, features: MelodyEncoding) -> dict[str, Any]:
        from seqpipe.errors import SeqpipeError

        if not isinstance(features, MelodyEncoding):
            raise SeqpipeError(
                f"task 'melody' needs a melody encoding (melody_events, melody_grid), got {type(features).__name__}"
            )
        from seqpipe.features.melody_form import lookback_for

        self.encoding = features
        timing = lookback_for(features, (1,))  # what a model with lookback inputs needs
        return {
            "vocab_size": features.vocab_size,
            "output_size": features.vocab_size,
            "token_ticks": timing.advance.tolist(),
            "bar_ticks": timing.bar_ticks.tolist(),
            "body_tokens": timing.body.tolist(),
        }

    def load_data(self, source: Any, *, train: bool) -> Sequence[MelodyExample]:
        from seqpipe.data.melodies import load_melodies

        examples = []
        for melody in load_melodies(source):
            tokens = self.encoding.encode(melody)
            if train:
                tokens = tokens[: self.max_tokens]
            if len(tokens) > PREFIX + 1:
                examples.append(MelodyExample(melody, tokens, train=train))
        return examples

    def length(self, example: MelodyExample) -> int:
        return len(example.tokens)

    def _tokens(self, example: MelodyExample) -> tuple[list[int], bool]:
        """The example's tokens, transposed at random in training, and whether its key
        token is the tune's own (untransposed)."""
        if not example.train or not self.transpose:
            return example.tokens, True
        import torch

        shift = int(torch.randint(-self.transpose, self.transpose + 1, ()))  # trainer-seeded
        if shift == 0:
            return example.tokens, True
        tokens = self.encoding.encode(example.melody.transpose(shift))
        return tokens[: len(example.tokens)], False

    def collate(self, examples: list[MelodyExample]) -> dict[str, Any]:
        import torch

        rows, own_key = zip(*(self._tokens(e) for e in examples), strict=True)
        if any(e.train for e in examples):
            # Training: cut every row to the batch's shortest. Batches are length-bucketed,
            # so little is lost, and a packed LSTM whose rows all have the same length runs
            # ~5x faster on the CPU than one with ragged lengths.
            shortest = min(len(r) for r in rows)
            rows = [r[:shortest] for r in rows]
        longest = max(len(r) for r in rows)
        tokens = torch.full((len(rows), longest), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, : len(row)] = torch.tensor(row)
        return {
            "tokens": tokens,
            "lengths": torch.tensor([len(r) for r in rows]),
            "notes": torch.tensor([self.encoding.count_notes(r) for r in rows]),
            "own_key": torch.tensor(own_key),
        }

    def _token_nll(self, pipeline, batch) -> tuple[Any, Any]:
        """[B, T-1] NLL of each next token, and the mask of real (non-padding) targets."""
        import torch
        import torch.nn.functional as F

        tokens, lengths = batch["tokens"], batch["lengths"]
        logits = pipeline.model(tokens[:, :-1], lengths - 1)
        targets = tokens[:, 1:]
        steps = torch.arange(targets.shape[1], device=tokens.device)
        real = steps[None, :] < (lengths - 1).to(tokens.device)[:, None]
        if "own_key" in batch:  # target 0 is the key token: only a tune's own key is taught
            real[:, 0] &= batch["own_key"].to(tokens.device)
        nll = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
        return nll * real, real

    def loss(self, pipeline, batch) -> tuple[Any, int]:
        nll, real = self._token_nll(pipeline, batch)
        count = int(real.sum())
        return nll.sum() / max(count, 1), count

    def evaluate(self, pipeline, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        import torch

        total = tokens = body = notes = 0.0
        held_out = []
        with torch.no_grad():
            for batch in batches:
                nll, real = self._token_nll(pipeline, batch)
                total += float(nll.sum())
                tokens += float(real.sum())
                body += float(nll[:, PREFIX - 1 :].sum())  # targets after the prefix
                notes += float(batch["notes"].sum())
                for row, n in zip(
                    batch["tokens"].tolist(), batch["lengths"].tolist(), strict=False
                ):
                    held_out.append(self.encoding.decode(row[:n]))
        loss = total / max(tokens, 1)
        metrics = {
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "nll_per_note": body / max(notes, 1),
        }
        if self.baseline or self.sample_melodies:
            from seqpipe.music.report import melody_metrics

            metrics |= melody_metrics(
                pipeline,
                held_out,
                metrics["nll_per_note"],
                train=None if self.baseline else "",
                sample_melodies=self.sample_melodies,
                bars=self.sample_bars,
            )
        return metrics

    def bundle_info(self) -> dict[str, Any]:
        return self.encoding.info() if self.encoding is not None else {}

    def report(self, metrics: dict[str, float]) -> str:
        """``evaluate``'s metrics as Markdown tables (model vs Markov, similarity, key, copying)."""
        from seqpipe.music.report import markdown

        return markdown(metrics)
