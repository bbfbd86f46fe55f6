"""en-small on synthetic speech: quiet recordings keep their words, hotwords are heard,
and the JSON has whisper's shape. Speech made with espeak-ng (skipped without it)."""

import json
import shutil
import subprocess
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from seqpipe.cli import build_cli

EN_SMALL = Path(__file__).resolve().parents[1] / "seqpipe" / "bundled" / "en-small.safetensors"
pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
    pytest.mark.skipif(not EN_SMALL.exists(), reason="en-small is not bundled"),
]


def speak(text: str, path: Path, peak_db: float = -1.0) -> Path:
    """``text`` spoken by espeak-ng with 0.5 s of silence either side, at ``peak_db`` dBFS
    peak, as 24-bit PCM (16 bits at -50 dBFS leave speech ~7 bits: another recording)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
    x, sr = sf.read(raw)
    pause = np.zeros(sr // 2)
    x = np.concatenate([pause, x / np.abs(x).max(), pause]) * 10 ** (peak_db / 20)
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_24")
    return path


def transcribe(*args) -> str:
    result = CliRunner().invoke(build_cli(), ["transcribe", *map(str, args), "-q"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


SENTENCE = "the quick brown fox jumps over the lazy dog and then it runs away"


def test_the_same_speech_at_minus_10_30_50_dbfs_gives_the_same_transcript(tmp_path):
    wavs = [speak(SENTENCE, tmp_path / f"{-db}.wav", db) for db in (-10, -30, -50)]
    lines = transcribe(*wavs).splitlines()  # "path<TAB>text", in input order
    texts = [line.split("\t")[1] for line in lines]
    assert len(texts) == 3 and len(set(texts)) == 1, texts  # the level changes nothing
    assert jiwer.wer(SENTENCE, texts[0]) <= 0.25, texts[0]  # and the words are heard


def test_a_fixed_energy_floor_loses_the_quiet_recording(tmp_path):
    """What --vad auto fixes: the old fixed -50 dBFS floor hears nothing at -50 dBFS."""
    wav = speak(SENTENCE, tmp_path / "quiet.wav", -50)
    assert transcribe(wav, "--vad", "energy") == ""


def test_hotwords_bring_two_names_the_lm_has_never_seen(tmp_path):
    wav = speak(
        "please call dravik and tell velmora the meeting moved to friday", tmp_path / "n.wav"
    )
    before = transcribe(wav).split()
    assert "dravik" not in before and "velmora" not in before
    after = transcribe(wav, "--hotwords", "Dravik, Velmora").split()
    assert after == "please call dravik and tell velmora the meeting moved to friday".split()


def test_json_has_whispers_shape_and_our_keys(tmp_path):
    wav = speak(SENTENCE, tmp_path / "a.wav")
    transcribe(wav, "-f", "json", "-f", "tsv", "-o", tmp_path)
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["language"] == "en" and jiwer.wer(SENTENCE, data["text"]) <= 0.25
    assert data["text"] == " ".join(seg["text"] for seg in data["segments"])
    assert {"file", "duration", "model", "confidence"} <= set(data)
    for i, seg in enumerate(data["segments"]):
        assert seg["id"] == i
        assert isinstance(seg["start"], float) and seg["start"] <= seg["end"]
        assert isinstance(seg["text"], str) and seg["words"]
        for w in seg["words"]:
            assert set(w) >= {"word", "start", "end", "probability"}
            assert 0 <= w["probability"] <= 1 and w["probability"] == w["confidence"]
            assert seg["start"] <= w["start"] <= w["end"] <= seg["end"] + 1e-3
    # one confidence everywhere: the file's is the mean of its words', as is a segment's
    probs = [w["probability"] for s in data["segments"] for w in s["words"]]
    assert data["confidence"] == pytest.approx(np.mean(probs), abs=1e-3)
    header, *rows = (tmp_path / "a.tsv").read_text().splitlines()
    assert header == "start\tend\ttext\tconfidence" and len(rows) == len(data["segments"])
    for row, seg in zip(rows, data["segments"], strict=True):
        start, end, text, confidence = row.split("\t")
        assert (int(start), int(end)) == (round(seg["start"] * 1000), round(seg["end"] * 1000))
        assert text == seg["text"] and float(confidence) == pytest.approx(seg["confidence"])


silero = pytest.mark.skipif(
    __import__("importlib").util.find_spec("silero_vad") is None,
    reason="silero-vad is not installed (the vad extra)",
)


@silero
def test_silero_vad_gives_the_same_transcript_at_minus_10_30_50_dbfs(tmp_path):
    wavs = [speak(SENTENCE, tmp_path / f"{-db}.wav", db) for db in (-10, -30, -50)]
    lines = transcribe(*wavs, "--vad", "silero").splitlines()
    texts = [line.split("\t")[1] for line in lines]
    assert len(texts) == 3 and len(set(texts)) == 1, texts
    assert jiwer.wer(SENTENCE, texts[0]) <= 0.25, texts[0]


@silero
def test_silero_vad_drops_loud_noise_that_the_energy_vad_keeps(tmp_path):
    from seqpipe.speech.vad import VADOptions, chunks

    speech = speak(SENTENCE, tmp_path / "s.wav")
    x, sr = sf.read(speech, dtype="float32")
    noise = np.random.default_rng(0).normal(0, 0.3, 2 * sr).astype(np.float32)  # 2 s hiss
    mixed = np.concatenate([noise, np.zeros(sr, np.float32), x])
    sf.write(tmp_path / "mixed.wav", mixed, sr)
    starts = {
        mode: [round(c.start, 1) for c in chunks(tmp_path / "mixed.wav", 16000, VADOptions(mode))]
        for mode in ("auto", "silero")
    }
    assert starts["auto"][0] < 0.5  # energy: the hiss is "speech"
    assert starts["silero"] and starts["silero"][0] >= 2.5, starts  # learned: only the speech
    assert jiwer.wer(SENTENCE, transcribe(tmp_path / "mixed.wav", "--vad", "silero")) <= 0.25
