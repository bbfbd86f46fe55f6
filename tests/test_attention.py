"""Attention modules: exact gradients (gradcheck, float64), masking, and reference results."""

import pytest
import torch
from torch.autograd import gradcheck

from seqpipe.models.attention import (
    AdditiveAttention,
    AttentionPooling,
    DotProductAttention,
    LocationAwareAttention,
    SelfAttention,
    lengths_to_mask,
    local_window_attention,
)

torch.set_num_threads(1)
B, T, DQ, DK = 2, 5, 3, 4
LENGTHS = torch.tensor([5, 3])
MASK = lengths_to_mask(LENGTHS)


def gradcheck_module(module: torch.nn.Module, inputs: tuple, **kwargs) -> bool:
    """gradcheck with respect to the inputs *and* every parameter, in float64."""
    module = module.double()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]

    def fn(*args):
        weights = dict(zip(names, args[: len(names)], strict=True))
        return torch.func.functional_call(module, weights, args[len(names) :], kwargs)

    inputs = tuple(x.double().requires_grad_(True) if x.is_floating_point() else x for x in inputs)
    return gradcheck(fn, (*params, *inputs), eps=1e-6, atol=1e-5)


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float64)


@pytest.mark.parametrize("cls", [AdditiveAttention, DotProductAttention])
@pytest.mark.parametrize("queries", [(), (3,)])
def test_gradcheck_scoring_attention(cls, queries):
    torch.manual_seed(0)
    module = cls(DQ, DK, 6)
    assert gradcheck_module(module, (rand(B, *queries, DQ), rand(B, T, DK)), mask=MASK)


def test_gradcheck_location_aware_attention():
    torch.manual_seed(0)
    module = LocationAwareAttention(DQ, DK, 6, channels=2, kernel_size=3)
    previous = torch.softmax(rand(B, T), -1)
    assert gradcheck_module(module, (rand(B, DQ), rand(B, T, DK), MASK, previous))


def test_gradcheck_pooling_and_self_attention():
    torch.manual_seed(0)
    assert gradcheck_module(AttentionPooling(DK, 6), (rand(B, T, DK),), mask=MASK)
    assert gradcheck_module(SelfAttention(DK, num_heads=2), (rand(B, T, DK),), mask=MASK)


def test_gradcheck_local_window_attention():
    torch.manual_seed(0)
    module = AdditiveAttention(DK, DK, 6).double()
    x = rand(B, T, DK).requires_grad_(True)
    assert gradcheck(lambda x: local_window_attention(module, x, 3), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "module",
    [AdditiveAttention(DQ, DK, 6), DotProductAttention(DQ, DK), LocationAwareAttention(DQ, DK, 6)],
)
def test_padding_gets_zero_weight_and_cannot_change_the_context(module):
    torch.manual_seed(0)
    query, keys = torch.randn(B, DQ), torch.randn(B, T, DK)
    context, weights = module(query, keys, MASK)
    assert context.shape == (B, DK) and weights.shape == (B, T)
    assert torch.all(weights[1, 3:] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))
    garbage = keys.clone()
    garbage[1, 3:] = 1e4
    torch.testing.assert_close(module(query, garbage, MASK)[0], context)


def test_dot_product_matches_torch_reference():
    torch.manual_seed(0)
    module = DotProductAttention(DK, DK)
    q, k = torch.randn(B, 3, DK), torch.randn(B, T, DK)
    context, _ = module(q, k, MASK)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, k, attn_mask=MASK[:, None, :])
    torch.testing.assert_close(context, expected)


def test_single_query_equals_one_row_of_many():
    torch.manual_seed(0)
    module = AdditiveAttention(DQ, DK, 6)
    q, k = torch.randn(B, 3, DQ), torch.randn(B, T, DK)
    many, w_many = module(q, k, MASK)
    one, w_one = module(q[:, 1], k, MASK)
    torch.testing.assert_close(one, many[:, 1])
    torch.testing.assert_close(w_one, w_many[:, 1])


def test_location_attention_depends_on_previous_alignment():
    torch.manual_seed(0)
    module = LocationAwareAttention(DQ, DK, 6, kernel_size=3)
    query, keys = torch.randn(B, DQ), torch.randn(B, T, DK)
    at_start = torch.nn.functional.one_hot(torch.tensor([0, 0]), T).float()
    at_end = torch.nn.functional.one_hot(torch.tensor([4, 2]), T).float()
    _, w_start = module(query, keys, MASK, at_start)
    _, w_end = module(query, keys, MASK, at_end)
    assert not torch.allclose(w_start, w_end)


def test_self_attention_ignores_padding():
    torch.manual_seed(0)
    module = SelfAttention(DK, num_heads=2).eval()
    x = torch.randn(B, T, DK)
    y, weights = module(x, MASK)
    assert weights.shape == (B, 2, T, T) and torch.all(weights[1, :, :, 3:] == 0)
    alone, _ = module(x[1:, :3], None)
    torch.testing.assert_close(y[1, :3], alone[0])


def test_local_window_attention_matches_a_loop_over_time():
    torch.manual_seed(0)
    module = AdditiveAttention(DK, DK, 6)
    x, window = torch.randn(B, 7, DK), 3
    context, weights = local_window_attention(module, x, window)
    for t in range(7):
        recent = x[:, max(0, t - window + 1) : t + 1]
        expected, w = module(x[:, t], recent)
        torch.testing.assert_close(context[:, t], expected)
        torch.testing.assert_close(weights[:, t, window - recent.shape[1] :], w)
