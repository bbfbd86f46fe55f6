"""Acoustic models for speech-to-text: ``ctc_rnn`` (DeepSpeech2-style) and ``las`` (LAS + CTC).

``ctc_rnn``: ``forward(x[B,T,F], lengths[B]) -> (logits[B,T',V], out_lengths[B])`` with
T' = ceil(T / subsample). A 2-D convolution front end (stride 2 in time and frequency per
layer) shortens the sequence the recurrent layers must walk, which is most of the speed;
the bidirectional stack runs packed, so padding never leaks into a real frame.
``speller_size: N`` adds an attention decoder as a training-only auxiliary loss (joint
CTC-attention training of the same encoder); inference reads the CTC head alone.

``las``: a pyramidal BiLSTM encoder (each layer halves time by stacking frame pairs,
Chan et al. 2016) under the project's attention decoder (``seqpipe.models.seq2seq``),
plus a linear CTC head on the encoder so the two losses can be trained jointly
(Kim et al. 2017; SpeechBrain's CRDNN recipes). The CTC branch forces monotonic
alignment early in training, when attention alone wanders.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from seqpipe.errors import SeqpipeError
from seqpipe.models.attention import lengths_to_mask
from seqpipe.models.core import BuildCell, CellSpec, make_core
from seqpipe.models.rnn import RecurrentStack, check_lengths
from seqpipe.models.seq2seq import AttentionDecoder, AttentionDecoding
from seqpipe.types import NonNegativeInt, PositiveInt, Probability


def _halve(lengths: torch.Tensor) -> torch.Tensor:
    """Output lengths of a stride-2, kernel-3, padding-1 convolution: ceil(L / 2)."""
    return (lengths + 1) // 2


class ConvFrontEnd(nn.Module):
    """[B,T,F] -> [B,ceil(T/2^n),C*ceil(F/2^n)]; frames past each length are zeroed after
    every layer so a padded batch and a lone utterance see identical numbers."""

    def __init__(self, input_size: int, channels: int = 32, layers: int = 2):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else channels, channels, 3, stride=2, padding=1)
            for i in range(layers)
        )
        freq = input_size
        for _ in range(layers):
            freq = (freq + 1) // 2
        self.output_size = channels * freq
        self.stride = 2**layers  # input frames per output frame

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x.unsqueeze(1)  # [B, 1, T, F]
        for conv in self.convs:
            y = torch.relu(conv(y))
            lengths = _halve(lengths)
            mask = lengths_to_mask(lengths.to(y.device), y.shape[2])
            y = y * mask[:, None, :, None]
        B, C, T, F = y.shape
        return y.permute(0, 2, 1, 3).reshape(B, T, C * F), lengths


class JointCTCAttention(AttentionDecoding):
    """One listener under two heads, a CTC ``ctc_head(memory)`` and an attention ``speller``;
    ``forward_joint`` gives both from one encoder pass for the joint loss."""

    def forward_joint(
        self, x: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(attention logits [B,U,V], CTC logits [B,T',V], CTC lengths [B])."""
        if self.speller is None:
            raise ValueError(f"{type(self).__name__}: no speller to train (speller_size: 0)")
        memory, lengths = self.listen(x, lengths)
        att_logits, _ = self.speller.teacher_force(self.speller.start(memory, lengths), targets)
        return att_logits, self.ctc_head(memory), lengths

    def ctc(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC logits [B,T',V] and their lengths: what every CTC decoder reads."""
        memory, lengths = self.listen(x, lengths)
        return self.ctc_head(memory), lengths


class CTCRNN(JointCTCAttention, nn.Module):
    """Conv front end -> bidirectional recurrent core (``cell``: gru, lstm, rnn or a plugin's
    core, ``models/core.py``) -> linear over vocab + blank.

    ``speller_size > 0`` adds an attention decoder over the recurrent outputs, trained
    jointly with CTC (``forward_joint``) as an auxiliary loss: it shapes the encoder
    during training, while inference stays plain CTC (``forward``). ``make_bundle.py
    --drop-speller`` ships the model without it, with the same CTC weights.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        cell: CellSpec = "gru",
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 3,
        channels: PositiveInt = 32,
        subsample: Literal[2, 4] = 4,
        dropout: Probability = 0.1,
        speller_size: NonNegativeInt = 0,
        speller_attention: Literal["additive", "location"] = "additive",
        train_chunk: NonNegativeInt = 0,
        train_lookahead: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = 0,
        train_chunk_share: Probability = 1.0,
        build_cell: BuildCell | None = None,
    ):
        """``train_chunk`` > 0: train as it streams (chunk-aware training): the backward
        direction sees chunks of that many frames after the front end (``subsample``
        feature frames each) plus ``train_lookahead`` frames, as ``stream_step`` does;
        evaluation and offline inference stay whole-utterance. ``train_lookahead: [lo, hi]``
        draws each batch's look-ahead from that range; ``train_chunk_share`` < 1 trains
        that share of batches chunked and the rest whole, so one model serves both ways."""
        super().__init__()
        self.train_chunk, self.train_chunk_share = train_chunk, train_chunk_share
        self.train_lookahead = (
            tuple(train_lookahead)
            if isinstance(train_lookahead, list | tuple)
            else (train_lookahead,) * 2
        )
        if self.train_lookahead[0] > self.train_lookahead[1]:
            raise SeqpipeError(
                f"ctc_rnn: train_lookahead {list(train_lookahead)} is not [low, high]"
            )
        self.frontend = ConvFrontEnd(input_size, channels, layers=2 if subsample == 4 else 1)
        self.proj = nn.Linear(self.frontend.output_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size)
        self.rnn = make_core(
            cell,
            build_cell,
            who="ctc_rnn",
            input_size=hidden_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=True,
            dropout=dropout,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.rnn.output_size, output_size)
        self.speller = None
        if speller_size:
            self.speller = AttentionDecoder(
                self.rnn.output_size,
                output_size,
                embedding_size=min(64, speller_size),
                hidden_size=speller_size,
                attention=speller_attention,
                attention_size=min(128, speller_size),
                dropout=dropout,
            )

    @property
    def joint(self) -> bool:
        """Whether the task trains CTC + attention (``forward_joint``) or CTC alone."""
        return self.speller is not None

    def listen(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = check_lengths(x, lengths, type(self).__name__)
        y, lengths = self.frontend(x, lengths)
        y = self.dropout(self.norm(self.proj(y)))
        if self.training and self.train_chunk and float(torch.rand(())) < self.train_chunk_share:
            if not callable(getattr(self.rnn, "chunked", None)):
                raise SeqpipeError(
                    f"ctc_rnn: train_chunk needs a core with chunked() ({type(self.rnn).__name__} has none)"
                )
            low, high = self.train_lookahead
            lookahead = int(torch.randint(low, high + 1, ()))
            return self.rnn.chunked(y, lengths, self.train_chunk, lookahead), lengths
        y, _ = self.rnn(y, lengths)
        return y, lengths

    def ctc_head(self, memory: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(memory))

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor | None = None,
        joint: bool = False,
    ):
        """CTC ``(logits[B,T',V], lengths)``; with ``targets`` and ``joint=True``, what
        :meth:`forward_joint` returns (through ``forward``, so DDP syncs its gradients)."""
        if joint:
            return self.forward_joint(x, lengths, targets)
        return self.ctc(x, lengths)

    @torch.no_grad()
    def stream_step(
        self, x: torch.Tensor, lookahead: int, state: tuple | None = None
    ) -> tuple[torch.Tensor, tuple]:
        """One chunk of a stream: CTC logits of its frames, and the state for the next.

        ``x`` [B, N + A, F]: N new feature frames (a multiple of ``stride`` except in
        the last chunk), then A frames of look-ahead that the next call sees again as new
        frames. -> (logits [B, ceil(N / stride), V], state). The convolutions read the
        last ``stride`` frames of the chunk before as left context; the recurrent core
        runs latency-controlled (``chunk_run``: its forward direction carries its state,
        the backward one sees the chunk and its look-ahead). A look-ahead that reaches
        the end of the utterance gives exactly ``forward``'s logits.
        """
        if not callable(getattr(self.rnn, "chunk_run", None)):
            raise SeqpipeError(
                f"ctc_rnn: its recurrent core ({type(self.rnn).__name__}) cannot stream"
            )
        stride = self.frontend.stride
        context, carried = state if state is not None else (None, None)
        window = x if context is None else torch.cat([context, x], dim=1)
        lengths = torch.full((x.shape[0],), window.shape[1], dtype=torch.long)
        y, _ = self.frontend(window, lengths)
        if context is not None:  # the output the context frames belong to
            y = y[:, 1:]
        new = x.shape[1] - lookahead
        keep = -(-new // stride)
        y, carried = self.rnn.chunk_run(self.norm(self.proj(y)), keep, carried)
        context = x[:, new - stride : new] if new >= stride else None
        return self.head(y[:, :keep]), (context, carried)

    @property
    def stride(self) -> int:
        """Feature frames per output frame."""
        return self.frontend.stride


class PyramidalEncoder(nn.Module):
    """BiLSTM layers, each but the first reading pairs of frames stacked (time / 2 per layer)."""

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 3, dropout: float = 0.0
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            RecurrentStack("lstm", input_size if i == 0 else 4 * hidden_size, hidden_size, 1, True)
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.output_size = 2 * hidden_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = check_lengths(x, lengths, type(self).__name__)
        for i, layer in enumerate(self.layers):
            if i > 0:
                if x.shape[1] % 2:
                    x = nn.functional.pad(x, (0, 0, 0, 1))  # zero frame; masked by lengths
                B, T, D = x.shape
                x = x.reshape(B, T // 2, 2 * D)
                lengths = _halve(lengths)
            x, _ = layer(x, lengths)
            x = self.dropout(x)
        return x, lengths


class LAS(JointCTCAttention, nn.Module):
    """Listen (pyramidal BiLSTM), attend and spell, with a CTC head on the listener.

    ``forward(x, lengths, targets) -> logits[B,U,V]`` (teacher forcing, per the
    seq2seq contract); ``forward(x, lengths)`` -> CTC ``(logits, lengths)`` like
    ``ctc_rnn``; ``forward_joint`` gives both from one encoder pass.
    The decoder's end token is the task's blank id (0), which CTC never emits as text.
    """

    joint = True

    def __init__(
        self,
        input_size: int,
        vocab_size: int,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 3,
        dropout: Probability = 0.1,
        embedding_size: PositiveInt = 64,
        decoder_hidden_size: PositiveInt = 256,
        attention: Literal["additive", "location"] = "additive",
        attention_size: PositiveInt = 128,
    ):
        super().__init__()
        self.encoder = PyramidalEncoder(input_size, hidden_size, num_layers, dropout)
        self.speller = AttentionDecoder(
            self.encoder.output_size,
            vocab_size,
            embedding_size=embedding_size,
            hidden_size=decoder_hidden_size,
            attention=attention,
            attention_size=attention_size,
            dropout=dropout,
        )
        self.dropout = nn.Dropout(dropout)
        self.ctc_linear = nn.Linear(self.encoder.output_size, vocab_size)

    def listen(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, lengths)

    def ctc_head(self, memory: torch.Tensor) -> torch.Tensor:
        return self.ctc_linear(self.dropout(memory))

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor | None = None,
        return_attention: bool = False,
        joint: bool = False,
    ):
        """With ``targets``: teacher-forced attention logits [B,U,V] (seq2seq contract), or
        with ``joint=True`` what :meth:`forward_joint` returns (through ``forward``, so DDP
        syncs its gradients). Without: the CTC head's ``(logits[B,T',V], lengths)``, so CTC
        decoders work as is."""
        if joint:
            return self.forward_joint(x, lengths, targets)
        if targets is None:
            return self.ctc(x, lengths)
        return self.spell(x, lengths, targets, return_attention)
