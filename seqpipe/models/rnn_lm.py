"""``rnn_lm``: autoregressive next-token model (one-to-many), e.g. melody event tokens.

Training: ``forward(tokens[B,T], lengths[B]) -> logits[B,T,V]`` where ``logits[:, t]``
scores the token that follows ``tokens[:, t]`` (the task shifts targets by one). The
recurrence runs fused over a packed batch.

Generation: ``state = initial_state(B, device)``, then ``logits, state = step(token[B], state)``
per token, which costs O(1) in the sequence length: one step of the recurrence and, with
``attention_window: N``, attention over a ring buffer of the last N outputs.
``reorder_state(state, index)`` selects/duplicates batch rows for beam search.

``attention_window`` follows Magenta's attention_rnn (AttentionCellWrapper): every step
attends (additive attention, query = current output) over the last N outputs, itself
included, and mixes the result into its output, which helps with repeats a bar or two
back. Magenta also feeds the attention vector into the next step's input; that makes
training a Python loop over time, so here it only shapes the output and training stays
fused (a causal windowed attention computed in parallel).

``lookback_bars: [1, 2, 4, 8]`` adds Magenta's Lookback RNN inputs for melody tokens
(:mod:`seqpipe.features.melody_form`): each step also sees where it stands in the bar,
the token written at the same place 1, 2, 4 and 8 bars back and how long the melody
has been repeating each, and the output gets a learned copy score for each of those
tokens (a pointer to earlier bars, gated by the output and the repeat's length). The
task wires in the token timing (``token_ticks``, ``bar_ticks``, ``body_tokens``).
``step`` writes the token to the bar memory, then ``step_after`` does the rest from the
memory's facts (the part an ONNX step graph holds: :mod:`seqpipe.deploy.export`).

``cell`` is any recurrent core (``models/core.py``). The built-in ``lstm``/``gru``/``rnn``
step through their layers' cells directly (``_cell_step``); a plugin's core steps with its
own ``step()`` and needs ``initial_state`` too.
"""

from dataclasses import dataclass, field
from operator import add
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqpipe.features.melody_form import DEFAULT_BAR, BarLookback, RowMemory
from seqpipe.models.attention import AdditiveAttention, local_window_attention
from seqpipe.models.core import BuildCell, CellSpec, cell_name, make_core, needs_step, reorder_state
from seqpipe.models.rnn import RecurrentStack
from seqpipe.types import NonNegativeInt, PositiveInt, Probability

State = dict[str, Any]
RNN_CELLS = {"tanh": torch.rnn_tanh_cell, "relu": torch.rnn_relu_cell}
POSITIONS = 72  # bar-position buckets of 2 ticks (a 12/8 or 3/2 bar is 144 ticks)
MAX_RUN = 16  # repeat lengths (tokens) the copy score tells apart


@dataclass
class GateTables:
    """What an eval-mode LSTM generation looks up instead of computing
    (:meth:`RecurrentLM._build_gate_tables`); shared by the generations of one model."""

    hh_t: torch.Tensor  # [H, 4H] layer 0's hidden-to-gates weights, transposed
    gates: torch.Tensor  # [rows, 4H] layer 0's input gates by token (rows 0..V-1), then ...
    # (both with the cell gate's block doubled: :func:`double_cell_gate`)
    starts: torch.Tensor | None = None  # [2 + 2K] ... the lookback blocks' first rows
    row_starts: tuple = ()  # the same as ints: token, bar place, [candidate k], [run k]
    run_scores: list[list[float]] = field(default_factory=list)  # [K][MAX_RUN + 1] copy
    # bias + score by repeat length (float32 values: their sum in Python rounds the same)
    copy_weights: dict = field(default_factory=dict)  # lookbacks holding a token -> [H, k]
    offsets: dict = field(default_factory=dict)  # (rows, width) -> embedding_bag offsets

    def sum_rows(self, index: torch.Tensor) -> torch.Tensor:
        """[B, 4H]: the sum of the rows ``index`` [B, C] (one row's: [C]) of ``gates``;
        ``embedding_bag`` itself, without F.embedding_bag's per-call checks."""
        B, C = (1, len(index)) if index.dim() == 1 else index.shape
        offsets = self.offsets.get((B, C))
        if offsets is None:
            offsets = torch.arange(0, B * C, C, device=index.device)
            self.offsets[B, C] = offsets
        return torch.embedding_bag(
            self.gates, index.reshape(-1), offsets, False, 0, False, None, False, None
        )[0]


def double_cell_gate(gates: torch.Tensor) -> torch.Tensor:
    """``gates`` [..., 4H] (order i, f, g, o) with the g block times 2: then one sigmoid
    gives all four, tanh(g) = 2 sigmoid(2g) - 1, where tanh costs up to 3x a sigmoid's
    time per element on the CPU (exact: doubling a float only moves its exponent)."""
    gates = gates.clone()
    H = gates.shape[-1] // 4
    gates[..., 2 * H : 3 * H] *= 2
    return gates


class RowCopy(NamedTuple):
    """One row's copy scores: the lookbacks that hold a token, in ``_output``."""

    index: torch.Tensor  # [1, k] their tokens
    score: torch.Tensor  # [1, k] their copy bias + score by repeat length
    weights: torch.Tensor  # [H, k] their copy weights


class RowIndex:
    """One row's step inputs, written in place each step into numpy buffers that tensors
    view (filling one costs ~1 us, a tensor built from a list ~8 us): the 2 + 2K
    gate-table rows, then the tokens of the lookbacks that hold one, and their copy
    bias + score by repeat length."""

    def __init__(self, K: int):
        G = 2 + 2 * K
        self.buffer = np.zeros(G + K, np.int64)
        self.scores = np.zeros(K, np.float32)
        self.gates = torch.from_numpy(self.buffer)[:G]
        self.copies: dict[tuple[int, ...], RowCopy] = {}  # by the lookbacks holding a token

    def copy(self, ks: tuple[int, ...], weights: torch.Tensor) -> RowCopy:
        G, n = len(self.gates), len(ks)
        index = torch.from_numpy(self.buffer)[G : G + n].view(1, n)
        self.copies[ks] = RowCopy(index, torch.from_numpy(self.scores)[:n].view(1, n), weights)
        return self.copies[ks]


class RecurrentLM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        cell: CellSpec = "lstm",
        embedding_size: PositiveInt = 128,
        hidden_size: PositiveInt = 256,
        num_layers: PositiveInt = 2,
        dropout: Probability = 0.0,
        tie_weights: bool = False,
        attention_window: NonNegativeInt = 0,
        attention_size: PositiveInt = 64,
        lookback_bars: list[PositiveInt] | None = None,
        lookback_size: PositiveInt = 32,
        build_cell: BuildCell | None = None,
        token_ticks: list[int] | None = None,
        bar_ticks: list[int] | None = None,
        body_tokens: list[bool] | None = None,
    ):
        super().__init__()
        self.window = attention_window
        self.embed = nn.Embedding(vocab_size, embedding_size)
        self.dropout = nn.Dropout(dropout)
        self.lookback = None
        form_size = 0
        if lookback_bars:
            if token_ticks is None or bar_ticks is None or body_tokens is None:
                raise ValueError("lookback_bars needs a melody encoding (token timing)")
            self.lookback = BarLookback(
                torch.tensor(token_ticks),
                torch.tensor(bar_ticks),
                torch.tensor(body_tokens),
                tuple(lookback_bars),
            )
            K = len(lookback_bars)
            self.position_embed = nn.Embedding(POSITIONS, 16)
            self.lookback_embed = nn.Embedding(vocab_size + 1, lookback_size)  # last: none
            form_size = 16 + K * (lookback_size + 2)
        self.stack = make_core(
            cell,
            build_cell,
            who="rnn_lm",
            input_size=embedding_size + form_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
        )
        self.fused = isinstance(self.stack, RecurrentStack)  # a built-in core: fast steps
        self.cell = self.stack.cell if self.fused else cell_name(cell)
        hidden_size = self.stack.output_size
        if attention_window:
            self.attention = AdditiveAttention(hidden_size, hidden_size, attention_size)
            self.mix = nn.Linear(2 * hidden_size, hidden_size)
        # tying the output to the embedding needs a projection when the sizes differ
        self.proj = (
            nn.Linear(hidden_size, embedding_size)
            if tie_weights and embedding_size != hidden_size
            else None
        )
        # tied: the embedding matrix is the output matrix; only a bias of its own, so the
        # state_dict holds no shared tensors (safetensors bundles refuse those)
        self.head = None if tie_weights else nn.Linear(hidden_size, vocab_size)
        self.head_bias = nn.Parameter(torch.zeros(vocab_size)) if tie_weights else None
        if self.lookback is not None:
            self.copy = nn.Linear(hidden_size, K)  # copy score of each lookback's token
            self.copy_run = nn.Parameter(torch.zeros(K, MAX_RUN + 1))  # ... by repeat length
            self.register_buffer("run_offsets", torch.arange(K) * (MAX_RUN + 1), persistent=False)

    def _form(self, candidates: torch.Tensor, runs: torch.Tensor, position: torch.Tensor):
        """Lookback inputs [..., F] from candidates/runs [..., K] and bar position [...]."""
        none = self.lookback_embed.num_embeddings - 1
        looked = self.lookback_embed(torch.where(candidates >= 0, candidates, none))
        runs = runs.clamp(max=MAX_RUN).to(looked.dtype)
        flags = torch.stack([runs / MAX_RUN, (runs > 0).to(looked.dtype)], -1)  # [..., K, 2]
        where = self.position_embed((position // 2).clamp(max=POSITIONS - 1))
        return torch.cat([where, torch.cat([looked, flags], -1).flatten(-2)], -1)

    def _output(self, out: torch.Tensor, context: torch.Tensor | None, form=None) -> torch.Tensor:
        """Next-token logits; ``form``: the lookbacks' (candidates, runs capped at
        MAX_RUN) [..., K] whose tokens get their copy scores, or one row's ``RowCopy``."""
        if context is not None:
            out = self.mix(torch.cat([out, context], dim=-1))
        if self.training:
            out = self.dropout(out)
        hidden = out
        if self.proj is not None:
            out = self.proj(out)
        if self.head is None:
            logits = F.linear(out, self.embed.weight, self.head_bias)
        else:
            logits = F.linear(out, self.head.weight, self.head.bias)
        if isinstance(form, RowCopy):  # one row: only the lookbacks that hold a token
            return logits.scatter_add(-1, form.index, torch.addmm(form.score, hidden, form.weights))
        if form is not None:  # each lookback's token gets its copy score
            candidates, runs = form
            by_run = torch.take(self.copy_run, runs + self.run_offsets)
            score = F.linear(hidden, self.copy.weight, self.copy.bias) + by_run
            score = torch.where(candidates >= 0, score, 0.0)
            logits = logits.scatter_add(-1, candidates.clamp(min=0), score)
        return logits

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        tokens = tokens.clamp(min=0)  # padding ids (e.g. -100) never matter
        x = self.dropout(self.embed(tokens))
        form = None
        if self.lookback is not None:
            candidates, runs, position = self.lookback.to(tokens.device).all_at_once(tokens)
            x = torch.cat([x, self.dropout(self._form(candidates, runs, position))], -1)
            form = (candidates, runs.clamp(max=MAX_RUN))
        out, _ = self.stack(x, lengths)
        context = (
            local_window_attention(self.attention, out, self.window)[0] if self.window else None
        )
        return self._output(out, context, form)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        if not self.fused:
            needs_step(self.stack, self.cell, "rnn_lm")
        state: State = {"rnn": self.stack.initial_state(batch_size, device), "pos": 0}
        if not self.training and self.fused and self.cell == "lstm":
            state["tables"] = self._gate_tables()
        if self.lookback is not None:
            state["bars"] = self.lookback.to(device).start(batch_size, device)
            if "tables" in state and isinstance(state["bars"], RowMemory):
                state["row"] = RowIndex(len(self.lookback.distance_list))
        if self.window:
            h = self.embed.weight.new_zeros(batch_size, self.window, self.stack.output_size)
            state["values"] = h.to(device)
            state["keys"] = h.new_zeros(
                batch_size, self.window, self.attention.key_proj.out_features, device=device
            )
        return state

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One token in, the next token's logits out; ``state`` is not modified in place."""
        token = token.clamp(min=0)
        if self.lookback is None:
            return self.step_after(token, state, None)
        bars = self.lookback.write(state["bars"], token)
        logits, new = self.step_after(token, state, bars)
        new["bars"] = bars
        return logits, new

    def step_after(self, token: torch.Tensor, state: State, bars) -> tuple[torch.Tensor, State]:
        """:meth:`step` once the bar memory has taken ``token`` (>= 0): ``bars`` is what the
        lookback inputs read, ``candidates`` [B, K], ``runs`` [B, K] and ``position`` [B]
        (a ``BarMemory``/``RowMemory``, or an exported step graph's inputs); None without
        ``lookback_bars``. The returned state keeps ``state``'s ``bars``."""
        new: State = {**state, "pos": state["pos"] + 1}
        form = extra = None
        tables = state.get("tables")
        if bars is not None:
            if tables is None:  # the lookback inputs themselves (training, GRU, a graph)
                extra = self._form(bars.candidates, bars.runs, bars.position)
                form = (bars.candidates, bars.runs.clamp(max=MAX_RUN))
            elif isinstance(bars, RowMemory):  # one row: the table rows picked in Python
                extra, form = self._row_index(int(token), bars, tables, state["row"])
            else:  # the table rows to sum: the token's, its bar place's, each lookback's
                runs = bars.runs.clamp(max=MAX_RUN)
                where = bars.position[:, None]
                extra = torch.cat([token[:, None], where, bars.candidates, runs], 1) + tables.starts
                form = (bars.candidates, runs)
        if self.training or not self.fused:
            x = self.dropout(self.embed(token))
            if extra is not None:
                x = torch.cat([x, extra], -1)
            out, rnn_state = self.stack.step(x, state["rnn"])  # the fused layer, one token
        else:
            out, rnn_state = self._cell_step(token, state, extra)
        new["rnn"] = rnn_state
        context = None
        if self.window:
            slots = torch.arange(self.window, device=out.device)
            written = (slots == state["pos"] % self.window).view(1, -1, 1)  # ring buffer slot
            new["values"] = torch.where(written, out.unsqueeze(1), state["values"])
            new["keys"] = torch.where(
                written, self.attention.process_keys(out).unsqueeze(1), state["keys"]
            )
            filled = (slots < new["pos"]).unsqueeze(0).expand(out.shape[0], -1)
            context, _ = self.attention(out, new["values"], filled, processed=new["keys"])
        return self._output(out, context, form), new

    def _gate_tables(self) -> GateTables:
        """This model's :class:`GateTables`, rebuilt only when a weight has changed (its
        version counter moved: an optimiser step, ``load_state_dict``, ``.to()``). Weights
        made in inference mode keep no version counter: their tables are built each time."""
        params = list(self.parameters())
        if any(p.is_inference() for p in params):
            return self._build_gate_tables()
        key = tuple((p.data_ptr(), p._version) for p in params)
        cached = getattr(self, "_tables", None)
        if cached is None or cached[0] != key:
            self._tables = cached = (key, self._build_gate_tables())
        return cached[1]

    @torch.no_grad()
    def _build_gate_tables(self) -> GateTables:
        """Layer 0's input half of the LSTM gates, ``x @ W_ih.T + b_ih + b_hh``, as table
        rows: a token's embedding depends on the token alone, so a step looks its share up
        instead of computing it. With lookback inputs the lookback inputs' shares follow:
        a row per tick into the bar, per lookback one for "none" and one per token, per
        lookback one per repeat length; a step's input gates are then one
        ``embedding_bag`` sum of 2 + 2K rows, the first of each block in ``starts``."""
        rnn = self.stack.rnn
        E = self.embed.embedding_dim
        w_token = rnn.weight_ih_l0[:, :E]  # lookback inputs follow
        gates_in = F.linear(self.embed.weight, w_token, rnn.bias_ih_l0 + rnn.bias_hh_l0)
        if self.lookback is None:
            return GateTables(double_cell_gate(rnn.weight_hh_l0.t()), double_cell_gate(gates_in))
        w = rnn.weight_ih_l0[:, E:]
        P = self.position_embed.embedding_dim
        F_, K = self.lookback_embed.embedding_dim, len(self.lookback.distances)
        per_k = w[:, P:].reshape(w.shape[0], K, F_ + 2)  # [4H, K, F + 2]
        embed = self.lookback_embed.weight
        embed = torch.cat([embed[-1:], embed[:-1]])  # "none" first: row = token + 1
        runs = torch.arange(MAX_RUN + 1, dtype=w.dtype, device=w.device)
        flags = torch.stack([runs / MAX_RUN, (runs > 0).to(w.dtype)], 1)  # [MAX_RUN + 1, 2]
        by_bucket = self.position_embed.weight @ w[:, :P].t()  # [POSITIONS, 4H]
        longest = max(int(self.lookback.bar_ticks.max()), DEFAULT_BAR)
        ticks = torch.arange(longest, device=w.device)
        blocks = [gates_in, by_bucket[(ticks // 2).clamp(max=POSITIONS - 1)]]  # row per tick
        blocks += [embed @ per_k[:, k, :F_].t() for k in range(K)]
        blocks += [flags @ per_k[:, k, F_:].t() for k in range(K)]
        sizes = torch.tensor([len(b) for b in blocks], device=w.device)
        starts = sizes.cumsum(0) - sizes
        starts[2 : K + 2] += 1  # a candidate's row is its token + 1 (-1, none: row 0)
        s = starts.tolist()
        row_starts = (s[0], s[1], s[2 : K + 2], s[K + 2 :])
        run_scores = (self.copy.bias[:, None] + self.copy_run).tolist()  # [K, MAX_RUN + 1]
        hh_t, gates = double_cell_gate(rnn.weight_hh_l0.t()), double_cell_gate(torch.cat(blocks))
        return GateTables(hh_t, gates, starts, row_starts, run_scores)

    def _row_index(self, token: int, bars: RowMemory, tables: GateTables, row: RowIndex):
        """One row's step inputs from its Python memory: the table rows whose sum is the
        input gates [2 + 2K], and the lookbacks holding a token as a ``RowCopy`` (None if
        none does), all written into ``row``'s buffer."""
        s_token, s_place, s_cands, s_runs = tables.row_starts
        cands, K = bars.cands, len(bars.cands)
        runs = [r if r < MAX_RUN else MAX_RUN for r in bars.run_list]
        index = [token + s_token, bars.time % bars.bar + s_place]
        index += map(add, cands, s_cands)
        index += map(add, runs, s_runs)
        ks = tuple(k for k, c in enumerate(cands) if c >= 0)
        if not ks:
            row.buffer[: 2 + 2 * K] = index
            return row.gates, None
        index += [cands[k] for k in ks]
        row.buffer[: len(index)] = index
        row.scores[: len(ks)] = [tables.run_scores[k][runs[k]] for k in ks]
        copy = row.copies.get(ks)
        if copy is None:
            weights = tables.copy_weights.get(ks)
            if weights is None:
                weights = tables.copy_weights[ks] = self.copy.weight[list(ks)].t().contiguous()
            copy = row.copy(ks, weights)
        return row.gates, copy

    def _cell_step(
        self, token: torch.Tensor, state: State, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Any]:
        """Eval-mode step through the layers' cells, skipping nn.LSTM/GRU's per-call overhead.

        Same maths as the fused layer on a length-1 sequence (no dropout in eval mode), in
        ~40% less time for a one-token step on the CPU (the wrapper, not the maths, dominated).
        An LSTM's layer 0 looks its input gates up in ``state["tables"]``, or with lookback
        inputs sums the table rows ``extra``; other cells get the lookback inputs
        themselves as ``extra``.
        """
        rnn, cell = self.stack.rnn, self.cell
        hs, cs, first = [], [], 0
        x = None
        if "tables" in state:
            h, c = state["rnn"][0][0], state["rnn"][1][0]
            tables = state["tables"]
            if extra is None:
                gates_in = tables.gates.index_select(0, token)
            else:
                gates_in = tables.sum_rows(extra)
            i, f, g, o = torch.addmm(gates_in, h, tables.hh_t).sigmoid_().chunk(4, 1)
            c = torch.addcmul(f * c - i, i, g, value=2)  # f c + i tanh(g), g doubled
            x = o * c.tanh()
            hs, cs, first = [x], [c], 1
        for layer in range(first, rnn.num_layers):
            w_ih, w_hh, b_ih, b_hh = rnn._flat_weights[4 * layer : 4 * layer + 4]
            if layer == 0:
                x = (
                    self.embed(token)
                    if extra is None
                    else torch.cat([self.embed(token), extra], -1)
                )
            if cell == "lstm":
                h, c = torch.lstm_cell(
                    x, (state["rnn"][0][layer], state["rnn"][1][layer]), w_ih, w_hh, b_ih, b_hh
                )
                cs.append(c)
            else:
                step = torch.gru_cell if cell == "gru" else RNN_CELLS[rnn.nonlinearity]
                h = step(x, state["rnn"][layer], w_ih, w_hh, b_ih, b_hh)
            hs.append(h)
            x = h
        h_all = hs[0].unsqueeze(0) if len(hs) == 1 else torch.stack(hs)
        if cell != "lstm":
            return x, h_all
        return x, (h_all, cs[0].unsqueeze(0) if len(cs) == 1 else torch.stack(cs))

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        """Pick batch rows ``index`` (beam search), the core's state through the core."""
        new: State = dict(state)
        new["rnn"] = reorder_state(self.stack, state["rnn"], index)
        for key in ("values", "keys"):
            if key in state:
                new[key] = state[key].index_select(0, index)
        if "bars" in state:
            new["bars"] = state["bars"].select(index)
        return new
