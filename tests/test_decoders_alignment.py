"""Word times and confidences from CTC forced alignment, on hand-made posteriors."""

import math

import torch

from seqpipe.decoders.ctc_greedy import CTCGreedy
from seqpipe.decoders.hypothesis import Hypothesis, TokenText
from seqpipe.speech.alignment import align_tokens, word_timings
from seqpipe.text import VOCAB

INDEX = {c: i for i, c in enumerate(VOCAB)}


def posteriors(path: str) -> torch.Tensor:
    logits = torch.full((len(path), len(VOCAB)), -10.0)
    for t, c in enumerate(path):
        logits[t, 0 if c == "_" else INDEX[c]] = 0.0
    return logits.log_softmax(-1)


def test_words_span_their_characters_frames():
    #        0         1         2
    #        0123456789012345678901234
    path = "___nnoo______ ___ggoo___"
    lp = posteriors(path)
    hyp = CTCGreedy(VOCAB, 0)(lp[None])[0]
    assert hyp.text == "no go"
    words = word_timings(hyp, TokenText(VOCAB, 0), lp, seconds_per_frame=0.04, offset=10.0)
    assert [w.word for w in words] == ["no", "go"]
    # "no" owns frames 3..6 (n n o o), "go" frames 17..20
    assert math.isclose(words[0].start, 10.0 + 3 * 0.04) and math.isclose(
        words[0].end, 10.0 + 7 * 0.04
    )
    assert math.isclose(words[1].start, 10.0 + 17 * 0.04) and math.isclose(
        words[1].end, 10.0 + 21 * 0.04
    )
    assert all(w.confidence > 0.99 for w in words)


def test_confidence_drops_where_the_model_hesitates():
    lp = posteriors("_aa_ _bb_")
    lp[6] = torch.log(torch.tensor([0.0, 0.0, 0.4, 0.6] + [0.0] * (len(VOCAB) - 4)) + 1e-9)
    hyp = CTCGreedy(VOCAB, 0)(lp[None])[0]
    words = word_timings(hyp, TokenText(VOCAB, 0), lp, 0.01)
    assert [w.word for w in words] == ["a", "b"]
    assert words[0].confidence > 0.99 > 0.8 > words[1].confidence


def test_impossible_alignment_falls_back_to_emission_frames():
    lp = posteriors("ab")
    assert align_tokens(lp, [INDEX["a"], INDEX["a"]], 0) is None  # repeat needs a blank
    hyp = Hypothesis("a a", [INDEX["a"], INDEX[" "], INDEX["a"]], frames=[0, 1, 1])
    words = word_timings(hyp, TokenText(VOCAB, 0), lp, 1.0, limit=1.5)
    assert [w.word for w in words] == ["a", "a"]
    assert words[0].start == 0.0 and words[1].start >= words[0].end
    assert all(w.end <= 1.5 for w in words)


def test_feature_lead_shifts_times_and_clips_at_the_chunk_start():
    # features that pad 0.1 s of silence put frame 0 before the chunk; times shift back
    lp = posteriors("nnoo_ _ggoo")
    hyp = CTCGreedy(VOCAB, 0)(lp[None])[0]
    words = word_timings(hyp, TokenText(VOCAB, 0), lp, 0.1, offset=5.0 - 0.1, floor=5.0, limit=6.0)
    assert [w.word for w in words] == ["no", "go"]
    assert words[0].start == 5.0  # would be 4.9 without the floor
    assert math.isclose(words[1].start, 4.9 + 7 * 0.1)  # "g" at frame 7
    assert math.isclose(words[1].end, 4.9 + 11 * 0.1)
