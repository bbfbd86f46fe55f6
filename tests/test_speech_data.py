"""Text normalisation, vocabulary, manifests (files, FSDD names, hold-out, CLI), corpus and TTS."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from seqpipe.data.manifest import read_manifest, scan_directory, split_speakers, write_manifest
from seqpipe.errors import SeqpipeError
from seqpipe.text import VOCAB, decode, encode, normalize


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Hello, World!", "hello world"),
        ("I have 21 apples.", "i have twenty one apples"),
        ("Call 0123 now", "call zero one two three now"),
        ('It\'s 100% "quoted"', "it's one hundred percent quoted"),
        ("Café  au   lait", "cafe au lait"),
        ("4 1 1 7", "four one one seven"),
        ("1999", "one thousand nine hundred ninety nine"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected
    assert normalize(expected) == expected  # idempotent: training and scoring agree


def test_vocabulary_round_trip_with_blank_at_zero():
    assert VOCAB[0] == "<b>" and " " in VOCAB and "'" in VOCAB
    ids = encode("Don't panic, 42!")
    assert 0 not in ids
    assert decode(ids) == "don't panic forty two"


def write_wav(path, seconds=0.3, rate=8000):
    sf.write(str(path), np.zeros(int(seconds * rate), np.float32), rate)


def test_manifest_paths_are_relative_to_the_manifest(tmp_path):
    audio = tmp_path / "audio" / "a.wav"
    audio.parent.mkdir()
    write_wav(audio)
    manifest = tmp_path / "lists" / "m.jsonl"
    write_manifest(manifest, [{"audio": str(audio), "text": "hi", "duration": 0.3}])
    stored = json.loads(manifest.read_text())
    assert stored["audio"] == "../audio/a.wav"
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "audio", moved / "audio")
    shutil.copytree(tmp_path / "lists", moved / "lists")
    (entry,) = read_manifest(moved / "lists" / "m.jsonl")
    assert entry["audio"] == str(moved / "lists" / "../audio/a.wav")
    assert sf.info(entry["audio"]).frames == 2400


def test_bad_manifest_lines_name_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"audio": "a.wav", "text": "x"}\n{oops\n')
    with pytest.raises(SeqpipeError, match=r"m.jsonl:2: invalid JSON"):
        read_manifest(path)
    path.write_text('{"audio": "a.wav"}\n')
    with pytest.raises(
        SeqpipeError, match=r"m.jsonl:1: expected an object with 'audio' and 'text'"
    ):
        read_manifest(path)


def test_scan_pairs_and_fsdd_names_and_hold_out(tmp_path):
    write_wav(tmp_path / "x.wav", 0.5)
    (tmp_path / "x.txt").write_text("Hello  there\n")
    write_wav(tmp_path / "no_transcript.wav")
    sub = tmp_path / "fsdd"
    sub.mkdir()
    for name in ("7_jackson_3", "0_theo_12", "3_theo_1"):
        write_wav(sub / f"{name}.wav")
    entries = scan_directory(tmp_path)
    texts = {e["text"]: e for e in entries}
    assert set(texts) == {"Hello there", "seven", "zero", "three"}
    assert texts["Hello there"]["duration"] == 0.5 and "speaker" not in texts["Hello there"]
    kept, held = split_speakers(entries, ["theo"])
    assert sorted(e["text"] for e in held) == ["three", "zero"]
    assert len(kept) == 2


def test_data_manifest_command(tmp_path):
    from seqpipe.cli.data_manifest import manifest

    for name in ("1_george_0", "2_george_1", "5_theo_0"):
        write_wav(tmp_path / f"{name}.wav")
    out = tmp_path / "out" / "train.jsonl"
    result = CliRunner().invoke(manifest, [str(tmp_path), "-o", str(out), "--hold-out", "theo"])
    assert result.exit_code == 0, result.output
    assert [e["text"] for e in read_manifest(out)] == ["one", "two"]
    assert [e["text"] for e in read_manifest(tmp_path / "out" / "train.heldout.jsonl")] == ["five"]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(manifest, [str(empty), "-o", str(out)])
    assert result.exit_code != 0 and "no audio with a transcript" in result.output


def test_sentence_corpus_normalises_and_filters(tmp_path):
    from seqpipe.data.synth import sentence_corpus

    (tmp_path / "prose").write_text(
        "The cat sat on 2 mats. Short. The cat sat on 2 mats.\n%\n"
        "print(x[0]) = {y};\n%\nWhat a lovely day it is!\n"
    )
    assert sentence_corpus([str(tmp_path / "prose")]) == [
        "the cat sat on two mats",
        "what a lovely day it is",
    ]


def test_digit_strings_are_words_from_the_digit_vocabulary():
    from seqpipe.data.synth import digit_strings
    from seqpipe.text import ONES

    strings = digit_strings(50, seed=1, min_len=2, max_len=4)
    assert strings == digit_strings(50, seed=1, min_len=2, max_len=4)  # deterministic
    assert all(2 <= len(s.split()) <= 4 and set(s.split()) <= set(ONES) for s in strings)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_render_writes_wavs_and_manifest_entries(tmp_path):
    from seqpipe.data.synth import Voice, render, tts_jobs

    jobs = tts_jobs(["four one", "seven"], [Voice("espeak-ng", "en-us+m3")], "t", seed=0)
    entries = render(jobs, tmp_path, 8000, workers=1)
    assert [e["text"] for e in entries] == ["four one", "seven"]
    for e in entries:
        info = sf.info(e["audio"])
        assert (
            info.samplerate == 8000
            and 0.2 < info.duration < 3
            and e["speaker"] == "espeak-ng:en-us+m3"
        )


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_render_margin_trims_silence_as_tight_as_asked(tmp_path):
    from seqpipe.data.synth import Voice, render, tts_jobs

    jobs = tts_jobs(["seven"], [Voice("espeak-ng", "en-us+m3")], "t", seed=0)
    loose = render(jobs, tmp_path / "loose", 8000, workers=1)[0]
    tight = render(jobs, tmp_path / "tight", 8000, workers=1, margin_s=0.01)[0]
    assert loose["duration"] - tight["duration"] > 0.05
    samples, _ = sf.read(tight["audio"])
    edge = 160  # 20 ms: the loud part (within 45 dB of the peak) begins and ends this close
    rms = lambda x: np.sqrt((x**2).mean())  # noqa: E731
    loudest = max(rms(samples[i : i + 80]) for i in range(0, len(samples) - 80, 80))
    assert min(rms(samples[:edge]), rms(samples[-edge:])) > loudest * 10 ** (-45 / 20)


def test_extra_festival_voices_speak_but_stay_out_of_the_default_draws(tmp_path):
    from seqpipe.data.synth import available_voices, extra_festival_voices, render, tts_jobs

    extra = extra_festival_voices()
    if not extra:
        pytest.skip("festival's extra voices (festvox-kdlpc16k, festvox-us-slt-hts) are absent")
    # installing them must not change what the existing recipes draw
    assert not set(extra) & set(available_voices())
    jobs = tts_jobs(["seven three one"] * len(extra), extra, "f", seed=0)
    jobs = [{**job, "voice": voice} for job, voice in zip(jobs, extra, strict=True)]
    entries = render(jobs, tmp_path, 16000, workers=1)
    assert [e["speaker"] for e in entries] == [str(v) for v in extra]
    assert all(0.5 < e["duration"] < 4 and e["text"] == "seven three one" for e in entries)


def test_piper_pitch_shifts_formants_and_keeps_the_speaking_rate(monkeypatch):
    """A VITS voice has no pitch control: the audio is declared at a shifted rate (played
    faster or slower on resampling) and the length scale makes up for the tempo. The voice
    and piper's config are stand-ins, so this runs without the piper extra."""
    import sys
    from types import SimpleNamespace

    from seqpipe.data import synth

    seen = []
    monkeypatch.setitem(
        sys.modules, "piper", SimpleNamespace(SynthesisConfig=lambda **kw: SimpleNamespace(**kw))
    )

    def fake_synthesize(text, syn_config):
        seen.append(syn_config.length_scale)
        yield SimpleNamespace(audio_float_array=np.ones(100, np.float32))
        yield SimpleNamespace(audio_float_array=np.zeros(50, np.float32))

    voice = SimpleNamespace(synthesize=fake_synthesize, config=SimpleNamespace(sample_rate=22050))
    monkeypatch.setattr(synth, "_piper_voice", lambda name: voice)
    samples, rate = synth.synthesize("five", synth.Voice("piper", "x"), pitch=1.4, speed=1.25)
    shift = 1.4**0.25
    assert len(samples) == 150 and rate == round(22050 * shift)
    assert seen == [pytest.approx(shift / 1.25)]
    # played at the shifted rate, the 1/shift longer audio comes back to 1/speed
    assert seen[0] * 22050 / rate == pytest.approx(1 / 1.25, rel=1e-3)


def test_piper_voices_speak_digits_but_stay_out_of_the_default_draws(tmp_path):
    from seqpipe.data.synth import available_voices, piper_voices, render, tts_jobs

    voices = piper_voices()
    if not voices:
        pytest.skip("no piper voice installed (the piper extra)")
    assert not set(voices) & set(available_voices())
    entries = render(tts_jobs(["seven three one"], voices, "p", seed=0), tmp_path, 8000, workers=1)
    assert entries[0]["speaker"] == str(voices[0]) and 0.5 < entries[0]["duration"] < 3


def test_splice_rerun_over_existing_files_keeps_each_text_with_its_audio(tmp_path):
    """A rerun skips the wavs it finds; the text of every later file must not shift."""
    from seqpipe.data.synth import splice_fsdd

    rate = 8000
    takes = []
    for i, word in enumerate(["zero", "one", "two", "three"]):
        path = tmp_path / f"{i}_ann_0.wav"
        sf.write(path, np.full(400 * (i + 1), 0.1, np.float32), rate)  # length names the take
        takes.append({"audio": str(path), "text": word, "speaker": "ann"})
    first = splice_fsdd(takes, 6, tmp_path / "out", rate, seed=3)
    (tmp_path / "out" / "splice000002.wav").unlink()  # as if the first run had stopped there
    again = splice_fsdd(takes, 6, tmp_path / "out", rate, seed=3)
    assert again == first
    for entry in again:  # each wav holds the takes its text names, by their lengths
        audio, _ = sf.read(entry["audio"], dtype="float32")
        words = entry["text"].split()
        spoken = np.count_nonzero(audio) // 400
        assert spoken == sum(["zero", "one", "two", "three"].index(w) + 1 for w in words)


def test_sentence_corpus_reads_only_the_named_fortune_files(tmp_path):
    """Other packages install fortune files beside Debian's `fortunes`; the default corpus
    must not change when they do, and a missing source must not be skipped silently."""
    from seqpipe.data import synth

    folder = "/usr/share/games/fortunes/"
    assert all(src.startswith(folder) and src != folder for src in synth.PROSE_SOURCES)
    assert "fortunes" in [src.removeprefix(folder) for src in synth.PROSE_SOURCES]
    with pytest.raises(FileNotFoundError, match="missing"):
        synth.sentence_corpus([str(tmp_path / "missing")])


def test_without_overlap_keeps_held_sentences_out_of_extra_lm_text():
    from seqpipe.data.synth import without_overlap

    held = ["the quick brown fox jumps over the dog", "i love you"]
    extra = [
        "they said the quick brown fox jumps and ran",  # shares a 5-gram
        "and then i love you she said to the tall man",  # contains a short held sentence
        "the quick brown cat sat on the brown fox jumps",  # only 4-grams in common
        "i love your hat and your coat very much",  # 'i love you' is not a whole-word match
    ]
    assert without_overlap(extra, held) == extra[2:]


@pytest.mark.parametrize(
    ("engine", "phonemes"),
    [
        ("espeak-ng", "f'aIv n'aIn 'eIt _: s'Iks t'u: T'3: w'Vn n'aIn"),
        # flite's words as its lexicon addenda spell them (stress digits), one accent for all
        ("flite", "f ay1 v | n ay1 n | ey1 t | s ih1 k s | t uw1 | th er1 | w ah1 n | n ay1 n"),
    ],
)
def test_shift_vowels_moves_each_vowel_one_way_and_leaves_the_rest(engine, phonemes):
    import random

    from seqpipe.data.synth import VOWEL_PATTERNS, VOWEL_SHIFTS, shift_vowels

    vowel = VOWEL_PATTERNS[engine]
    changed = 0
    for seed in range(20):
        out = shift_vowels(phonemes, random.Random(seed), engine)
        assert out == shift_vowels(phonemes, random.Random(seed), engine)  # seeded
        # consonants, stress marks, pauses and word breaks are untouched
        assert vowel.sub("V", out) == vowel.sub("V", phonemes)
        before, after = vowel.findall(phonemes), vowel.findall(out)
        assert len(before) == len(after) == 8
        mapping: dict[str, set[str]] = {}
        for b, a in zip(before, after, strict=True):
            mapping.setdefault(b, set()).add(a)
            assert a == b or a in VOWEL_SHIFTS[engine][b]  # only to a neighbour
        assert all(len(targets) == 1 for targets in mapping.values())  # systematic
        changed += out != phonemes
    assert changed >= 10  # most draws shift something


@pytest.mark.parametrize(("engine", "name"), [("espeak-ng", "en-us+m3"), ("flite", "rms")])
def test_accented_jobs_speak_shifted_phonemes(tmp_path, engine, name):
    from seqpipe.data.synth import Voice, render, synthesize, tts_jobs

    if shutil.which(engine) is None:
        pytest.skip(f"{engine} is not installed")
    voice = Voice(engine, name)
    jobs = tts_jobs(["five nine four", "eight six"], [voice], "a", seed=0, accent=True)
    assert all(isinstance(job["accent"], int) for job in jobs)
    entries = render(jobs, tmp_path, 16000, workers=1)
    assert [e["text"] for e in entries] == ["five nine four", "eight six"]
    plain, _ = synthesize("five nine four", voice)
    accented = [synthesize("five nine four", voice, accent=s)[0] for s in range(10)]
    # respelled vowels keep the words' length (nothing spelled out) but not the sound
    assert all(0.5 < len(a) / len(plain) < 1.6 for a in accented)
    assert any(len(a) != len(plain) or not np.allclose(a, plain) for a in accented)


def test_flite_accent_respells_words_through_lexicon_addenda(tmp_path):
    """flite speaks accented text from the text (its own prosody), each word respelled by
    lexicon addenda in one systematic shift; headwords that look like vowels stay words."""
    import random
    import subprocess

    from seqpipe.data.synth import VOWEL_PATTERNS, _flite_accent_lexicon

    if shutil.which("flite") is None or shutil.which("t2p") is None:
        pytest.skip("flite is not installed")

    def entries(seed: int) -> dict[str, str]:
        lexicon = _flite_accent_lexicon("ah nine five nine eh", random.Random(seed))
        return dict(line.split(" : ") for line in lexicon.splitlines())

    assert entries(3) == entries(3)  # seeded
    draws = [entries(seed) for seed in range(10)]
    for words in draws:
        assert list(words) == ["ah", "nine", "five", "eh"]  # each word once, unshifted
        vowels = [p for p in words["five"].split() if VOWEL_PATTERNS["flite"].match(p)]
        assert vowels and all(p[-1].isdigit() for p in vowels)  # stress kept
        assert words["nine"].split()[::2] == ["n", "n"]  # consonants kept
    nine = next(words["nine"] for words in draws if words["nine"] != "n ay1 n")
    (tmp_path / "a.lex").write_text(f"nine : {nine}\n")
    cmd = ["flite", "-voice", "slt", "-add_lex", str(tmp_path / "a.lex"), "-ps", "-t", "nine"]
    spoken = subprocess.run([*cmd, "-o", "none"], capture_output=True, text=True, check=True)
    assert spoken.stdout.split()[1:-1] == [p.rstrip("012") for p in nine.split()]
