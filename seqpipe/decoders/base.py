"""What a decoder is: the two contracts the services rely on.

A decoder plugin implements one of these (duck typing is enough; the Protocols are
``runtime_checkable``) and registers through ``register_decoders``. Options arrive as
typed keyword arguments from the config; the task's wiring (``vocab``, ``blank``) is
passed to constructors that accept it.

* :class:`FrameDecoder`: frame-aligned speech outputs -> text (``ctc_greedy``,
  ``ctc_beam``, ``attention_beam``). The speech service calls ``decode_batch`` on padded
  features and times words from what it returns.
  A CTC decoder may also offer ``stream() -> FrameStream`` (live transcription,
  :mod:`seqpipe.speech.streaming`): one utterance decoded as its frames arrive.
* :class:`TokenDecoder`: an autoregressive model -> token sequences (``sample``,
  ``beam``). It drives only the model's incremental API (``initial_state``, ``step``,
  ``reorder_state``: docs/architecture.md) and asks a :class:`TokenRules` object which
  tokens may come next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from seqpipe.decoders.hypothesis import DecodeOutput, TokenText


@runtime_checkable
class FrameDecoder(Protocol):
    #: turns token ids into text (and groups them into words for timing)
    text: TokenText

    def decode_batch(
        self, model: torch.nn.Module, feats: torch.Tensor, lengths: torch.Tensor
    ) -> DecodeOutput:
        """Run ``model`` on padded features [B, T, F] with valid ``lengths`` [B] and decode.

        The result holds one :class:`~seqpipe.decoders.hypothesis.Hypothesis` per row and,
        for CTC models, the CPU log-posteriors [B, T', V] with their lengths and the
        feature frames per output frame, from which word times are aligned."""
        ...


@runtime_checkable
class FrameStream(Protocol):
    """One utterance's CTC search fed chunk by chunk (``FrameDecoder.stream()``)."""

    def step(self, log_probs: torch.Tensor) -> None:
        """Search the next frames' log-probs [T, V] (CPU)."""
        ...

    def settle(self, pause: bool = False) -> list[str]:
        """The words that became final since the last call: no later frame changes them.
        ``pause``: the speaker has paused, so every word so far may be made final."""
        ...

    def pending(self) -> list[str]:
        """The current best guess of the words after the final ones (may change)."""
        ...

    def end(self) -> list[str]:
        """No more frames: the remaining words, final."""
        ...


class TokenRules(Protocol):
    """What may come next, per row; the decoder only masks logits with it.

    ``State`` is the rules' own per-row bookkeeping (see
    :class:`seqpipe.music.rules.MelodyRules` for the melody grammar and length)."""

    def start(self, n: int, prompt: list[int], device: Any) -> Any:
        """State for ``n`` rows that all continue ``prompt``."""
        ...

    def allowed(self, prev: torch.Tensor, state: Any) -> torch.Tensor:
        """bool [B, V]: which tokens may follow ``prev`` [B]."""
        ...

    def update(self, token: torch.Tensor, state: Any) -> Any:
        """State after each row emitted ``token`` [B]."""
        ...

    def select(self, state: Any, index: torch.Tensor) -> Any:
        """The state of rows ``index`` (beam reordering, finished rows leaving)."""
        ...

    def done(self, state: Any) -> torch.Tensor:
        """bool [B]: rows that have ended."""
        ...

    def finished(self, state: Any) -> bool:
        """Whether every row has ended."""
        ...

    def pad_only(self, logp: torch.Tensor) -> torch.Tensor:
        """Log-probabilities [B, V] that allow only padding (an ended beam's extension)."""
        ...

    def trim(self, rows: list[list[int]]) -> list[list[int]]:
        """Generated rows without their end marker and padding."""
        ...


@runtime_checkable
class TokenDecoder(Protocol):
    def generate(
        self,
        model: torch.nn.Module,
        prompt: list[int],
        n: int,
        rules: TokenRules,
        max_tokens: int,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """``n`` continuations of ``prompt`` (without it), at most ``max_tokens`` each."""
        ...
