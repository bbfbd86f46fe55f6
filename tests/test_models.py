"""The recurrent model family: shapes, padding invariance, O(1) stepping, the textbook RNN."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest
import torch

from seqpipe.config import validate_options
from seqpipe.errors import SeqpipeError
from seqpipe.models.rnn import RecurrentStack
from seqpipe.plugins import registry

torch.set_num_threads(1)
ATOL = 1e-5
LENGTHS = torch.tensor([7, 3, 5])
F, OUT, V = 4, 6, 11


def build(name: str, **options):
    """Build through the registry like the pipeline does (options validated, wired args added)."""
    target = registry().get("model", name).load()
    wired = {"input_size": F, "output_size": OUT, "vocab_size": V}
    accepted = inspect.signature(target).parameters
    options = validate_options(
        target, options, where="model", source="test", wired=frozenset(wired)
    )
    torch.manual_seed(0)
    return target(**options, **{k: v for k, v in wired.items() if k in accepted}).eval()


def padded_inputs(seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F)
    for i, n in enumerate(LENGTHS):
        x[i, n:] = 1e3  # garbage in the padding must not leak anywhere
    return x


def padded_tokens(seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    t = torch.randint(0, V, (len(LENGTHS), int(LENGTHS.max())))
    for i, n in enumerate(LENGTHS):
        t[i, n:] = -100
    return t


SMALL = {"hidden_size": 8, "num_layers": 2}
FRAME_CASES = [
    ("rnn", {}),
    ("rnn", {"nonlinearity": "relu", "bidirectional": True}),
    ("lstm", {}),
    ("lstm", {"bidirectional": True, "input_projection": 5}),
    ("gru", {"bidirectional": True}),
    ("lstm", {"bidirectional": True, "self_attention": True, "attention_heads": 2}),
    ("gru", {"self_attention": True}),
]


@pytest.mark.parametrize("name,options", FRAME_CASES)
def test_frame_model_padded_batch_equals_each_sequence_alone(name, options):
    model = build(name, **SMALL, **options)
    x = padded_inputs()
    y, out_lengths = model(x, LENGTHS)
    assert y.shape == (3, 7, OUT) and torch.equal(out_lengths, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        alone, _ = model(x[i : i + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(y[i, :n], alone[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("pooling", ["mean", "last", "attention"])
@pytest.mark.parametrize("cell,bidirectional", [("lstm", True), ("gru", False), ("rnn", True)])
def test_classifier_padded_batch_equals_each_sequence_alone(pooling, cell, bidirectional):
    model = build(
        "classifier",
        cell=cell,
        bidirectional=bidirectional,
        pooling=pooling,
        attention_size=5,
        **SMALL,
    )
    x = padded_inputs()
    logits = model(x, LENGTHS)
    assert logits.shape == (3, OUT)
    for i, n in enumerate(LENGTHS.tolist()):
        alone = model(x[i : i + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(logits[i], alone[0], atol=ATOL, rtol=0)


def test_classifier_last_pooling_uses_each_direction_at_its_own_end():
    model = build("classifier", cell="gru", pooling="last", num_layers=1, hidden_size=8)
    x = padded_inputs()
    out, _ = model.stack(x, LENGTHS)
    n = int(LENGTHS[1])
    expected = torch.cat([out[1, n - 1, :8], out[1, 0, 8:]])  # forward end, backward start
    torch.testing.assert_close(model.head(expected), model(x, LENGTHS)[1], atol=ATOL, rtol=0)


def test_attention_pooling_returns_zero_weight_on_padding():
    model = build("classifier", pooling="attention", **SMALL)
    logits, weights = model(padded_inputs(), LENGTHS, return_attention=True)
    assert weights.shape == (3, 7)
    assert torch.all(weights[1, 3:] == 0)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))


LM_CASES = [
    {"cell": "lstm"},
    {"cell": "gru", "tie_weights": True},
    {"cell": "rnn", "tie_weights": True, "embedding_size": 8},
    {"cell": "lstm", "attention_window": 3},
    {"cell": "gru", "attention_window": 4, "tie_weights": True},
]


@pytest.mark.parametrize("options", LM_CASES)
def test_lm_padded_batch_equals_each_sequence_alone(options):
    model = build("rnn_lm", **{"embedding_size": 6, "attention_size": 5, **SMALL, **options})
    tokens = padded_tokens()
    logits = model(tokens, LENGTHS)
    assert logits.shape == (3, 7, V)
    for i, n in enumerate(LENGTHS.tolist()):
        alone = model(tokens[i : i + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(logits[i, :n], alone[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("options", LM_CASES)
# eval steps through the cells directly; "generate" is eval under inference mode, as the
# decoders run it (an LSTM's recurrent GEMM then goes through NumPy on the CPU)
@pytest.mark.parametrize("mode", ["train", "eval", "generate"])
def test_lm_forward_equals_repeated_step(options, mode):
    model = build("rnn_lm", **{"embedding_size": 6, "attention_size": 5, **SMALL, **options})
    model.train(mode == "train")
    torch.manual_seed(2)
    tokens = torch.randint(0, V, (2, 9))  # longer than the attention windows: ring wraps
    full = model(tokens, torch.tensor([9, 9])).detach()
    with torch.inference_mode(mode == "generate"):
        state = model.initial_state(2, "cpu")
        for t in range(9):
            logits, state = model.step(tokens[:, t], state)
            torch.testing.assert_close(logits, full[:, t], atol=ATOL, rtol=0)


def test_lm_attention_window_state_stays_bounded_and_is_not_mutated():
    model = build("rnn_lm", attention_window=3, embedding_size=6, attention_size=5, **SMALL)
    state = model.initial_state(2, "cpu")
    for t in range(10):
        before = state["values"].clone()
        _, new = model.step(torch.tensor([t % V, 1]), state)
        assert torch.equal(state["values"], before)  # beam search may still hold `state`
        state = new
    assert state["values"].shape == (2, 3, 8) and state["keys"].shape == (2, 3, 5)


def test_lm_attention_window_sees_only_the_last_n_tokens():
    model = build("rnn_lm", cell="rnn", attention_window=2, num_layers=1, hidden_size=8)
    with torch.no_grad():  # make the recurrence memoryless: only the window can carry context
        model.stack.rnn.weight_hh_l0.zero_()
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[7, 8, 3, 4, 5]])
    la, lb = model(a, torch.tensor([5])), model(b, torch.tensor([5]))
    assert not torch.allclose(la[0, 2], lb[0, 2])  # token 2 still in the window of step 2
    torch.testing.assert_close(la[0, 3:], lb[0, 3:], atol=ATOL, rtol=0)  # tokens 0-1 fell out


def test_lm_reorder_state_picks_rows():
    model = build("rnn_lm", attention_window=2, embedding_size=6, attention_size=5, **SMALL)
    state = model.initial_state(2, "cpu")
    _, state = model.step(torch.tensor([3, 4]), state)
    picked = model.reorder_state(state, torch.tensor([1, 1, 0]))
    l_picked, _ = model.step(torch.tensor([5, 5, 5]), picked)
    l_orig, _ = model.step(torch.tensor([5, 5]), state)
    torch.testing.assert_close(l_picked, l_orig[[1, 1, 0]], atol=ATOL, rtol=0)


SEQ2SEQ_CASES = [
    {"attention": "additive"},
    {"attention": "dot", "cell": "gru"},
    {"attention": "location", "cell": "lstm"},
    {"attention": "additive", "input_feeding": True, "cell": "rnn"},
]


@pytest.mark.parametrize("options", SEQ2SEQ_CASES)
def test_seq2seq_padded_batch_equals_each_sequence_alone(options):
    model = build(
        "seq2seq", embedding_size=6, decoder_hidden_size=8, attention_size=5, **SMALL, **options
    )
    x = padded_inputs()
    targets = torch.randint(0, V, (3, 4))
    targets[1, 2:] = -100
    logits, weights = model(x, LENGTHS, targets, return_attention=True)
    assert logits.shape == (3, 4, V) and weights.shape == (3, 4, 7)
    assert torch.all(weights[1, :, 3:] == 0)  # no attention on padded frames
    for i, n in enumerate(LENGTHS.tolist()):
        u = 2 if i == 1 else 4
        alone = model(x[i : i + 1, :n], torch.tensor([n]), targets[i : i + 1, :u])
        torch.testing.assert_close(logits[i, :u], alone[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("options", SEQ2SEQ_CASES)
def test_seq2seq_forward_equals_encode_then_decode_steps(options):
    model = build(
        "seq2seq", embedding_size=6, decoder_hidden_size=8, attention_size=5, **SMALL, **options
    )
    x = padded_inputs()
    targets = torch.randint(0, V, (3, 5))
    full = model(x, LENGTHS, targets)
    state = model.encode(x, LENGTHS)
    token = torch.full((3,), model.sos_id)
    for u in range(5):
        logits, state = model.decode_step(token, state)
        torch.testing.assert_close(logits, full[:, u], atol=ATOL, rtol=0)
        token = targets[:, u]
    beams = model.reorder_state(state, torch.tensor([2, 0]))
    assert beams["memory"].shape[0] == 2 and beams["weights"].shape == (2, 7)


def test_textbook_worked_example():
    """h_t = tanh(W x_t + U h_{t-1} + b): the numbers every RNN tutorial walks through."""
    target = registry().get("model", "rnn").load()
    model = target(input_size=2, hidden_size=2, num_layers=1, output_projection=False)
    rnn = model.stack.rnn
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor([[0.5, 0.2], [0.3, 0.8]]))  # W
        rnn.weight_hh_l0.copy_(torch.tensor([[0.1, 0.4], [0.6, 0.7]]))  # U
        rnn.bias_ih_l0.copy_(torch.tensor([0.1, 0.2]))  # b
        rnn.bias_hh_l0.zero_()
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    h, _ = model(x, torch.tensor([2]))
    expected = torch.tensor([[0.537, 0.462], [0.492, 0.928]])
    torch.testing.assert_close(h[0], expected, atol=5e-4, rtol=0)  # to 3 decimals
    slip = torch.tensor([0.515, 0.942])  # the copied tutorial's h2 is not what the maths gives
    assert (h[0, 1] - slip).abs().max() > 0.01


def test_frame_models_have_fused_layers_and_options():
    model = build("lstm", bidirectional=True, hidden_size=8, num_layers=3, dropout=0.1)
    assert isinstance(model.stack.rnn, torch.nn.LSTM)
    assert model.stack.rnn.num_layers == 3 and model.stack.rnn.dropout == 0.1
    assert build("rnn", nonlinearity="relu", **SMALL).stack.rnn.nonlinearity == "relu"
    assert build("gru", output_projection=False, **SMALL).output_size == 8


WIRED = frozenset({"input_size", "output_size"})


def test_config_rejects_bad_options_and_wired_keys():
    target = registry().get("model", "rnn").load()
    with pytest.raises(SeqpipeError, match="model.nonlinearity"):
        validate_options(
            target, {"nonlinearity": "sigmoid"}, where="model", source="x.yaml", wired=WIRED
        )
    with pytest.raises(SeqpipeError, match="set automatically"):
        validate_options(
            target,
            {"input_size": 3},
            where="model",
            source="x.yaml",
            wired=WIRED,
        )


def test_bad_lengths_raise_a_seqpipe_error():
    model = build("lstm", **SMALL)
    with pytest.raises(SeqpipeError, match="lengths must lie in"):
        model(torch.zeros(2, 3, F), torch.tensor([3, 4]))
    with pytest.raises(SeqpipeError, match="lengths must lie in"):
        model(torch.zeros(2, 3, F), torch.tensor([0, 3]))


def test_training_step_reduces_loss_for_every_model_shape():
    """Gradients reach every parameter and one optimiser step helps (catches detached graphs)."""
    torch.manual_seed(0)
    x, tokens, targets = padded_inputs(), padded_tokens(), torch.randint(0, V, (3, 4))
    cases = {
        "lstm": lambda m: m(x, LENGTHS)[0].pow(2).mean(),
        "classifier": lambda m: torch.nn.functional.cross_entropy(
            m(x, LENGTHS), torch.tensor([0, 1, 2])
        ),
        "rnn_lm": lambda m: torch.nn.functional.cross_entropy(
            m(tokens, LENGTHS).transpose(1, 2), tokens.roll(-1, 1), ignore_index=-100
        ),
        "seq2seq": lambda m: torch.nn.functional.cross_entropy(
            m(x, LENGTHS, targets).transpose(1, 2), targets
        ),
    }
    for name, loss_fn in cases.items():
        model = build(name, **SMALL).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        before = loss_fn(model)
        before.backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, f"{name}: no gradient for {missing}"
        opt.step()
        assert loss_fn(model) < before, name


def test_adding_problem_runs_a_few_steps():
    path = Path(__file__).parents[1] / "benchmarks" / "adding_problem.py"
    spec = importlib.util.spec_from_file_location("adding_problem", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    adding_batch, run = module.adding_batch, module.run

    x, y = adding_batch(4, 10, torch.Generator().manual_seed(0))
    assert x.shape == (4, 10, 2) and torch.allclose(x[..., 1].sum(1), torch.full((4,), 2.0))
    torch.testing.assert_close(y, (x[..., 0] * x[..., 1]).sum(1))
    rows = run(models=("rnn", "lstm"), length=10, steps=3, hidden_size=8, batch_size=4)
    assert [r["model"] for r in rows] == ["rnn", "lstm"]
    assert all(r["test_mse"] >= 0 and r["grad_first"] >= 0 for r in rows)


@pytest.mark.parametrize(
    "name,options",
    [
        ("gru", {"bidirectional": True, "self_attention": True}),
        ("classifier", {"pooling": "attention"}),
        ("rnn_lm", {"tie_weights": True, "attention_window": 2}),
        ("seq2seq", {"attention": "location"}),
    ],
)
def test_weights_round_trip_through_safetensors(name, options, tmp_path):
    """Bundles are safetensors files: no shared tensors, strict reload gives the same model."""
    from safetensors.torch import load_file, save_file

    model = build(name, **SMALL, **options)
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    torch.manual_seed(123)  # a differently initialised twin
    target = registry().get("model", name).load()
    accepted = inspect.signature(target).parameters
    wired = {"input_size": F, "output_size": OUT, "vocab_size": V}
    twin = target(**SMALL, **options, **{k: v for k, v in wired.items() if k in accepted}).eval()
    twin.load_state_dict(load_file(tmp_path / "m.safetensors"), strict=True)
    args = {
        "rnn_lm": (padded_tokens(), LENGTHS),
        "seq2seq": (padded_inputs(), LENGTHS, torch.randint(0, V, (3, 4))),
    }.get(name, (padded_inputs(), LENGTHS))
    first, second = model(*args), twin(*args)
    first = first[0] if isinstance(first, tuple) else first
    second = second[0] if isinstance(second, tuple) else second
    torch.testing.assert_close(first, second, atol=0, rtol=0)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_cpu_training_path_matches_packing(cell, bidirectional):
    """With grads on, GRU/RNN stacks skip packing on the CPU (oneDNN's fused kernels):
    outputs, final states and gradients must equal the packed computation's."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    stack = RecurrentStack(cell, 5, 7, num_layers=3, bidirectional=bidirectional)
    x = torch.randn(4, 9, 5, requires_grad=True)
    lengths = torch.tensor([9, 3, 6, 1])
    h0 = torch.randn(3 * (2 if bidirectional else 1), 4, 7)
    out, state = stack.run(x, lengths, h0)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref, ref_state = stack.rnn(packed, h0)
    ref, _ = pad_packed_sequence(ref, batch_first=True, total_length=9)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(state, ref_state, atol=1e-6)
    inputs = [x, *stack.parameters()]
    grads = torch.autograd.grad((out * out).sum() + state.sum(), inputs)
    ref_grads = torch.autograd.grad((ref * ref).sum() + ref_state.sum(), inputs)
    for got, want in zip(grads, ref_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-5)
