"""Attention beam search on a toy encoder-decoder whose best sequence is known."""

import math

import torch

from seqpipe.decoders.attention_beam import AttentionBeam
from seqpipe.decoders.hypothesis import TokenText

VOCAB = ["<b>", " ", "a", "b"]  # eos = blank = 0


class Toy(torch.nn.Module):
    """Next-token probabilities depend only on the previous token (a Markov chain).

    Greedy picks 'a' first (0.6) but every continuation after 'a' is uncertain, while
    'b' (0.4) is followed by eos with certainty: P(b) = 0.4 > P(a a) = 0.6 * 0.5 * ...
    """

    sos_id = 4
    table = {
        4: {2: 0.6, 3: 0.4},
        2: {2: 0.5, 3: 0.5},  # after 'a': no eos in sight for a while
        3: {0: 1.0},  # after 'b': end
    }

    def encode(self, x, lengths):
        B, T = x.shape[:2]
        return {
            "weights": torch.full((B, T), 1.0 / T),
            "lengths": lengths,
            "mask": torch.ones(B, T, dtype=torch.bool),
        }

    def decode_step(self, token, state):
        logits = torch.full((len(token), 4), -1e9)
        for row, t in enumerate(token.tolist()):
            for nxt, p in self.table.get(t, {0: 1.0}).items():
                logits[row, nxt] = math.log(p)
        weights = torch.zeros_like(state["weights"])
        weights[:, min(weights.shape[1] - 1, 1)] = 1.0
        return logits, dict(state, weights=weights)

    def reorder_state(self, state, index):
        return {k: v.index_select(0, index) for k, v in state.items()}


def test_beam_finds_the_sequence_greedy_misses():
    x, lengths = torch.zeros(2, 5, 3), torch.tensor([5, 5])
    greedy = AttentionBeam(VOCAB, 0, beam_size=1, length_penalty=0.0).decode_batch(
        Toy(), x, lengths
    )
    beam = AttentionBeam(VOCAB, 0, beam_size=4, length_penalty=0.0).decode_batch(Toy(), x, lengths)
    assert greedy.hypotheses[0].text.startswith("a")
    assert [h.text for h in beam.hypotheses] == ["b", "b"]
    assert math.isclose(beam.hypotheses[0].score, math.log(0.4), rel_tol=1e-5)
    assert beam.hypotheses[0].confidences == [0.4000000059604645]
    assert beam.log_probs is None  # no CTC head: timings come from attention


def test_las_beam_runs_batched_and_keeps_ctc_posteriors():
    from seqpipe.models.acoustic import LAS
    from seqpipe.text import VOCAB as CHARS

    torch.manual_seed(0)
    model = LAS(8, len(CHARS), hidden_size=8, num_layers=2, decoder_hidden_size=8).eval()
    feats, lengths = torch.randn(3, 12, 8), torch.tensor([12, 9, 4])
    out = AttentionBeam(CHARS, 0, beam_size=3, max_ratio=1.0).decode_batch(model, feats, lengths)
    assert len(out.hypotheses) == 3 and out.frame_ratio == 2.0
    assert out.log_probs.shape[:2] == (3, 6)
    for hyp, n in zip(out.hypotheses, out.lengths.tolist(), strict=True):
        assert len(hyp.tokens) == len(hyp.frames) <= n * 1.0 + 2
        assert all(0 <= f < n for f in hyp.frames)
        assert hyp.text == TokenText(CHARS, 0).text(hyp.tokens)
