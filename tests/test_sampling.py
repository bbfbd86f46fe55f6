"""The categorical sampler draws from softmax(logits), reproducibly for a seed."""

import pytest
import torch

from seqpipe.decoders.sampling import Sampler, filter_logits, sample_categorical


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


def nucleus_probs(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    return filter_logits(logits, top_p=top_p).softmax(-1)


# nucleus: 9 tokens (within NUCLEUS_CANDIDATES, no sort), 34 (just beyond), 180
@pytest.mark.parametrize("spread", [2.5, 2.0, 0.01])
def test_nucleus_draws_follow_the_filtered_distribution(spread):
    torch.manual_seed(0)
    logits = (torch.randn(200) * spread).expand(20_000, -1)
    draws = Sampler(top_p=0.9).draw(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=200).float() / len(draws)
    expected = nucleus_probs(logits[:1], 0.9)[0]
    assert torch.allclose(freq, expected, atol=0.01)
    assert freq[expected == 0].sum() == 0  # never outside the nucleus


class Counter(torch.nn.Module):
    """A stand-in LM: its state is each row's id, its logits are flat."""

    def __init__(self, n: int):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.n = n

    def initial_state(self, batch_size, device):
        return torch.arange(batch_size)

    def step(self, token, state):
        return torch.zeros(len(state), 16), state

    def reorder_state(self, state, index):
        return torch.arange(self.n) if len(state) == 1 else state[index]


class RowRules:
    """Row r emits token 3 + r for ``lengths[r]`` steps, then <eos> (1), then padding (0)."""

    def __init__(self, lengths):
        self.lengths = torch.tensor(lengths)

    def start(self, n, prompt, device):
        return {"row": torch.arange(n), "count": torch.zeros(n, dtype=torch.long)}

    def allowed(self, prev, st):
        want = torch.where(st["count"] < self.lengths[st["row"]], 3 + st["row"], 1)
        want = torch.where(st["count"] > self.lengths[st["row"]], 0, want)
        return torch.nn.functional.one_hot(want, 16).bool()

    def update(self, token, st):
        return {"row": st["row"], "count": st["count"] + 1}

    def select(self, st, index):
        return {key: value[index] for key, value in st.items()}

    def done(self, st):
        return st["count"] > self.lengths[st["row"]]

    def finished(self, st):
        return bool(self.done(st).all())

    @staticmethod
    def trim(rows):
        return [row[: row.index(1)] for row in rows]


def test_rows_that_finish_early_leave_the_batch_and_come_back_in_order():
    lengths = [3, 20, 1, 9, 16]
    rows = Sampler(top_p=0.9).generate(
        Counter(len(lengths)), [1], len(lengths), RowRules(lengths), 40
    )
    assert rows == [[3 + r] * length for r, length in enumerate(lengths)]
