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


def _librispeech(root, speakers):
    """A LibriSpeech-layout subset: speakers {id: (sex, [texts])}, SPEAKERS.TXT one level up."""
    subset = root / "train-clean-5"
    table = ["; ID | SEX | SUBSET | MINUTES | NAME"]
    for speaker, (sex, texts) in speakers.items():
        chapter = subset / speaker / "100"
        chapter.mkdir(parents=True)
        lines = []
        for n, text in enumerate(texts):
            utterance = f"{speaker}-100-{n:04d}"
            sf.write(str(chapter / f"{utterance}.flac"), np.zeros(1600, np.float32), 16000)
            lines.append(f"{utterance} {text}")
        (chapter / f"{speaker}-100.trans.txt").write_text("\n".join(lines) + "\n")
        table.append(f"{speaker:<4} | {sex} | train-clean-5 | 25.0 | Reader {speaker}")
    (root / "SPEAKERS.TXT").write_text("\n".join(table) + "\n")
    return subset


def test_librispeech_reader_gives_normalised_text_speakers_and_sexes(tmp_path):
    from seqpipe.data.corpora import read_librispeech

    subset = _librispeech(tmp_path, {"19": ("F", ["HE'S GONE 2 DAYS"]), "32": ("M", ["YES"])})
    entries = read_librispeech(subset)
    assert [(e["text"], e["speaker"], e["gender"]) for e in entries] == [
        ("he's gone two days", "19", "f"),
        ("yes", "32", "m"),
    ]
    assert entries[0]["duration"] == 0.1 and entries[0]["audio"].endswith("19-100-0000.flac")
    listing = subset / "32" / "100" / "32-100.trans.txt"
    listing.write_text("32-100-0000 YES\nGARBLED\n")
    with pytest.raises(SeqpipeError, match=r"32-100.trans.txt:2: expected"):
        read_librispeech(subset)
    listing.write_text("32-100-0009 YES\n")
    with pytest.raises(SeqpipeError, match=r"32-100.trans.txt:1: no audio file .*32-100-0009.flac"):
        read_librispeech(subset)


def test_sphinx_reader_pairs_fileids_strips_markup_and_reads_sphere(tmp_path):
    from seqpipe.data.corpora import read_sphinx

    etc, wav = tmp_path / "etc", tmp_path / "wav" / "an4_clstk"
    etc.mkdir()
    ids = ["an4_clstk/fash/an251-fash-b", "an4_clstk/mgah/cen1-mgah-b"]
    for fileid, fmt in zip(ids, ("NIST", "WAV"), strict=True):
        path = tmp_path / "wav" / f"{fileid}.{'sph' if fmt == 'NIST' else 'wav'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.zeros(3200, np.float32), 16000, format=fmt, subtype="PCM_16")
    (etc / "an4_train.fileids").write_text("\n".join(ids) + "\n")
    transcription = etc / "an4_train.transcription"
    transcription.write_text(
        "<s> U M N Y H SIX </s> (an251-fash-b)\n<s> ++NOISE++ YES </s> (cen1-mgah-b)\n"
    )
    entries = read_sphinx(transcription)
    assert [(e["text"], e["speaker"], e["gender"], e["duration"]) for e in entries] == [
        ("u m n y h six", "fash", "f", 0.2),
        ("yes", "mgah", "m", 0.2),
    ]
    assert wav.exists() and entries[0]["audio"].endswith(".sph")
    transcription.write_text("<s> U M N Y H SIX </s> (an251-fash-b)\n<s> YES </s>\n")
    with pytest.raises(SeqpipeError, match=r"an4_train.transcription:2: expected '<s> TEXT"):
        read_sphinx(transcription)
    transcription.write_text("<s> YES </s> (cen1-mgah-b)\n<s> NO </s> (an251-fash-b)\n")
    with pytest.raises(SeqpipeError, match=r"transcription:1: utterance 'cen1-mgah-b' but"):
        read_sphinx(transcription)
    transcription.write_text("<s> YES </s> (an251-fash-b)\n")
    with pytest.raises(SeqpipeError, match=r"1 transcripts but .*fileids lists 2"):
        read_sphinx(transcription)


def test_ljspeech_and_commonvoice_readers(tmp_path):
    from seqpipe.data.corpora import read_commonvoice, read_ljspeech

    (tmp_path / "wavs").mkdir()
    write_wav(tmp_path / "wavs" / "LJ001-0001.wav")
    metadata = tmp_path / "metadata.csv"
    metadata.write_text("LJ001-0001|Printing, in 1 sense.|Printing, in one sense.\n")
    (entry,) = read_ljspeech(tmp_path)
    assert (entry["text"], entry["speaker"]) == ("printing in one sense", "LJ")
    metadata.write_text("LJ001-0001|Printing, in one sense.|\n")
    with pytest.raises(SeqpipeError, match=r"metadata.csv:1: expected 'id\|text"):
        read_ljspeech(tmp_path)

    (tmp_path / "clips").mkdir()
    write_wav(tmp_path / "clips" / "a.wav")
    write_wav(tmp_path / "clips" / "b.wav")
    tsv = tmp_path / "train.tsv"
    tsv.write_text(
        "client_id\tpath\tsentence\tgender\n"
        'c1\ta.wav\t"Hello," she said.\tfemale_feminine\n'
        "c2\tb.wav\tIt is 5 o'clock.\t\n"
    )
    entries = read_commonvoice(tsv)
    assert [(e["text"], e["speaker"], e.get("gender")) for e in entries] == [
        ("hello she said", "c1", "f"),
        ("it is five o'clock", "c2", None),
    ]
    tsv.write_text("client_id\tpath\tsentence\nc1\ta.wav\n")
    with pytest.raises(SeqpipeError, match=r"train.tsv:2: 2 fields, the header has 3"):
        read_commonvoice(tsv)
    tsv.write_text("path\tsentence\n")
    with pytest.raises(SeqpipeError, match=r"train.tsv:1: expected a header"):
        read_commonvoice(tsv)


def test_choose_speakers_takes_turns_between_sexes_and_is_seeded():
    from seqpipe.data.manifest import choose_speakers

    entries = [{"audio": f"{s}.wav", "speaker": s, "gender": "f"} for s in "abcdefgh"]
    entries += [{"audio": f"{s}.wav", "speaker": s, "gender": "m"} for s in "mn"]
    for seed in range(5):
        chosen = choose_speakers(entries, 4, seed)
        assert len(chosen) == 4 and {"m", "n"} <= set(chosen)
    draws = {tuple(choose_speakers(entries, 4, seed)) for seed in range(10)}
    assert len(draws) > 1 and choose_speakers(entries, 4, 3) == choose_speakers(entries, 4, 3)
    with pytest.raises(SeqpipeError, match="cannot hold out 10 speakers of 10"):
        choose_speakers(entries, 10)


def test_data_import_command_holds_out_whole_speakers(tmp_path):
    from seqpipe.cli import build_cli

    texts = ["ONE", "TWO", "THREE"]
    subset = _librispeech(
        tmp_path, {s: (sex, texts) for s, sex in zip("1 2 3 4 5 6".split(), "FFFMMM", strict=True)}
    )
    out = tmp_path / "lists" / "train.jsonl"
    dev = tmp_path / "lists" / "dev.jsonl"
    args = [
        "data",
        "import",
        "librispeech",
        str(subset),
        "-o",
        str(out),
        "--held-out-output",
        str(dev),
    ]
    result = CliRunner().invoke(build_cli(), [*args, "--hold-out-speakers", "2", "--hold-out", "1"])
    assert result.exit_code == 0, result.output
    train, held = read_manifest(out), read_manifest(dev)
    assert len(train) == 9 and len(held) == 9
    held_speakers = {e["speaker"] for e in held}
    assert "1" in held_speakers and not held_speakers & {e["speaker"] for e in train}
    assert {e["gender"] for e in held if e["speaker"] != "1"} == {"f", "m"}
    assert f"{dev}: 9 utterances" in result.output

    result = CliRunner().invoke(build_cli(), [*args, "--hold-out", "nobody"])
    assert result.exit_code != 0 and "no utterances by speaker(s) nobody" in result.output


def test_speechcommands_reader_takes_the_word_from_the_folder(tmp_path):
    from seqpipe.data.corpora import read_speechcommands

    for name in ("yes/0a7c2a8d_nohash_0.wav", "_unknown_/bed_0c540988_nohash_1.wav.wav"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_wav(tmp_path / name)
    (tmp_path / "_silence_").mkdir()
    write_wav(tmp_path / "_silence_" / "noise_0.wav")
    entries = read_speechcommands(tmp_path)
    assert [(e["text"], e["speaker"]) for e in entries] == [
        ("bed", "sc-0c540988"),
        ("yes", "sc-0a7c2a8d"),
    ]
    write_wav(tmp_path / "yes" / "take1.wav")
    with pytest.raises(SeqpipeError, match=r"take1.wav: expected a name like <speaker>_nohash_<n>"):
        read_speechcommands(tmp_path)


def test_kaldi_reader_joins_text_wav_scp_speakers_and_sexes(tmp_path):
    from seqpipe.data.corpora import read_kaldi

    data = tmp_path / "train"
    data.mkdir()
    (tmp_path / "WAVE").mkdir()
    write_wav(tmp_path / "WAVE" / "a1.wav")  # relative to the directory above
    write_wav(data / "b1.wav")  # relative to the data directory itself
    (data / "text").write_text("a1\tWE CALL IT BEAR\nb1 ZERO 3\n")
    (data / "wav.scp").write_text("a1\tWAVE/a1.wav\nb1 b1.wav\n")
    (data / "utt2spk").write_text("a1 0001\nb1 0002\n")
    (data / "spk2gender").write_text("0001\tm\n0002 F\n")
    entries = read_kaldi(data)
    assert [(e["text"], e["speaker"], e["gender"]) for e in entries] == [
        ("we call it bear", "0001", "m"),
        ("zero three", "0002", "f"),
    ]
    assert entries[0]["audio"].endswith("WAVE/a1.wav") and entries[0]["duration"] == 0.3
    (data / "utt2spk").unlink()
    assert {e["speaker"] for e in read_kaldi(data)} == {"a1", "b1"}  # Kaldi's default

    broken = [  # (file, its new contents, the error), each on top of the ones before
        ("wav.scp", "a1 sox WAVE/a1.wav -t wav - |\nb1 b1.wav\n", r"wav.scp:1: a command, not an audio file"),
        ("wav.scp", "a1 WAVE/a1.wav\nb1 missing.wav\n", r"wav.scp:2: no audio file missing.wav"),
        ("wav.scp", "a1 WAVE/a1.wav\n", r"text:2: 'b1' is not in wav.scp"),
        ("text", "a1\n", r"text:1: expected '<key> <value>'"),
    ]  # fmt: skip
    for name, contents, error in broken:
        (data / name).write_text(contents)
        with pytest.raises(SeqpipeError, match=error):
            read_kaldi(data)
