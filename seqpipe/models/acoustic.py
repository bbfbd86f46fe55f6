"""Acoustic models for speech-to-text: ``ctc_rnn`` (DeepSpeech2-style) and ``las`` (LAS + CTC).

``ctc_rnn``: ``forward(x[B,T,F], lengths[B]) -> (logits[B,T',V], out_lengths[B])`` with
T' = ceil(T / subsample). A 2-D convolution front end (stride 2 in time and frequency per
layer) shortens the sequence the recurrent layers must walk, which is most of the speed;
the bidirectional stack runs packed, so padding never leaks into a real frame.

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

from seqpipe.models.attention import lengths_to_mask
from seqpipe.models.rnn import RecurrentStack, check_lengths
from seqpipe.models.seq2seq import Seq2Seq, State
from seqpipe.types import PositiveInt, Probability


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

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x.unsqueeze(1)  # [B, 1, T, F]
        for conv in self.convs:
            y = torch.relu(conv(y))
            lengths = _halve(lengths)
            mask = lengths_to_mask(lengths.to(y.device), y.shape[2])
            y = y * mask[:, None, :, None]
        B, C, T, F = y.shape
        return y.permute(0, 2, 1, 3).reshape(B, T, C * F), lengths


class CTCRNN(nn.Module):
    """Conv front end -> stacked bidirectional LSTM/GRU (packed) -> linear over vocab + blank."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        cell: Literal["lstm", "gru"] = "gru",
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 3,
        channels: PositiveInt = 32,
        subsample: Literal[2, 4] = 4,
        dropout: Probability = 0.1,
    ):
        super().__init__()
        self.frontend = ConvFrontEnd(input_size, channels, layers=2 if subsample == 4 else 1)
        self.proj = nn.Linear(self.frontend.output_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size)
        self.rnn = RecurrentStack(cell, hidden_size, hidden_size, num_layers, True, dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.rnn.output_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = check_lengths(x, lengths, type(self).__name__)
        y, lengths = self.frontend(x, lengths)
        y = self.dropout(self.norm(self.proj(y)))
        y, _ = self.rnn(y, lengths)
        return self.head(self.dropout(y)), lengths


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


class LAS(Seq2Seq):
    """Listen (pyramidal BiLSTM), attend and spell, with a CTC head on the listener.

    ``forward(x, lengths, targets) -> logits[B,U,V]`` (teacher forcing, per the
    seq2seq contract); ``forward(x, lengths)`` -> CTC ``(logits, lengths)`` like
    ``ctc_rnn``; ``forward_joint`` gives both from one encoder pass.
    The decoder's end token is the task's blank id (0), which CTC never emits as text.
    """

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
        super().__init__(
            input_size,
            vocab_size,
            cell="lstm",
            hidden_size=hidden_size,
            num_layers=1,
            dropout=dropout,
            embedding_size=embedding_size,
            decoder_hidden_size=decoder_hidden_size,
            attention=attention,
            attention_size=attention_size,
        )
        self.encoder = PyramidalEncoder(input_size, hidden_size, num_layers, dropout)
        self.ctc_head = nn.Linear(self.encoder.output_size, vocab_size)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> State:
        memory, enc_lengths = self.encoder(x, lengths)
        B, T, _ = memory.shape
        mask = lengths_to_mask(enc_lengths.to(memory.device), T)
        h = memory.new_zeros(self.decoder.num_layers, B, self.decoder.hidden_size)
        return {
            "memory": memory,
            "mask": mask,
            "lengths": enc_lengths.to(memory.device),
            "keys": self.attention.process_keys(memory),
            "rnn": (h, h.clone()),
            "weights": mask / mask.sum(1, keepdim=True).to(memory.dtype),
        }

    def ctc(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC logits [B,T',V] and lengths from the encoder alone (greedy/beam CTC decoding)."""
        state = self.encode(x, lengths)
        return self.ctc_head(state["memory"]), state["lengths"]

    def forward_joint(
        self, x: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(attention logits [B,U,V], CTC logits [B,T',V], CTC lengths [B]) in one encoder pass."""
        state = self.encode(x, lengths)
        ctc_logits = self.ctc_head(self.dropout(state["memory"]))
        B = targets.shape[0]
        sos = torch.full((B, 1), self.sos_id, dtype=torch.long, device=targets.device)
        inputs = torch.cat([sos, targets[:, :-1].clamp(min=0)], dim=1)
        if self.location:
            logits = []
            for u in range(inputs.shape[1]):  # location attention needs the previous weights
                step, state = self.decode_step(inputs[:, u], state)
                logits.append(step)
            att_logits = torch.stack(logits, dim=1)
        else:
            out, _ = self.decoder(self.dropout(self.embed(inputs)), state["rnn"])
            context, _ = self._attend(out, state)
            att_logits, _ = self._logits(out, context)
        return att_logits, ctc_logits, state["lengths"]

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor | None = None,
        return_attention: bool = False,
    ):
        """With ``targets``: teacher-forced attention logits [B,U,V] (seq2seq contract).
        Without: the CTC head's ``(logits[B,T',V], lengths)``, so CTC decoders work as is."""
        if targets is None:
            return self.ctc(x, lengths)
        if return_attention:
            return super().forward(x, lengths, targets, return_attention=True)
        return self.forward_joint(x, lengths, targets)[0]
