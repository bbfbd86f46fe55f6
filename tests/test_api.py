"""The Python API: seqpipe.transcribe / generate / load, and a light ``import seqpipe``."""

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
from test_music_generate import TINY
from transcribe_helpers import SR, tone_bundle, tones

import seqpipe
from seqpipe.errors import ParameterError
from seqpipe.midi import Melody
from seqpipe.pipeline import Pipeline

BURSTS = [(0.5, 1.0), (1.6, 2.5), (4.0, 4.4)]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> str:
    return tone_bundle(tmp_path_factory.mktemp("api") / "tone.safetensors")


@pytest.fixture(scope="module")
def melody(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("api") / "melody.safetensors"
    return str(Pipeline.from_config(TINY).save(path))


def test_import_seqpipe_does_not_import_torch():
    code = "import sys, seqpipe; print('torch' in sys.modules, callable(seqpipe.transcribe))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_transcribe_a_file_or_samples_alike(speech, tmp_path):
    samples = tones(BURSTS, 5.0)
    wav = tmp_path / "a.wav"
    sf.write(wav, samples, SR)
    from_file = seqpipe.transcribe(wav, speech, device="cpu")
    assert str(from_file) == from_file.text == "a a a"
    assert from_file.duration == 5.0
    words = [w for s in from_file.segments for w in s.words]
    assert [round(w.start, 1) for w in words] == [0.5, 1.6, 4.0]
    pipeline = seqpipe.load(speech, device="cpu")
    from_array = seqpipe.transcribe(torch.from_numpy(samples), pipeline, sample_rate=SR)
    assert from_array.text == "a a a"
    assert [w.start for s in from_array.segments for w in s.words] == [w.start for w in words]
    # the CLI's VAD options: with a fixed floor above the bursts' level nothing is speech
    assert seqpipe.transcribe(wav, pipeline, vad="energy", vad_floor=-1).text == ""
    assert seqpipe.transcribe(wav, pipeline, vad="off").text == "a a a"


def test_transcribe_errors_name_the_parameter(speech, tmp_path):
    with pytest.raises(ParameterError, match="^sample_rate: needed with samples"):
        seqpipe.transcribe(tones(BURSTS, 5.0), speech, device="cpu")
    with pytest.raises(ParameterError, match="^audio: expected mono samples"):
        seqpipe.transcribe(tones(BURSTS, 5.0).reshape(2, -1), speech, sample_rate=SR)
    with pytest.raises(ParameterError, match="^audio .*missing.wav: no such file"):
        seqpipe.transcribe(tmp_path / "missing.wav", speech, device="cpu")
    with pytest.raises(ParameterError, match="^vad bogus: not one of auto, energy, silero, off"):
        seqpipe.transcribe(tmp_path / "missing.wav", speech, vad="bogus")


def test_generate_melodies_repeatably(melody):
    first = seqpipe.generate(melody, n=2, bars=2, meter="3/4", tempo=90, seed=3)
    again = seqpipe.generate(seqpipe.load(melody, device="cpu"), n=2, bars=2, meter=(3, 4),
                             tempo=90, seed=3)  # fmt: skip
    assert len(first) == 2 and all(isinstance(m, Melody) for m in first)
    assert [m.notes for m in first] == [m.notes for m in again]
    assert all(m.time_signature == (3, 4) and m.notes[-1].end <= 2 * 3 * 24 for m in first)


def test_generate_errors_name_the_parameter(melody):
    with pytest.raises(ParameterError, match="^meter 'six-eight': expected a time signature"):
        seqpipe.generate(melody, meter="six-eight")
    with pytest.raises(ParameterError, match=r"^scale: needs key \(the scale"):
        seqpipe.generate(melody, scale=True)


def test_the_readme_example_prints_the_digits():
    example = Path(__file__).resolve().parents[1] / "examples" / "seven_three_one.wav"
    assert "seven three one" in str(seqpipe.transcribe(example, device="cpu", threads=1))
