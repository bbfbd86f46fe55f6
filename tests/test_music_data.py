"""``seqpipe data melodies``: MIDI/ABC folders -> JSONL splits, with a reason for every skipped file."""

import json

import pretty_midi
import pytest
from click.testing import CliRunner

from seqpipe.cli.data_melodies import melodies as command
from seqpipe.data.melodies import load_melodies, music21_available, split_of
from seqpipe.midi import Melody, Note, read_midi, write_midi


def tune(offset: int, length: int = 16) -> Melody:
    notes = [Note(60 + (i * 5 + offset) % 12, 12 * i, 12) for i in range(length)]
    return Melody(notes, key="C major", time_signature=(4, 4), tempo=100.0)


def write_drums(path):
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes = [pretty_midi.Note(100, 36, i * 0.5, i * 0.5 + 0.1) for i in range(16)]
    pm.instruments.append(drums)
    pm.write(str(path))


def write_chords(path):
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    for i in range(12):
        for pitch in (60, 64, 67, 72):
            piano.notes.append(pretty_midi.Note(90, pitch, i * 0.5, i * 0.5 + 0.5))
    pm.instruments.append(piano)
    pm.write(str(path))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "midi"
    (root / "sub").mkdir(parents=True)
    for i in range(6):
        write_midi(tune(i), root / "sub" / f"tune{i}.mid")
    write_midi(tune(0), root / "zz_copy_of_tune0.midi")  # duplicate, found later: dropped
    write_drums(root / "drums.mid")
    write_chords(root / "chords.mid")
    write_midi(Melody([]), root / "empty.mid")
    (root / "corrupt.mid").write_bytes(b"MThd\x00\x00garbage")
    return root


def test_converts_a_folder_and_explains_every_skip(folder, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(command, [str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for reason in ("drums.mid: drums only", "chords.mid: polyphony only", "empty.mid: no notes",
                   "corrupt.mid: cannot read MIDI"):  # fmt: skip
        assert reason in result.output
    assert "skipped 4, duplicates dropped 1" in result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tunes"] == 6 and stats["skipped"] == 4
    loaded = sum((load_melodies(out / f"{s}.jsonl") for s in ("train", "valid", "test")), [])
    assert sorted(m.name for m in loaded) == [f"sub/tune{i}.mid" for i in range(6)]
    first = next(m for m in loaded if m.name == "sub/tune0.mid")
    assert first.notes == tune(0).notes and first.key == "C major" and first.tempo == 100.0


def test_split_is_deterministic_and_shared_by_transposed_copies():
    melody = tune(3)
    assert split_of(melody) == split_of(melody.transpose(5))
    splits = [split_of(tune(i, length=8 + i % 7)) for i in range(300)]
    assert 0.7 < splits.count("train") / 300 < 0.95
    assert splits.count("test") > 10


def test_read_midi_takes_the_highest_voice_or_one_instrument(tmp_path):
    pm = pretty_midi.PrettyMIDI()
    for pitch in (72, 48):  # melody above a bass line
        inst = pretty_midi.Instrument(0)
        inst.notes = [pretty_midi.Note(90, pitch + i % 3, i * 0.5, i * 0.5 + 0.5) for i in range(8)]
        pm.instruments.append(inst)
    pm.write(str(tmp_path / "two.mid"))
    assert {n.pitch for n in read_midi(tmp_path / "two.mid").notes} == {72, 73, 74}
    assert {n.pitch for n in read_midi(tmp_path / "two.mid", instrument=1).notes} == {48, 49, 50}


@pytest.mark.skipif(not music21_available(), reason="music21 (extra 'music') not installed")
def test_abc_opus_gives_one_melody_per_tune(tmp_path):
    abc = """X:1
T:One
M:6/8
L:1/8
K:D
|:DFA dfa|gfe dcB|AFD DFA|B3 A3:|

X:2
T:Two
M:4/4
L:1/8
K:Ador
|:A2 (3Bcd e2 dc|BAGB A4:|
"""
    (tmp_path / "tunes.abc").write_text(abc)
    melodies = load_melodies(tmp_path / "tunes.abc")
    assert len(melodies) == 2
    one, two = melodies
    assert (one.key, one.time_signature) == ("D major", (6, 8))
    assert [n.pitch for n in one.notes[:3]] == [62, 66, 69]
    assert (two.key, two.time_signature) == ("A minor", (4, 4))
    assert [n.duration for n in two.notes[1:4]] == [8, 8, 8]  # an 8th-note triplet
