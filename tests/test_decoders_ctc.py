"""CTC greedy and beam decoding on hand-made posteriors, with and without a word LM."""

import math

import pytest
import torch

from seqpipe.decoders.ctc_beam import CTCBeam
from seqpipe.decoders.ctc_greedy import CTCGreedy
from seqpipe.errors import SeqpipeError
from seqpipe.text import VOCAB

INDEX = {c: i for i, c in enumerate(VOCAB)}


def posteriors(path: str, alternatives: dict[int, tuple[str, float]] | None = None) -> torch.Tensor:
    """[1, T, V] log-probs: frame t is sure of path[t] ('_' = blank), except where
    ``alternatives[t] = (char, logit)`` gives a runner-up close behind."""
    logits = torch.full((1, len(path), len(VOCAB)), -10.0)
    for t, c in enumerate(path):
        logits[0, t, 0 if c == "_" else INDEX[c]] = 0.0
    for t, (c, value) in (alternatives or {}).items():
        logits[0, t, INDEX[c]] = value
    return logits.log_softmax(-1)


HELLO_WORLD = "__hh_e_ll_lo__ _ww_o_rr_ld__"


def test_greedy_merges_repeats_and_drops_blanks():
    hyp = CTCGreedy(VOCAB, 0)(posteriors(HELLO_WORLD))[0]
    assert hyp.text == "hello world"
    assert hyp.frames[:3] == [2, 5, 7]  # first frame of h, e, l
    assert [VOCAB[t] for t in hyp.tokens] == list("hello world")


def test_greedy_respects_lengths_in_a_batch():
    a, b = posteriors("_a_b_"), posteriors("_c___")
    hyps = CTCGreedy(VOCAB, 0)(torch.cat([a, b]), torch.tensor([3, 2]))
    assert [h.text for h in hyps] == ["a", "c"]


def test_beam_without_lm_matches_greedy_on_clear_input():
    lp = posteriors(HELLO_WORLD)
    hyp = CTCBeam(VOCAB, 0, beam_size=8)(lp)[0]
    assert hyp.text == "hello world"
    assert hyp.frames == CTCGreedy(VOCAB, 0)(lp)[0].frames


def test_beam_sums_paths_that_greedy_cannot():
    # every frame prefers blank, but the paths spelling "a" add up to more
    lp = torch.log(torch.tensor([[0.55, 0.0, 0.45] + [0.0] * (len(VOCAB) - 3)] * 2) + 1e-9)[None]
    assert CTCGreedy(VOCAB, 0)(lp)[0].text == ""
    # P("a") = 1 - P(blank, blank) = 1 - 0.55^2 = 0.70 > P("") = 0.30
    assert CTCBeam(VOCAB, 0, beam_size=8, log_add=True)(lp)[0].text == "a"


def test_rescore_ranks_the_final_beam_by_exact_ctc_likelihood(tmp_path):
    # the case above through a lexicon: the max-path search keeps silence, a search that
    # sums the paths it keeps underrates "a"; rescoring sums every path: P = 1 - 0.55^2
    lexicon = tmp_path / "ab.lexicon"
    lexicon.write_text("a\ta\nb\tb\n")
    lp = torch.log(torch.tensor([[0.55, 0.0, 0.45] + [0.0] * (len(VOCAB) - 3)] * 2) + 1e-9)[None]
    options = dict(beam_size=8, lexicon=str(lexicon))
    assert CTCBeam(VOCAB, 0, **options)(lp)[0].text == ""
    summed = CTCBeam(VOCAB, 0, log_add=True, **options)(lp)[0]
    rescored = CTCBeam(VOCAB, 0, rescore=4, **options)(lp)[0]
    assert rescored.text == summed.text == "a"
    assert rescored.score == pytest.approx(math.log(1 - 0.55**2), abs=1e-4)
    assert summed.score < rescored.score - 0.1
    # the word score of the second look is its own
    decoder = CTCBeam(VOCAB, 0, rescore=4, rescore_word_score=-2.0, **options)
    assert decoder(lp)[0].text == ""
    with pytest.raises(SeqpipeError, match="rescore needs words"):
        CTCBeam(VOCAB, 0, beam_size=8, rescore=4)  # a lexicon-free search has none
    with pytest.raises(SeqpipeError, match="rescore needs words"):
        CTCBeam(VOCAB, 0, beam_size=8).set_options(rescore=4)


@pytest.fixture
def lm(tmp_path):
    from seqpipe.speech.ngram_lm import build_arpa

    corpus = ["the world is big", "hello world", "hello there", "one bag of words"] * 3
    path = tmp_path / "lm.arpa"
    build_arpa(corpus, path, order=3)
    return path


def test_beam_with_lexicon_only_spells_known_words(lm):
    lp = posteriors(HELLO_WORLD, {19: ("p", 0.3)})  # acoustics lean to "wprld"
    assert CTCGreedy(VOCAB, 0)(lp)[0].text == "hello wprld"
    hyp = CTCBeam(VOCAB, 0, beam_size=16, lexicon=str(lm.with_suffix(".lexicon")))(lp)[0]
    assert hyp.text == "hello world"


def test_word_list_word_is_recognised_only_with_the_word_list(tmp_path):
    from seqpipe.speech.ngram_lm import build_arpa

    corpus = ["the cat sat", "the cat ran", "a dog sat"] * 3
    plain, wide = tmp_path / "plain.arpa", tmp_path / "wide.arpa"
    build_arpa(corpus, plain, order=2)
    build_arpa(corpus, wide, order=2, extra_words=["zebra"])  # scored as <unk>
    lp = posteriors("_tt_hh_ee_ _zz_ee_bb_rr_aa__")
    assert CTCBeam(VOCAB, 0, beam_size=16, lm=str(wide))(lp)[0].text == "the zebra"
    assert "zebra" not in CTCBeam(VOCAB, 0, beam_size=16, lm=str(plain))(lp)[0].text


def test_word_lm_overrides_slightly_better_acoustics(lm):
    # "is bag" vs "is big": both words are in the lexicon; acoustics prefer 'a' a little
    lp = posteriors("_ii_ss_ _bb_ii_gg__", {12: ("a", 0.5), 13: ("a", 0.5)})
    no_lm = CTCBeam(VOCAB, 0, beam_size=16, lexicon=str(lm.with_suffix(".lexicon")))(lp)[0]
    with_lm = CTCBeam(VOCAB, 0, beam_size=16, lm=str(lm), lm_weight=2.0)(lp)[0]
    assert no_lm.text == "is bag"
    assert with_lm.text == "is big"
    # the same decoder, re-weighted in place (as tune_decoder.py does): the LM loses its say
    decoder = CTCBeam(VOCAB, 0, beam_size=16, lm=str(lm), lm_weight=2.0)
    assert decoder(lp)[0].text == "is big"
    decoder.set_options(lm_weight=0.0)
    assert decoder(lp)[0].text == "is bag"
    with pytest.raises(SeqpipeError, match="ctc_beam: unknown option.*lm_wieght"):
        decoder.set_options(lm_wieght=1.0)


def test_beam_missing_lm_file_is_a_clear_error(tmp_path):
    with pytest.raises(SeqpipeError, match="nope.arpa: language model file not found"):
        CTCBeam(VOCAB, 0, lm=str(tmp_path / "nope.arpa"))


def test_beam_corrupt_lm_is_a_one_line_error_naming_the_file(tmp_path):
    bad = tmp_path / "bad.arpa"  # unigrams only: KenLM needs at least bigrams
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\thello\n-1.0\tworld\n\n\\end\\\n")
    with pytest.raises(SeqpipeError) as error:
        CTCBeam(VOCAB, 0, lm=str(bad))(posteriors("_a_"))
    message = str(error.value)
    assert message.startswith(f"{bad}: cannot load the language model: ")
    assert "\n" not in message and "bigram" in message


def test_decode_batch_returns_posteriors_and_frame_ratio():
    class Halver(torch.nn.Module):
        def forward(self, x, lengths):
            return x[:, ::2], (lengths + 1) // 2

    feats = posteriors("_a_b_c_d").repeat(2, 1, 1)
    out = CTCGreedy(VOCAB, 0).decode_batch(Halver(), feats, torch.tensor([8, 6]))
    assert out.frame_ratio == 2.0
    assert out.log_probs.shape == (2, 4, len(VOCAB))
    assert out.lengths.tolist() == [4, 3]


def test_lexicon_words_win_over_the_frame_path(tmp_path):
    # one 'e' region, no blank between two e's: greedy hears "thre"; the lexicon knows
    # only "three", and the hypothesis' tokens spell it out again (for forced alignment)
    lexicon = tmp_path / "digits.lexicon"
    lexicon.write_text("three\tt h r e e\none\to n e\n")
    lp = posteriors("_tt_hh_rr_eeee__")
    assert CTCGreedy(VOCAB, 0)(lp)[0].text == "thre"
    hyp = CTCBeam(VOCAB, 0, beam_size=8, lexicon=str(lexicon))(lp)[0]
    assert hyp.text == "three"
    assert "".join(VOCAB[t] for t in hyp.tokens) == "three"


@pytest.mark.parametrize("log_add, rescore", [(False, 0), (True, 0), (True, 8)])
def test_threads_search_a_batch_side_by_side_with_the_same_answers(lm, log_add, rescore):
    # a batch whose utterances need the LM and have different lengths: decoded on four
    # threads it must give exactly what one thread gives, utterance by utterance
    items = [
        posteriors("_ii_ss_ _bb_ii_gg__", {12: ("a", 0.5), 13: ("a", 0.5)}),
        posteriors(HELLO_WORLD, {19: ("p", 0.3)}),
        posteriors("_hh_e_ll_lo__ _tt_hh_ee_rr_ee_"),
    ] * 3
    T = max(x.shape[1] for x in items)
    batch = torch.cat([torch.nn.functional.pad(x, (0, 0, 0, T - x.shape[1])) for x in items])
    lengths = torch.tensor([x.shape[1] for x in items])
    options = dict(beam_size=16, lm=str(lm), lm_weight=2.0, log_add=log_add, rescore=rescore)
    serial = CTCBeam(VOCAB, 0, threads=1, **options)
    threaded = CTCBeam(VOCAB, 0, threads=4, **options)
    expected = [(h.text, h.score) for h in serial(batch, lengths)]
    assert [t for t, _ in expected[:3]] == ["is big", "hello world", "hello there"]
    assert [(h.text, h.score) for h in threaded(batch, lengths)] == expected
    # searches are reused batch after batch: never more than one per thread
    threaded(batch, lengths)
    assert 1 <= threaded._idle.qsize() <= 4
