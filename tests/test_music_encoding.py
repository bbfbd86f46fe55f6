"""Melody encodings: encode -> decode round trips (hypothesis), conditioning tokens, grammar."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqpipe.errors import SeqpipeError
from seqpipe.features.melody_events import VALUES, EventEncoding, split_ticks
from seqpipe.features.melody_grid import GridEncoding
from seqpipe.features.melody_tokens import EOS, PREFIX
from seqpipe.midi import Melody, Note, skyline
from seqpipe.theory import (
    estimate_key,
    in_key_fraction,
    parse_key,
    parse_note_name,
    scale_pitch_classes,
)

GRID, EVENTS = GridEncoding(), EventEncoding()


def build(items, unit: int) -> list[Note]:
    """(gap, duration, pitch) triples in units of ``unit`` ticks -> back-to-back notes."""
    notes, time = [], 0
    for gap, duration, pitch in items:
        time += gap * unit
        notes.append(Note(pitch, time, duration * unit))
        time += duration * unit
    return notes


grid_notes = st.lists(
    st.tuples(st.integers(0, 6), st.integers(1, 12), st.integers(36, 96)), max_size=40
)
# event durations: any multiple of a 32nd (3 ticks) or of a 16th triplet (4 ticks)
event_values = st.sampled_from(VALUES + [120, 144, 200])
event_notes = st.lists(
    st.tuples(st.sampled_from([0, 0, 3, 4, 8, 12, 100]), event_values, st.integers(36, 96)),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(grid_notes)
def test_grid_round_trip_keeps_notes_on_the_16th_grid(items):
    notes = build(items, GRID.step_ticks)
    tokens = GRID.encode(Melody(notes))
    assert GRID.decode(tokens).notes == notes
    assert all(GRID.grammar[a, b] for a, b in zip(tokens, tokens[1:], strict=False))


@settings(max_examples=40, deadline=None)
@given(event_notes)
def test_event_round_trip_keeps_triplets_and_odd_durations(items):
    notes, time = [], 0
    for gap, duration, pitch in items:
        time += gap
        notes.append(Note(pitch, time, duration))
        time += duration
    tokens = EVENTS.encode(Melody(notes))
    assert EVENTS.decode(tokens).notes == notes
    assert all(EVENTS.grammar[a, b] for a, b in zip(tokens, tokens[1:], strict=False))


def test_grid_rounds_triplets_but_events_keep_them():
    triplets = [Note(60 + i, 8 * i, 8) for i in range(3)]  # three 8th-note triplets
    assert EVENTS.decode(EVENTS.encode(Melody(triplets))).notes == triplets
    assert GRID.decode(GRID.encode(Melody(triplets))).notes != triplets


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 1000))
def test_split_ticks_sums_back(ticks):
    parts = split_ticks(ticks)
    assert all(p in VALUES for p in parts)
    assert ticks - 2 <= sum(parts) <= ticks


@pytest.mark.parametrize("encoding", [GRID, EVENTS], ids=["grid", "events"])
def test_conditioning_tokens_round_trip(encoding):
    melody = Melody([Note(62, 0, 12)], key="D major", time_signature=(6, 8), tempo=120.0)
    tokens = encoding.encode(melody)
    assert tokens[0] == 1 and tokens[-1] == EOS
    assert [encoding.kinds[t] for t in tokens[1:PREFIX]] == ["key", "meter", "tempo"]
    back = encoding.decode(tokens)
    assert (back.key, back.time_signature, back.tempo) == ("D major", (6, 8), 120.0)
    assert encoding.output_size == encoding.vocab_size == len(encoding.vocab)


def test_transposition_moves_key_and_pitches_and_folds_into_range():
    melody = Melody([Note(60, 0, 12), Note(64, 12, 12)], key="C major")
    up = melody.transpose(7)
    assert up.key == "G major" and [n.pitch for n in up.notes] == [67, 71]
    assert EVENTS.fold_pitch(100) == 88 and EVENTS.fold_pitch(30) == 42


def test_skyline_keeps_the_highest_voice():
    chord_then_line = [Note(60, 0, 24), Note(64, 0, 24), Note(67, 0, 24), Note(72, 12, 12)]
    assert skyline(chord_then_line) == [Note(67, 0, 12), Note(72, 12, 12)]


def test_theory_helpers():
    assert parse_key("Gm") == "G minor"
    assert parse_key("f# minor") == "F# minor"
    assert parse_key("A dorian") == "A minor"
    assert parse_key("Bb") == "Bb major"
    with pytest.raises(SeqpipeError, match="unknown key"):
        parse_key("H")
    assert parse_note_name("C4") == 60 and parse_note_name("Bb3") == 58
    assert parse_note_name("61") == 61
    with pytest.raises(SeqpipeError):
        parse_note_name("X9")
    d_major = [62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62]
    assert estimate_key(d_major) == "D major"
    assert in_key_fraction(d_major) == 1.0
    assert in_key_fraction(list(range(60, 72))) == 7 / 12  # chromatic: any scale holds 7
    assert scale_pitch_classes("A minor") == {9, 11, 0, 2, 4, 5, 7, 8}
