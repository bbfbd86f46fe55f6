"""Lookback inputs (features/melody_form.py) and the ``rnn_lm`` model that reads them."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqpipe.features.melody_events import VALUES, EventEncoding
from seqpipe.features.melody_form import lookback_for
from seqpipe.features.melody_grid import GridEncoding
from seqpipe.midi import Melody, Note
from seqpipe.pipeline import Pipeline

EVENTS, GRID = EventEncoding(48, 96), GridEncoding()
METERS = [(4, 4), (6, 8), (3, 4), (12, 8), (5, 4)]
notes = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 0, 6, 12]),
        st.sampled_from(VALUES[:20] + [24, 24, 120]),
        st.integers(60, 64),
    ),  # fmt: skip
    min_size=1,
    max_size=30,
)


def melody(items, meter) -> Melody:
    out, time = [], 0
    for gap, duration, pitch in items:
        time += gap
        out.append(Note(pitch, time, duration))
        time += duration
    return Melody(out, key="C major", time_signature=meter)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(notes, st.sampled_from(METERS)), min_size=1, max_size=3),
       st.sampled_from([EVENTS, GRID]))  # fmt: skip
def test_all_at_once_equals_writing_one_token_at_a_time(rows, encoding):
    """Training reads the lookback facts in parallel, generation token by token: the same
    numbers, for padded rows, rests, tied durations (dur:96 dur:24) and any meter."""
    lookback = lookback_for(encoding, (1, 2, 4))
    seqs = [encoding.encode(melody(items, meter)) for items, meter in rows]
    T = max(map(len, seqs))
    tokens = torch.tensor([s + [0] * (T - len(s)) for s in seqs])  # padded with <pad>
    candidates, runs, position = lookback.all_at_once(tokens)
    memory = lookback.start(len(seqs), "cpu")
    for t in range(T):
        memory = lookback.write(memory, tokens[:, t])
        for i, seq in enumerate(seqs):
            if t < len(seq):
                assert candidates[i, t].tolist() == memory.candidates[i].tolist()
                assert runs[i, t].tolist() == memory.runs[i].tolist()
                assert int(position[i, t]) == int(memory.position[i])


def test_a_repeated_bar_is_offered_note_for_note_and_its_run_grows():
    bar = [Note(62, 0, 12), Note(64, 12, 12), Note(66, 24, 24), Note(67, 48, 48)]
    again = [Note(n.pitch, n.start + 96, n.duration) for n in bar]
    tokens = EVENTS.encode(Melody(bar + again, time_signature=(4, 4)))
    candidates, runs, position = lookback_for(EVENTS, (1, 2)).all_at_once(torch.tensor([tokens]))
    body = tokens[4:-1]  # 8 tokens a bar
    # after the first bar, each token of the second is offered one step ahead
    assert candidates[0, 4 + 7 : 4 + 15, 0].tolist() == body[:8]
    assert runs[0, 4 + 8 : 4 + 16, 0].tolist() == list(range(1, 9))
    assert (candidates[0, :-2, 1] == -1).all()  # nothing two bars back until the end
    assert candidates[0, -1, 1] == body[0]
    assert position[0, 4 + 1].item() == 12  # after note:62 dur:12


def lookback_model(cell: str):
    torch.manual_seed(0)
    config = {
        "task": {"name": "melody", "sample_melodies": 0},
        "features": {"name": "melody_events"},
        "model": {
            "name": "rnn_lm",
            "cell": cell,
            "embedding_size": 8,
            "hidden_size": 16,
            "num_layers": 2,
            "lookback_bars": [1, 2],
            "lookback_size": 4,
        },  # fmt: skip
        "decoder": {"name": "sample"},
    }
    pipeline = Pipeline.from_config(config)
    with torch.no_grad():  # untrained copy scores are 0: make them count
        pipeline.model.copy_run.normal_()
    return pipeline


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("mode", ["train", "eval", "generate"])
@pytest.mark.parametrize("rows", [1, 2])  # one row keeps its bar memory in Python
def test_lookback_lm_forward_equals_repeated_step_and_padding_is_ignored(cell, mode, rows):
    pipeline = lookback_model(cell)
    model, enc = pipeline.model, pipeline.features
    bar = [Note(62, 0, 12), Note(64, 12, 12), Note(66, 24, 24), Note(67, 60, 36)]
    tunes = [bar + [Note(n.pitch, n.start + 96 * k, n.duration) for k in (1, 2) for n in bar]]
    tunes = (tunes + [tunes[0][:5]])[:rows]
    seqs = [enc.encode(Melody(t, time_signature=(4, 4))) for t in tunes]
    T = len(seqs[0])
    tokens = torch.tensor([s + [0] * (T - len(s)) for s in seqs])
    lengths = torch.tensor([len(s) for s in seqs])
    model.train(mode == "train")
    torch.manual_seed(1)
    full = model(tokens, lengths).detach()
    alone = model(tokens[-1:, : lengths[-1]], lengths[-1:]).detach()
    torch.testing.assert_close(full[-1, : lengths[-1]], alone[0], atol=1e-5, rtol=0)
    with torch.inference_mode(mode == "generate"):
        state = model.initial_state(rows, "cpu")
        for t in range(T):
            logits, state = model.step(tokens[:, t], state)
            real = lengths > t
            torch.testing.assert_close(logits[real], full[real, t], atol=1e-5, rtol=0)
        picked = model.reorder_state(state, torch.tensor([rows - 1, rows - 1, 0]))
        assert (
            picked["bars"].candidates.tolist()
            == state["bars"].candidates[[rows - 1] * 2 + [0]].tolist()
        )
        step, _ = model.step(tokens[[rows - 1] * 2 + [0], -1], picked)
        assert step.shape == (3, enc.vocab_size)


def test_lookback_model_saves_loads_and_generates(tmp_path):
    pipeline = lookback_model("lstm")
    path = pipeline.save(tmp_path / "form.safetensors")
    loaded = Pipeline.load(str(path), "cpu")
    assert loaded.config["model"]["lookback_bars"] == [1, 2]
    from seqpipe.music.generator import generate_melodies
    from seqpipe.music.request import Request

    melodies = generate_melodies(loaded, Request(n=2, bars=2, time_signature=(6, 8), seed=0))
    assert all(m.end == 2 * 72 for m in melodies)


def repeated_bars(enc):
    bar = [Note(62, 0, 12), Note(64, 12, 12), Note(66, 24, 24), Note(67, 60, 36)]
    tune = bar + [Note(n.pitch, n.start + 96 * k, n.duration) for k in (1, 2, 3) for n in bar]
    return torch.tensor([enc.encode(Melody(tune, time_signature=(4, 4)))])


@torch.inference_mode()
def test_one_rows_python_step_equals_the_batched_step():
    """One row keeps its bar memory in Python and picks its table rows and copy scores
    there (RowMemory, RowIndex); two rows run the tensor path. Same facts, same logits."""
    pipeline = lookback_model("lstm")
    model, tokens = pipeline.model.eval(), repeated_bars(pipeline.features)
    one, two = model.initial_state(1, "cpu"), model.initial_state(2, "cpu")
    copied = 0
    for t in range(tokens.shape[1]):
        alone, one = model.step(tokens[:, t], one)
        both, two = model.step(tokens[[0, 0], t], two)
        assert one["bars"].cands == two["bars"].candidates[0].tolist()
        assert one["bars"].run_list == two["bars"].runs[0].tolist()
        copied += max(one["bars"].cands) >= 0
        torch.testing.assert_close(alone[0], both[0], atol=1e-6, rtol=0)
        assert torch.equal(both[0], both[1])
    assert copied > 20  # the copy scores were exercised


def test_generation_tables_follow_changed_weights():
    """The gate and copy tables a generation looks up are cached on the model; a weight
    changed in place (an optimiser step, load_state_dict) rebuilds them."""
    pipeline = lookback_model("lstm")
    model, tokens = pipeline.model.eval(), repeated_bars(pipeline.features)

    def stepped():
        with torch.inference_mode():
            state = model.initial_state(1, "cpu")
            for t in range(tokens.shape[1]):
                logits, state = model.step(tokens[:, t], state)
        return logits[0]

    first = stepped()
    with torch.no_grad():
        model.embed.weight.add_(0.5)
        model.copy_run.add_(1.0)
    changed = stepped()
    assert not torch.allclose(first, changed)
    with torch.inference_mode():
        full = model(tokens, torch.tensor([tokens.shape[1]]))[0, -1]
    torch.testing.assert_close(changed, full, atol=1e-5, rtol=0)


def test_a_model_built_in_inference_mode_generates():
    """Its weights are inference tensors (no version counter to cache the tables by)."""
    with torch.inference_mode():
        pipeline = lookback_model("lstm")
        model, tokens = pipeline.model.eval(), repeated_bars(pipeline.features)
        state = model.initial_state(1, "cpu")
        for t in range(tokens.shape[1]):
            logits, state = model.step(tokens[:, t], state)
        full = model(tokens, torch.tensor([tokens.shape[1]]))[0, -1]
    torch.testing.assert_close(logits[0], full, atol=1e-5, rtol=0)
