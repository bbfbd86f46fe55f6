"""``ctc_greedy``: best token per frame, repeats merged, blanks dropped.

The fastest decoder and, for a well-trained character model without a language
model, within a fraction of a point of beam search. Works on the whole batch at
once (one argmax), so it costs nothing next to the acoustic model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqpipe.decoders.hypothesis import DecodeOutput, Hypothesis, SettledText, TokenText


def ctc_posteriors(
    model: torch.nn.Module, feats: torch.Tensor, feat_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Run a CTC model; return CPU float32 log-probs [B,T',V], lengths [B] and T/T'.

    The ratio lets callers turn output frames back into feature frames (and seconds)
    whatever subsampling the model's front end does.
    """
    out, out_lengths = model(feats, feat_lengths)
    log_probs = torch.log_softmax(out.float(), dim=-1).cpu().contiguous()
    out_lengths = torch.as_tensor(out_lengths).cpu().long().clamp(max=log_probs.shape[1])
    longest = int(torch.argmax(feat_lengths))
    ratio = float(feat_lengths[longest]) / max(1, int(out_lengths[longest]))
    return log_probs, out_lengths, ratio


class CTCGreedy:
    """Greedy CTC decoding. ``vocab`` and ``blank`` come from the task."""

    def __init__(self, vocab: Sequence[str], blank: int = 0):
        self.text = TokenText(vocab, blank)
        self.blank = blank

    def __call__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> list[Hypothesis]:
        """Decode log-probs (or logits) [B,T,V] with valid lengths [B]."""
        best, ids = log_probs.max(dim=-1)  # [B, T]
        B, T = ids.shape
        lengths = torch.full((B,), T) if lengths is None else torch.as_tensor(lengths).cpu()
        previous = torch.cat([ids.new_full((B, 1), -1), ids[:, :-1]], dim=1)
        keep = (ids != self.blank) & (ids != previous)
        ids, keep, best = ids.cpu(), keep.cpu(), best.float().cpu()
        hyps = []
        for b in range(B):
            n = int(lengths[b])
            frames = torch.nonzero(keep[b, :n]).flatten()
            tokens = ids[b, frames].tolist()
            hyps.append(
                Hypothesis(
                    text=self.text.text(tokens),
                    tokens=tokens,
                    score=float(best[b, :n].sum()),
                    frames=frames.tolist(),
                )
            )
        return hyps

    def decode_batch(
        self, model: torch.nn.Module, feats: torch.Tensor, feat_lengths: torch.Tensor
    ) -> DecodeOutput:
        """Run the acoustic model and decode; keeps the posteriors for word timing."""
        log_probs, lengths, ratio = ctc_posteriors(model, feats, feat_lengths)
        return DecodeOutput(self(log_probs, lengths), log_probs, lengths, ratio)

    def stream(self) -> GreedyStream:
        """A live search (``decoders.base.FrameStream``): greedy never revises a token."""
        return GreedyStream(self.text)


class GreedyStream:
    """Greedy CTC over a stream: a word is final once the separator after it is."""

    def __init__(self, text: TokenText):
        self.path = SettledText(text)
        self.previous = -1

    def step(self, log_probs: torch.Tensor) -> None:
        for token in log_probs.argmax(dim=-1).tolist():
            if token != self.path.text.blank and token != self.previous:
                self.path.tokens.append(token)
            self.previous = token

    def settle(self, pause: bool = False) -> list[str]:
        return self.path.settle(everything=pause)

    def pending(self) -> list[str]:
        return self.path.tail()

    def end(self) -> list[str]:
        return self.path.settle(everything=True)
