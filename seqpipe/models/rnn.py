"""Many-to-many recurrent frame models (``rnn``, ``lstm``, ``gru``) and the packed stack under them.

``forward(x[B,T,F], lengths[B]) -> (y[B,T,O], out_lengths[B])``: one output per input
frame, e.g. per-frame CTC logits. Time runs inside cuDNN/MKL's fused kernels on a
packed batch, so padding costs nothing and never leaks into a sequence's outputs
(a bidirectional layer's backward pass starts at each sequence's own last frame).
GRU/RNN training on the CPU gets the same numbers unpacked (see ``_reversed_padded``).
"""

from typing import Any, Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqpipe.errors import SeqpipeError
from seqpipe.models.attention import SelfAttention, lengths_to_mask
from seqpipe.types import NonNegativeInt, PositiveInt, Probability

Cell = Literal["lstm", "gru", "rnn"]
TORCH_RNN = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def check_lengths(x: torch.Tensor, lengths: torch.Tensor, who: str) -> torch.Tensor:
    """Lengths on the CPU (pack_padded_sequence wants them there), each in [1, T]."""
    lengths = torch.as_tensor(lengths).to("cpu", torch.int64)
    if lengths.dim() != 1 or lengths.numel() != x.shape[0]:
        raise SeqpipeError(f"{who}: lengths must be [B]={x.shape[0]}, got {tuple(lengths.shape)}")
    if lengths.numel() and (lengths.min() < 1 or lengths.max() > x.shape[1]):
        raise SeqpipeError(
            f"{who}: lengths must lie in [1, {x.shape[1]}], got {lengths.min()}..{lengths.max()}"
        )
    return lengths


class RecurrentStack(nn.Module):
    """nn.LSTM/GRU/RNN over a padded batch, packed so each sequence stops at its own length.

    The built-in recurrent core (``models/core.py``): ``forward(x[B,T,F], lengths[B]) ->
    (y[B,T,H*dirs], lengths)`` with outputs past a sequence's length zero, and, one
    direction only, ``initial_state`` / ``step`` / ``reorder_state`` for generation.
    ``run(x, lengths, state=None) -> (y, final_state)`` also returns the layer's (h, c)
    or h at each sequence's last real frame.
    """

    def __init__(
        self,
        cell: Cell,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
    ):
        super().__init__()
        kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.cell = cell
        self.rnn = TORCH_RNN[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
            **kwargs,
        )
        self.bidirectional = bidirectional
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.run(x, lengths)[0], lengths

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> Any:
        """Zeros: h [layers, B, H], or (h, c) for an LSTM."""
        weight = self.rnn.weight_hh_l0
        h = weight.new_zeros(self.rnn.num_layers, batch_size, self.rnn.hidden_size, device=device)
        return (h, h.clone()) if self.cell == "lstm" else h

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One frame x [B,F] -> (y [B,H], state); the fused layer on a length-1 sequence."""
        out, state = self.rnn(x.unsqueeze(1), state)
        return out[:, 0], state

    def reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        """Rows ``index`` of the state; its batch dimension is 1, as in nn.LSTM/GRU."""
        if isinstance(state, tuple):
            return tuple(s.index_select(1, index) for s in state)
        return state.index_select(1, index)

    def run(self, x: torch.Tensor, lengths: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """``(y[B,T,H*dirs], final_state)``, starting from ``state`` (zeros if None)."""
        lengths = check_lengths(x, lengths, type(self).__name__)
        if torch.onnx.is_in_onnx_export():  # no packing, no branch on the example's lengths
            return self._reversed_padded(x, lengths, state)
        if bool((lengths == x.shape[1]).all()):  # nothing padded: packing would only cost time
            return self.rnn(x, state)
        if x.device.type == "cpu" and self.cell != "lstm" and torch.is_grad_enabled():
            return self._reversed_padded(x, lengths, state)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, state

    def chunk_run(self, x: torch.Tensor, keep: int, state: list | None = None) -> tuple:
        """Latency-controlled run (LC-BLSTM, Zhang et al. 2016) of one chunk of a stream.

        ``x`` [B, keep + A, F]: ``keep`` new frames, then A frames of look-ahead. In each
        layer the forward direction starts from ``state`` (its state after the previous
        chunk; zeros if None) and hands on its state after the ``keep`` frames; the
        backward direction runs over all keep + A frames from zeros, so the look-ahead
        is all it sees of the future. -> (y [B, keep + A, H*dirs], state): the
        look-ahead's outputs are only right for the frames the caller keeps.
        With A reaching the end of the utterance, y equals ``forward`` on the whole of it.
        """
        rnn, lstm = self.rnn, self.cell == "lstm"
        dirs, per = (2 if rnn.bidirectional else 1), (4 if rnn.bias else 2)
        if lstm:
            run = _lstm_step
        else:
            run = torch.gru if self.cell == "gru" else getattr(torch, f"rnn_{rnn.nonlinearity}")
        zeros = x.new_zeros(1, x.shape[0], rnn.hidden_size)
        carried = []
        for layer in range(rnn.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                weights = rnn._flat_weights[k * per : (k + 1) * per]
                if d == 0:
                    h = state[layer] if state is not None else ((zeros, zeros) if lstm else zeros)
                    out, h = run(x[:, :keep], h, weights, rnn.bias, 1, 0.0, False, False, True)
                    carried.append(h)
                    if x.shape[1] > keep:  # the look-ahead, from the chunk's end state
                        ahead, _ = run(
                            x[:, keep:], h, weights, rnn.bias, 1, 0.0, False, False, True
                        )
                        out = torch.cat([out, ahead], dim=1)
                else:
                    h0 = (zeros, zeros) if lstm else zeros
                    out, _ = run(x.flip(1), h0, weights, rnn.bias, 1, 0.0, False, False, True)
                    out = out.flip(1)
                outs.append(out)
            x = torch.cat(outs, dim=-1) if dirs == 2 else outs[0]
        return x, carried

    def chunked(
        self, x: torch.Tensor, lengths: torch.Tensor, chunk: int, lookahead: int
    ) -> torch.Tensor:
        """``chunk_run`` over a whole padded batch at once, for chunk-aware training.

        x [B, T, F] -> y [B, T, H*dirs], zero past each length. The forward direction runs
        over the whole sequence; the backward one over every window of chunk + look-ahead
        frames (cut by the sequence's length) from zeros, each reversed within its own
        length, so a model trained through it learns the backward direction it streams
        with. One layer: exactly ``chunk_run``'s outputs. Deeper, one approximation (for
        one pass over the batch): a layer's look-ahead inputs are the layer below's
        outputs for those frames as their own chunk, where ``chunk_run`` recomputes them
        within the window.
        """
        rnn, B, T = self.rnn, x.shape[0], x.shape[1]
        if self.cell == "lstm":
            run = _lstm_outputs
        else:
            run = torch.gru if self.cell == "gru" else getattr(torch, f"rnn_{rnn.nonlinearity}")
        dirs, per, W = (2 if rnn.bidirectional else 1), (4 if rnn.bias else 2), chunk + lookahead
        n = -(-T // chunk)
        lengths = lengths.to(x.device)
        starts = torch.arange(n, device=x.device) * chunk
        size = (lengths[:, None] - starts[None, :]).clamp(0, W).reshape(-1, 1)  # [B*n, 1]
        t = torch.arange(W, device=x.device)[None, :]
        reverse = torch.where(t < size, size - 1 - t, t).unsqueeze(-1)  # within each window
        valid = (torch.arange(T, device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        for layer in range(rnn.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                weights = rnn._flat_weights[k * per : (k + 1) * per]
                h0 = x.new_zeros(1, B if d == 0 else B * n, rnn.hidden_size)
                h0 = (h0, h0) if self.cell == "lstm" else h0
                if d == 0:
                    out, _ = run(x, h0, weights, rnn.bias, 1, 0.0, self.training, False, True)
                else:
                    padded = nn.functional.pad(x, (0, 0, 0, n * chunk + lookahead - T))
                    windows = padded.unfold(1, W, chunk).transpose(2, 3).reshape(B * n, W, -1)
                    windows = windows.gather(1, reverse.expand(-1, -1, windows.shape[2]))
                    out, _ = run(windows, h0, weights, rnn.bias, 1, 0.0, self.training, False, True)
                    out = out.gather(1, reverse.expand(-1, -1, out.shape[2]))[:, :chunk]
                    out = out.reshape(B, n * chunk, -1)[:, :T]
                outs.append(out)
            x = (torch.cat(outs, dim=-1) if dirs == 2 else outs[0]) * valid
            if layer < rnn.num_layers - 1 and rnn.dropout:
                x = nn.functional.dropout(x, rnn.dropout, self.training)
        return x

    def _reversed_padded(self, x: torch.Tensor, lengths: torch.Tensor, state) -> tuple:
        """The packed result without packing, for training GRU/RNN stacks on the CPU.

        A packed batch leaves oneDNN's fused kernels for a per-step loop whose backward
        pass is ~4x slower (a 3-layer BiGRU: 1.3 s vs 0.3 s a batch). Unpacked, a forward
        direction is already exact on each real frame; a backward direction becomes exact
        when each sequence is reversed within its own length first (padding stays at the
        end), so layer by layer: reverse, run, reverse back, zero the padding. (LSTM keeps
        packing in training: its final cell state at each sequence's end is not among the
        outputs, so here an LSTM's final state is h alone.) ONNX export runs this path for
        every cell (``seqpipe.deploy.export``): packed sequences do not export.
        """
        rnn, T = self.rnn, x.shape[1]
        if self.cell == "lstm":
            run = _lstm_outputs
        else:
            run = torch.gru if self.cell == "gru" else getattr(torch, f"rnn_{rnn.nonlinearity}")
        dirs, per = (2 if rnn.bidirectional else 1), (4 if rnn.bias else 2)
        lengths = lengths.to(x.device)
        t = torch.arange(T, device=x.device)[None, :]
        inside = t < lengths[:, None]
        valid = inside.unsqueeze(-1).to(x.dtype)
        reverse = torch.where(inside, lengths[:, None] - 1 - t, t).unsqueeze(-1)
        last = (lengths - 1).view(-1, 1, 1)
        finals = []
        for layer in range(rnn.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                h0 = (
                    x.new_zeros(1, x.shape[0], rnn.hidden_size)
                    if state is None
                    else (state[0] if isinstance(state, tuple) else state)[k : k + 1]
                )
                if self.cell == "lstm":
                    h0 = (h0, h0 if state is None else state[1][k : k + 1])
                inp = x if d == 0 else x.gather(1, reverse.expand(-1, -1, x.shape[2]))
                weights = rnn._flat_weights[k * per : (k + 1) * per]
                out, _ = run(inp, h0, weights, rnn.bias, 1, 0.0, self.training, False, True)
                at_end = out.gather(1, last.expand(-1, 1, out.shape[2])).squeeze(1)
                finals.append(at_end)  # both directions end at the sequence's last real step
                if d == 1:
                    out = out.gather(1, reverse.expand(-1, -1, out.shape[2]))
                outs.append(out * valid)
            x = torch.cat(outs, dim=-1) if dirs == 2 else outs[0]
            if layer < rnn.num_layers - 1 and rnn.dropout:
                x = nn.functional.dropout(x, rnn.dropout, self.training)
        return x, torch.stack(finals)


def _lstm_outputs(x, h0, weights, bias, layers, dropout, train, bidirectional, batch_first):
    """``torch.gru``'s calling convention for ``torch.lstm`` (h0 is the (h, c) pair)."""
    out, _, _ = torch.lstm(x, h0, weights, bias, layers, dropout, train, bidirectional, batch_first)
    return out, None


def _lstm_step(x, h0, weights, bias, layers, dropout, train, bidirectional, batch_first):
    """``torch.lstm`` returning ``(out, (h, c))``: the final state travels as a pair."""
    out, h, c = torch.lstm(x, h0, weights, bias, layers, dropout, train, bidirectional, batch_first)
    return out, (h, c)


class RecurrentFrameModel(nn.Module):
    """Stacked (bi)directional recurrent network with one output per frame.

    input_dropout -> [input projection] -> recurrent stack (dropout between layers and
    after the last) -> [self-attention] -> [output projection to ``output_size``].
    With ``output_projection: false`` it returns the recurrent features themselves
    (size ``hidden_size * directions``), which is how other models reuse it as an encoder.
    """

    cell: Cell = "lstm"

    def __init__(
        self,
        input_size: int,
        output_size: int | None = None,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        input_dropout: Probability = 0.0,
        input_projection: NonNegativeInt = 0,
        output_projection: bool = True,
        self_attention: bool = False,
        attention_heads: PositiveInt = 1,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
    ):
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_proj = nn.Linear(input_size, input_projection) if input_projection else None
        self.stack = RecurrentStack(
            self.cell,
            input_projection or input_size,
            hidden_size,
            num_layers,
            bidirectional,
            dropout,
            nonlinearity,
        )
        features = self.stack.output_size
        self.dropout = nn.Dropout(dropout)
        self.attention = (
            SelfAttention(features, attention_heads, dropout) if self_attention else None
        )
        if output_projection and output_size is None:
            raise SeqpipeError(f"{type(self).__name__}: output_size is required for the projection")
        self.output_proj = nn.Linear(features, output_size) if output_projection else None
        self.output_size = output_size if output_projection else features

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, return_attention: bool = False):
        """``(y[B,T,O], lengths)``; plus the self-attention weights [B,H,T,T] if asked."""
        x = self.input_dropout(x)
        if self.input_proj is not None:
            x = self.input_proj(x)
        y, _ = self.stack.run(x, lengths)
        y = self.dropout(y)
        weights = None
        if self.attention is not None:
            y, weights = self.attention(y, lengths_to_mask(lengths.to(y.device), y.shape[1]))
        if self.output_proj is not None:
            y = self.output_proj(y)
        return (y, lengths, weights) if return_attention else (y, lengths)


class RNN(RecurrentFrameModel):
    """Vanilla (Elman) RNN: h_t = tanh(W x_t + U h_{t-1} + b), or relu.

    Conventions: W = ``stack.rnn.weight_ih_l0`` [hidden, input] and U =
    ``stack.rnn.weight_hh_l0`` [hidden, hidden] multiply column vectors (rows are the
    hidden units); b = bias_ih + bias_hh. Textbook check (tests/test_models.py): with
    W=[[.5,.2],[.3,.8]], U=[[.1,.4],[.6,.7]], b=[.1,.2], h0=0, x1=[1,0], x2=[0,1] this gives
    h1=[0.537, 0.462] and h2=[0.492, 0.928]. A widely copied tutorial prints
    h2=[0.515, 0.942]; that comes from an arithmetic slip in U.h1 (it needs U.h1 =
    [0.270, 0.756]; the true value is [0.239, 0.646]), not from another convention
    (transposing W and/or U gives neither number).

    Plain RNNs forget within tens of steps (gradients vanish): see
    ``benchmarks/adding_problem.py``. Prefer ``lstm`` or ``gru`` for real work.
    """

    cell = "rnn"


class LSTM(RecurrentFrameModel):
    """Stacked (bi)LSTM, many-to-many."""

    cell = "lstm"

    def __init__(
        self,
        input_size: int,
        output_size: int | None = None,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        input_dropout: Probability = 0.0,
        input_projection: NonNegativeInt = 0,
        output_projection: bool = True,
        self_attention: bool = False,
        attention_heads: PositiveInt = 1,
    ):
        # the base options minus ``nonlinearity``, which only the vanilla RNN has
        super().__init__(**{k: v for k, v in locals().items() if k not in ("self", "__class__")})


class GRU(LSTM):
    """Stacked (bi)GRU, many-to-many: fewer parameters than an LSTM, similar memory."""

    cell = "gru"


# -- the built-in recurrent cores: what ``cell: lstm|gru|rnn`` builds in composite models.
# Registered with ``register_cells`` (models/__init__.py) like any plugin's core; the weights
# live in ``rnn`` (an nn.LSTM/GRU/RNN), so bundles keep their state_dict keys.


class LSTMCore(RecurrentStack):
    """Stacked (bi)LSTM core, fused and packed."""

    cell: Cell = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 1,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
    ):
        super().__init__(self.cell, input_size, hidden_size, num_layers, bidirectional, dropout)


class GRUCore(LSTMCore):
    """Stacked (bi)GRU core, fused and packed."""

    cell = "gru"


class RNNCore(RecurrentStack):
    """Stacked (bi) Elman RNN core (tanh or relu)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 1,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
    ):
        super().__init__(
            "rnn", input_size, hidden_size, num_layers, bidirectional, dropout, nonlinearity
        )
