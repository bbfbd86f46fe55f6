"""``seq2seq``: recurrent encoder-decoder with attention (listen-attend-spell style).

Training (teacher forcing): ``forward(x[B,T,F], lengths[B], targets[B,U]) -> logits[B,U,V]``,
``logits[:, u]`` scores ``targets[:, u]`` given ``targets[:, :u]`` and the input. The
decoder's first input is the start token ``sos_id == vocab_size`` (an extra embedding
row, so the task's vocabulary needs no <sos>); the task appends its own end token to
``targets``. Padding ids in ``targets`` (any value, -100 included) never affect the
logits of real positions.

Decoding (greedy/beam, by decoders): ``state = encode(x, lengths)``, then
``logits, state = decode_step(token[B], state)`` starting from ``token = sos_id``;
``state["weights"]`` holds the last attention weights [B,T] for plotting and
``reorder_state(state, index)`` selects rows for beam search.

Decoder (Luong et al. 2015): s_u = RNN(embed(y_{u-1}) [, h~_{u-1}]),
(c_u, a_u) = attention(s_u, encoder outputs), h~_u = tanh(W [s_u; c_u]), logits = V h~_u.
Without input feeding and with ``additive``/``dot`` attention nothing feeds back from
the attention, so training runs the decoder fused over all U steps and attends for all
of them at once. ``input_feeding: true`` (Luong's feed of h~ into the next input) or
``attention: location`` (Chorowski, needs the previous weights) make training step
through U in Python: more accurate alignment, slower training.
"""

from typing import Any, Literal

import torch
from torch import nn

from seqpipe.models.attention import ATTENTION, lengths_to_mask
from seqpipe.models.core import BUILTIN_CELLS, BuildCell, CellSpec, Encoder, cell_name, make_core
from seqpipe.models.rnn import TORCH_RNN, Cell
from seqpipe.types import NonNegativeInt, PositiveInt, Probability

State = dict[str, Any]


class AttentionDecoder(nn.Module):
    """The speller: next-token logits from the previous token and attention over ``memory``.

    Separate from any encoder so that ``seq2seq``, ``las`` and ``ctc_rnn`` (as a
    training-only auxiliary head) share one implementation.
    """

    def __init__(
        self,
        memory_size: int,
        vocab_size: int,
        cell: Cell = "lstm",
        embedding_size: PositiveInt = 128,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 1,
        attention: Literal["additive", "dot", "location"] = "additive",
        attention_size: PositiveInt = 128,
        input_feeding: bool = False,
        dropout: Probability = 0.0,
    ):
        super().__init__()
        self.cell = cell
        self.sos_id = vocab_size
        self.input_feeding = input_feeding
        self.location = attention == "location"
        self.embed = nn.Embedding(vocab_size + 1, embedding_size)
        feed = hidden_size if input_feeding else 0
        self.rnn = TORCH_RNN[cell](
            embedding_size + feed,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.attention = ATTENTION[attention](hidden_size, memory_size, attention_size)
        self.combine = nn.Linear(hidden_size + memory_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def start(self, memory: torch.Tensor, lengths: torch.Tensor) -> State:
        """The decoder's starting state over encoder outputs ``memory[B,T,D]``."""
        B, T, _ = memory.shape
        lengths = lengths.to(memory.device)
        mask = lengths_to_mask(lengths, T)
        h = memory.new_zeros(self.rnn.num_layers, B, self.rnn.hidden_size)
        state: State = {
            "memory": memory,
            "mask": mask,
            "lengths": lengths,
            "keys": self.attention.process_keys(memory),
            "rnn": (h, h.clone()) if self.cell == "lstm" else h,
            # uniform over real frames: the location convolution's first "previous" alignment
            "weights": mask / mask.sum(1, keepdim=True).to(memory.dtype),
        }
        if self.input_feeding:
            state["feed"] = memory.new_zeros(B, self.rnn.hidden_size)
        return state

    def _attend(self, query: torch.Tensor, state: State):
        if self.location:
            return self.attention(
                query, state["memory"], state["mask"], state["weights"], processed=state["keys"]
            )
        return self.attention(query, state["memory"], state["mask"], processed=state["keys"])

    def _logits(self, s: torch.Tensor, context: torch.Tensor):
        attentional = torch.tanh(self.combine(torch.cat([s, context], dim=-1)))
        return self.head(self.dropout(attentional)), attentional

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Previous token [B] in, next-token logits [B,V] out; ``state`` is not modified."""
        x = self.dropout(self.embed(token.clamp(min=0)))
        if self.input_feeding:
            x = torch.cat([x, state["feed"]], dim=-1)
        out, rnn_state = self.rnn(x.unsqueeze(1), state["rnn"])
        s = out[:, 0]
        context, weights = self._attend(s, state)
        logits, attentional = self._logits(s, context)
        new = dict(state, rnn=rnn_state, weights=weights)
        if self.input_feeding:
            new["feed"] = attentional
        return logits, new

    def teacher_force(
        self, state: State, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B,U,V] and attention [B,U,T] for ``targets[B,U]`` from a started ``state``."""
        B = targets.shape[0]
        sos = torch.full((B, 1), self.sos_id, dtype=torch.long, device=targets.device)
        inputs = torch.cat([sos, targets[:, :-1].clamp(min=0)], dim=1)  # [B, U]
        if self.input_feeding or self.location:
            steps = []
            for u in range(inputs.shape[1]):  # each step needs the previous attention
                logits, state = self.step(inputs[:, u], state)
                steps.append((logits, state["weights"]))
            return torch.stack([s[0] for s in steps], 1), torch.stack([s[1] for s in steps], 1)
        out, _ = self.rnn(self.dropout(self.embed(inputs)), state["rnn"])
        context, weights = self._attend(out, state)  # all U queries at once
        return self._logits(out, context)[0], weights

    @staticmethod
    def reorder_state(state: State, index: torch.Tensor) -> State:
        """Pick batch rows ``index`` (beam search); the recurrent state's batch dim is 1."""
        new: State = {}
        for key, value in state.items():
            if key == "rnn":
                new[key] = (
                    tuple(v.index_select(1, index) for v in value)
                    if isinstance(value, tuple)
                    else value.index_select(1, index)
                )
            else:
                new[key] = value.index_select(0, index)
        return new


class AttentionDecoding:
    """The decoding API of ``attention_beam`` for a model with a ``speller``
    (:class:`AttentionDecoder`) and ``listen(x, lengths) -> (memory, memory_lengths)``."""

    speller: AttentionDecoder | None

    @property
    def sos_id(self) -> int:
        return self.speller.sos_id

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> State:
        """Run the encoder once; the returned state is the decoder's starting point."""
        if self.speller is None:
            raise ValueError(f"{type(self).__name__}: no attention decoder to decode with")
        return self.speller.start(*self.listen(x, lengths))

    def decode_step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Previous token [B] in, next-token logits [B,V] out; ``state`` is not modified."""
        return self.speller.step(token, state)

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        return self.speller.reorder_state(state, index)

    def spell(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        return_attention: bool = False,
    ):
        """Teacher-forced logits [B,U,V]; plus the attention weights [B,U,T] if asked."""
        logits, weights = self.speller.teacher_force(self.encode(x, lengths), targets)
        return (logits, weights) if return_attention else logits


class Seq2Seq(AttentionDecoding, nn.Module):
    """``cell`` is the encoder's recurrent core (``models/core.py``, a plugin's too); the
    decoder is an nn.LSTM/GRU/RNN: ``decoder_cell``, by default the same as a built-in
    ``cell`` and ``lstm`` under a plugin's core."""

    def __init__(
        self,
        input_size: int,
        vocab_size: int,
        cell: CellSpec = "lstm",
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        bidirectional: bool = True,
        dropout: Probability = 0.0,
        input_dropout: Probability = 0.0,
        input_projection: NonNegativeInt = 0,
        embedding_size: PositiveInt = 128,
        decoder_hidden_size: PositiveInt = 256,
        decoder_layers: PositiveInt = 1,
        attention: Literal["additive", "dot", "location"] = "additive",
        attention_size: PositiveInt = 128,
        input_feeding: bool = False,
        decoder_cell: Cell | None = None,
        build_cell: BuildCell | None = None,
    ):
        super().__init__()

        def core_of(size: int) -> nn.Module:
            return make_core(
                cell,
                build_cell,
                who="seq2seq",
                input_size=size,
                hidden_size=hidden_size,
                num_layers=num_layers,
                bidirectional=bidirectional,
                dropout=dropout,
            )

        self.encoder = Encoder(core_of, input_size, input_projection, dropout, input_dropout)
        if decoder_cell is None:
            decoder_cell = cell_name(cell) if cell_name(cell) in BUILTIN_CELLS else "lstm"
        self.speller = AttentionDecoder(
            self.encoder.output_size,
            vocab_size,
            cell=decoder_cell,
            embedding_size=embedding_size,
            hidden_size=decoder_hidden_size,
            num_layers=decoder_layers,
            attention=attention,
            attention_size=attention_size,
            input_feeding=input_feeding,
            dropout=dropout,
        )

    def listen(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, lengths)[0], lengths

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        return_attention: bool = False,
    ):
        """Teacher-forced logits [B,U,V]; plus the attention weights [B,U,T] if asked."""
        return self.spell(x, lengths, targets, return_attention)
