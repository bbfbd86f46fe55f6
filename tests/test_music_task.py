"""The melody task (loss, NLL per note, evaluation metrics) and the Markov baseline."""

import math

import pytest
import torch

from seqpipe.data.melodies import write_jsonl
from seqpipe.features.melody_tokens import PREFIX
from seqpipe.midi import Melody, Note
from seqpipe.music.markov import END, MAX_TICKS, REST, MarkovBaseline, events
from seqpipe.music.metrics import (
    NgramIndex,
    crop,
    longest_self_repeat,
    notes_per_bar,
    pitch_classes_per_bar,
    repeated_bar_share,
    similarity,
)
from seqpipe.pipeline import Pipeline

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def scale_tune(start: int, n: int = 24) -> Melody:
    """Up and down a D major scale in 8th notes, from a different degree each time."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    path = steps + steps[-2:0:-1]
    notes = [Note(62 + path[(start + i) % len(path)], 12 * i, 12) for i in range(n)]
    return Melody(notes, key="D major", time_signature=(6, 8), tempo=120.0)


@pytest.fixture
def corpus(tmp_path):
    write_jsonl([scale_tune(i) for i in range(12)], tmp_path / "train.jsonl")
    write_jsonl([scale_tune(i, 30) for i in (3, 7, 9)], tmp_path / "valid.jsonl")
    return tmp_path


def make_pipeline(corpus, **task):
    torch.manual_seed(0)
    return Pipeline.from_config(
        {
            "task": {
                "name": "melody",
                "transpose": 0,
                "sample_melodies": 6,
                "sample_bars": 2,
                **task,
            },
            "features": {"name": "melody_events"},
            "model": {"name": "rnn_lm", "embedding_size": 16, "hidden_size": 32, "num_layers": 1},
            "decoder": {"name": "sample"},
            "data": {"train": str(corpus / "train.jsonl"), "valid": str(corpus / "valid.jsonl")},
        }
    )


def test_nll_per_note_is_the_body_nll_over_the_number_of_notes(corpus):
    pipeline = make_pipeline(corpus, sample_melodies=0, baseline=False)
    task = pipeline.task
    examples = task.load_data(corpus / "valid.jsonl", train=False)
    batch = task.collate(examples)
    assert batch["notes"].tolist() == [30, 30, 30]
    pipeline.eval()
    metrics = task.evaluate(pipeline, [batch])
    with torch.no_grad():  # recompute by hand, one tune at a time
        total = 0.0
        for e in examples:
            tokens = torch.tensor([e.tokens])
            logp = pipeline.model(tokens[:, :-1], torch.tensor([len(e.tokens) - 1])).log_softmax(-1)
            picked = logp[0].gather(1, tokens[0, 1:, None])[:, 0]
            total -= float(picked[PREFIX - 1 :].sum())
    assert metrics["nll_per_note"] == pytest.approx(total / 90, rel=1e-4)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]), rel=1e-6)


def test_training_steps_lower_the_loss_and_evaluate_reports_baseline_and_samples(corpus):
    pipeline = make_pipeline(corpus)
    task = pipeline.task
    batch = task.collate(task.load_data(corpus / "train.jsonl", train=True))
    optimiser = torch.optim.Adam(pipeline.parameters(), lr=0.02)
    first = None
    for _ in range(40):
        loss, count = task.loss(pipeline, batch)
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert count == sum(int(n) - 1 for n in batch["lengths"])
    assert loss.item() < 0.5 * first
    pipeline.eval()
    valid = task.collate(task.load_data(corpus / "valid.jsonl", train=False))
    metrics = task.evaluate(pipeline, [valid])
    for name in ("markov2_nll_per_note", "markov4_nll_per_note", "vs_markov_pct",
                 "gen_pitch_class_kl", "gen_note_length_overlap", "gen_in_key_pct",
                 "gen_copy_longest_max", "gen_copy16_pct", "train_interval_overlap",
                 "train_overlap_mean", "gen_overlap_mean", "gen_self_repeat_median",
                 "heldout_repeated_bars_pct", "gen_notes_per_bar", "heldout_pitch_classes_per_bar",
                 ):  # fmt: skip
        assert name in metrics and math.isfinite(metrics[name])
    assert metrics["heldout_in_key_pct"] == 100.0
    # the held-out scale tunes cut to 2 bars of 6/8: 12 8th notes, 6 per bar
    assert metrics["heldout_notes_per_bar"] == 6.0
    report = task.report(metrics)
    assert "Markov order 3" in report and "training tunes overlap" in report
    assert "notes per bar, mean | " in report


def test_transposition_augmentation_only_in_training(corpus):
    pipeline = make_pipeline(corpus, transpose=5)
    task = pipeline.task
    train = task.load_data(corpus / "train.jsonl", train=True)
    valid = task.load_data(corpus / "valid.jsonl", train=False)
    torch.manual_seed(1)
    seen = {tuple(task.collate(train[:1])["tokens"][0].tolist()) for _ in range(20)}
    assert len(seen) > 3
    assert task.collate(valid)["tokens"][0].tolist() == valid[0].tokens


def test_only_untransposed_tunes_teach_the_key_token(corpus):
    pipeline = make_pipeline(corpus, transpose=5)
    task = pipeline.task
    train = task.load_data(corpus / "train.jsonl", train=True)
    torch.manual_seed(3)
    seen = set()
    for _ in range(4):
        batch = task.collate(train)
        own = [row[: len(e.tokens)] == e.tokens[: len(row)]
               for row, e in zip(batch["tokens"].tolist(), train, strict=True)]  # fmt: skip
        assert batch["own_key"].tolist() == own
        _, real = task._token_nll(pipeline, batch)
        assert real[:, 0].tolist() == own  # target 0 is the key token
        assert real[:, 1:].all()  # every other target counts
        seen |= set(own)
    assert seen == {True, False}
    valid = task.collate(task.load_data(corpus / "valid.jsonl", train=False))
    assert valid["own_key"].all()


def test_markov_distribution_sums_to_one_and_backs_off():
    tunes = [scale_tune(i) for i in range(8)]
    chain = MarkovBaseline(2).fit(tunes)
    seen = {e for t in tunes for e in events(t)}
    context = tuple(events(tunes[0])[:2])
    known = sum(chain.prob(context, e) for e in seen)
    unknown = (129 * MAX_TICKS + 1 - len(seen)) * chain.prob(context, (REST, 7))
    assert known + unknown == pytest.approx(1.0, abs=1e-6)
    assert chain.prob(context, events(tunes[0])[2]) > 0.3  # the scale continues
    assert chain.prob((("x", 1), ("y", 2)), END) > 0  # unseen context: backs off
    assert chain.nll_per_note(tunes) < MarkovBaseline(0).fit(tunes).nll_per_note(tunes)


def test_similarity_and_copy_detection():
    a = [scale_tune(i) for i in range(10)]
    shuffled = [Melody([Note(60 + (7 * i) % 24, 12 * i, 6 + 6 * (i % 3)) for i in range(24)])]
    same = similarity(a, [scale_tune(i) for i in range(10, 20)])
    other = similarity(a, shuffled * 5)
    assert same["pitch-class histogram"][1] > other["pitch-class histogram"][1]
    assert same["note-length histogram"][1] > other["note-length histogram"][1]
    index = NgramIndex(a)
    assert index.longest_match(scale_tune(2, 30)) >= 24
    assert index.longest_match(shuffled[0]) <= 3


def test_events_cover_rests():
    melody = Melody([Note(60, 0, 12), Note(62, 24, 12)])
    assert events(melody) == [(60, 12), (REST, 12), (62, 12), END]


def phrase(pitches: list[int], start: int = 0, length: int = 12) -> list[Note]:
    return [Note(p, start + length * i, length) for i, p in enumerate(pitches)]


def test_form_statistics_count_repeats_bars_and_density():
    a = [62, 64, 66, 67, 69, 71, 73, 74]  # 8 notes: a bar of 8ths in 4/4 (96 ticks)
    b = [60, 72, 61, 70, 63]
    notes = phrase(a) + phrase(b, 96) + phrase([p + 2 for p in a], 156)  # A, B, A a tone up
    assert longest_self_repeat(Melody(notes)) == 8
    assert longest_self_repeat(Melody(phrase([60] * 10))) == 5  # halves: no overlap counted
    assert longest_self_repeat(Melody(phrase([60, 62, 59, 65]))) == 1
    x, y = [60, 62, 64, 65, 67, 65, 64, 62], [67, 67, 69, 69, 71, 71, 72, 72]
    tune = Melody(phrase(x) + phrase(y, 96) + phrase(x, 192) + phrase(x, 288))
    assert repeated_bar_share(tune) == 0.5
    assert notes_per_bar(tune) == 8.0
    assert pitch_classes_per_bar(tune) == pytest.approx((5 + 4 + 5 + 5) / 4)
    assert repeated_bar_share(Melody(phrase(x) + phrase([p + 1 for p in x], 96))) == 0.0
    two = crop(tune, 2)
    assert len(two.notes) == 16 and two.end == 192
    held = crop(Melody([Note(60, 0, 300)]), 2)  # a note over the bar line is cut at it
    assert held.notes == [Note(60, 0, 192)]


def test_markov_samples_follow_the_chain_and_fit_the_length():
    import random

    tunes = [scale_tune(i) for i in range(8)]
    chain = MarkovBaseline(2).fit(tunes)
    melody = chain.sample(4 * 72, random.Random(0), (6, 8))
    assert melody.time_signature == (6, 8)
    assert melody.end == 4 * 72  # 8th notes fill the bars exactly
    steps = {b.pitch - a.pitch for a, b in zip(melody.notes, melody.notes[1:], strict=False)}
    assert steps <= {-2, -1, 1, 2, 0}  # scale steps (and the turn at the top or bottom)
