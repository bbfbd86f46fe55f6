"""``seqpipe transcribe`` end to end with a deterministic tone model (see transcribe_helpers)."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt
from click.testing import CliRunner
from transcribe_helpers import SR, tone_bundle, tones, write_long_tones

from seqpipe.cli import build_cli
from seqpipe.text import ONES

BURSTS = [(0.5, 1.0), (1.6, 2.5), (4.0, 4.4)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tone_bundle(tmp_path_factory.mktemp("bundle") / "tone.safetensors")


def seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return round(int(h) * 3600 + int(m) * 60 + float(s), 3)


def run(*args, input=None):
    return CliRunner().invoke(build_cli(), ["transcribe", *map(str, args)], input=input)


def test_text_to_stdout_when_no_output_is_asked(bundle, tmp_path):
    import torch

    wav = tmp_path / "a.wav"
    sf.write(wav, tones(BURSTS, 5.0), SR)
    threads = torch.get_num_threads()
    result = run(wav, "-m", bundle)
    assert result.exit_code == 0, result.output
    assert result.stdout == "a a a\n"
    assert torch.get_num_threads() == threads  # the one-thread default does not leak
    assert not list(tmp_path.glob("a.*[!v]"))  # nothing written next to the input


def test_json_words_match_the_bursts(bundle, tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, tones(BURSTS, 5.0), SR)
    result = run(wav, "-m", bundle, "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "a.json").read_text())
    words = [w for s in data["segments"] for w in s["words"]]
    assert [w["word"] for w in words] == ["a", "a", "a"]
    for w, (start, end) in zip(words, BURSTS, strict=True):
        assert abs(w["start"] - start) < 0.05 and abs(w["end"] - end) < 0.05
        assert 0.9 < w["confidence"] <= 1.0
    assert data["duration"] == 5.0 and data["text"] == "a a a"


def test_subtitles_parse_and_are_monotonic_within_duration(bundle, tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, tones(BURSTS, 5.0), SR)
    result = run(wav, "-m", bundle, "-f", "srt", "-f", "vtt", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    subs = list(srt.parse((tmp_path / "out" / "a.srt").read_text()))
    cues = webvtt.read(str(tmp_path / "out" / "a.vtt"))
    assert len(subs) == len(cues) >= 1
    times = [(s.start.total_seconds(), s.end.total_seconds()) for s in subs]
    vtt_times = [(seconds(c.start), seconds(c.end)) for c in cues]
    assert vtt_times == [(round(a, 3), round(b, 3)) for a, b in times]
    flat = [t for pair in times for t in pair]
    assert flat == sorted(flat) and flat[0] >= 0 and flat[-1] <= 5.0


def test_directory_with_bad_and_empty_files_finishes_the_rest_and_exits_1(bundle, tmp_path):
    audio = tmp_path / "in"
    (audio / "sub").mkdir(parents=True)
    sf.write(audio / "good.wav", tones(BURSTS, 5.0), SR)
    sf.write(audio / "sub" / "good2.flac", tones(BURSTS[:1], 2.0), SR)
    (audio / "sub" / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (audio / "empty.wav").write_bytes(b"")
    result = run(audio, "-m", bundle, "-o", tmp_path / "out")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if "error:" in line]
    assert len(errors) == 2
    assert any("corrupt.wav: cannot read audio" in e for e in errors)
    assert any("empty.wav: file is empty" in e for e in errors)
    assert (tmp_path / "out" / "good.txt").read_text() == "a a a\n"
    assert (tmp_path / "out" / "sub" / "good2.txt").read_text() == "a\n"
    assert "2 of 4 file(s) failed" in result.output


def test_missing_file_and_glob(bundle, tmp_path):
    sf.write(tmp_path / "x1.wav", tones(BURSTS, 5.0), SR)
    sf.write(tmp_path / "x2.wav", tones(BURSTS[:2], 3.0), SR)
    result = run(tmp_path / "x*.wav", tmp_path / "nope.wav", "-m", bundle)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{tmp_path / 'x1.wav'}\ta a a" in lines and f"{tmp_path / 'x2.wav'}\ta a" in lines
    assert any("nope.wav: no such file or directory" in line for line in lines)


def test_directory_without_audio_is_reported(bundle, tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    result = run(tmp_path, "-m", bundle)
    assert result.exit_code == 1
    assert f"{tmp_path}: no audio files in this directory" in result.output


def test_stdin(bundle, tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, tones(BURSTS, 5.0), SR)
    result = run("-", "-m", bundle, "-f", "json", input=wav.read_bytes())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["text"] == "a a a"


def test_48k_stereo_mp3(bundle, tmp_path):
    mp3 = tmp_path / "s.mp3"
    x = tones(BURSTS, 5.0, 48000)
    try:
        sf.write(mp3, np.stack([x, 0.5 * x], 1), 48000, format="MP3")
    except (sf.LibsndfileError, ValueError, TypeError) as exc:
        pytest.skip(f"this libsndfile cannot write MP3: {exc}")
    result = run(mp3, "-m", bundle, "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["text"] == "a a a"
    starts = [w["start"] for s in data["segments"] for w in s["words"]]
    # mp3 encoders add a little delay; the words still sit on the bursts
    assert all(abs(s - b[0]) < 0.1 for s, b in zip(starts, BURSTS, strict=True))


@pytest.mark.slow
def test_twenty_minute_file_is_chunked_with_bounded_batches(bundle, tmp_path, monkeypatch):
    from seqpipe.device import threads
    from seqpipe.speech.files import expand_inputs
    from seqpipe.speech.transcriber import Transcriber

    wav = tmp_path / "long.wav"
    bursts = write_long_tones(wav, minutes=20, period=4.0)
    transcriber = Transcriber(bundle, device="cpu", batch_size=8)
    biggest = []
    features = transcriber.pipeline.features
    original = features.forward

    def spy(waves, lengths):
        biggest.append(waves.numel())
        return original(waves, lengths)

    monkeypatch.setattr(features, "forward", spy)
    with threads(1):
        (result,) = list(transcriber.run(expand_inputs([wav])))
    assert result.error is None
    words = [w for s in result.transcript.segments for w in s.words]
    assert len(words) == len(bursts) == 300
    # no batch held more than batch_size chunks of at most max_seconds each
    assert max(biggest) <= 8 * 20 * SR
    starts = [w.start for w in words]
    assert starts == sorted(starts) and words[-1].end <= 20 * 60
    assert all(abs(w.start - b[0]) < 0.05 for w, b in zip(words, bursts, strict=True))


def test_unknown_default_model_is_a_clear_error(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, tones(BURSTS, 5.0), SR)
    result = run(wav, "-m", "no-such-model")
    assert result.exit_code == 1
    assert "unknown model 'no-such-model' (installed: " in result.output


DIGITS = Path(__file__).resolve().parents[1] / "seqpipe" / "bundled" / "digits.safetensors"


@pytest.mark.skipif(
    not DIGITS.exists(),
    reason="bundled digits model not trained yet (seqpipe/bundled/digits.safetensors)",
)
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_digits_model_hears_seven_three_one(tmp_path):
    wav = tmp_path / "digits.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "seven three one"], check=True)
    result = run(wav, "-m", "digits")
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["seven", "three", "one"]


EN_SMALL = DIGITS.with_name("en-small.safetensors")


FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"


@pytest.mark.skipif(
    not EN_SMALL.exists(),
    reason="bundled en-small model not trained yet (seqpipe/bundled/en-small.safetensors)",
)
@pytest.mark.skipif(not FSDD.is_dir(), reason=f"the real FSDD recordings are not at {FSDD}")
def test_default_model_is_en_small_and_hears_a_real_speaker_it_never_heard(tmp_path):
    """theo, a real FSDD speaker left out of every en-small training set, says eight digits
    (his first takes, joined with pauses), and the bundled example is a real recording."""
    import jiwer

    digits = [3, 1, 4, 1, 5, 9, 2, 6]
    pause = np.zeros(4000, np.float32)
    parts = []
    for n, digit in enumerate(digits):
        take = digits[:n].count(digit)
        audio, rate = sf.read(FSDD / f"{digit}_theo_{take}.wav", dtype="float32")
        parts += [audio, pause]
    wav = tmp_path / "theo.wav"
    sf.write(wav, np.concatenate([pause, *parts]), rate)
    result = run(wav, "-f", "json", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "theo.json").read_text())
    assert data["model"] == "en-small"
    said = " ".join(ONES[d] for d in digits)
    assert jiwer.wer(said, data["text"]) <= 0.25, data["text"]
    example = Path(__file__).resolve().parents[1] / "examples" / "seven_three_one.wav"
    result = run(example)
    assert result.exit_code == 0 and result.output.split() == ["seven", "three", "one"]


def test_a_blip_shorter_than_one_window_still_transcribes(bundle, tmp_path):
    wav = tmp_path / "blip.wav"
    sf.write(wav, tones([(0.0, 0.01)], 0.01), SR)  # 160 samples: less than one FFT window
    result = run(wav, "-m", bundle, "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "blip.json").read_text())
    assert data["text"] == "a"
    assert all(w["end"] <= 0.01 for s in data["segments"] for w in s["words"])


def test_lm_weight_alone_reweights_the_bundles_own_search():
    """``--lm-weight`` without ``--beam-size``/``--lm`` used to be ignored."""
    from seqpipe.pipeline import Pipeline
    from seqpipe.speech.transcriber import choose_decoder

    config = {
        "task": {"name": "speech"},
        "features": {"name": "logmel", "n_mels": 40},
        "model": {"name": "ctc_rnn", "cell": "gru", "hidden_size": 32, "num_layers": 1},
        "decoder": {"name": "ctc_beam", "beam_size": 7},
    }
    pipeline = Pipeline.from_config(config)
    decoder = choose_decoder(pipeline, None, None, 0.25)
    assert decoder is pipeline.decoder
    assert decoder.options["lm_weight"] == 0.25 and decoder.options["beam_size"] == 7
