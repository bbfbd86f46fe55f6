"""The categorical sampler draws from softmax(logits), reproducibly for a seed."""

import torch

from seqpipe.decoders.sampling import sample_categorical


def test_frequencies_match_the_distribution():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])
    logits = probs.log().expand(40_000, -1)
    draws = sample_categorical(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).float() / len(draws)
    assert torch.allclose(freq, probs, atol=0.01)
    assert freq[4] == 0  # a -inf logit is never drawn


def test_same_seed_same_draws():
    logits = torch.randn(8, 50)
    a = sample_categorical(logits, torch.Generator().manual_seed(3))
    b = sample_categorical(logits, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
