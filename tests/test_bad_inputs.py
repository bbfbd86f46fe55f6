"""The bad-input corpus: hostile but realistic inputs to every command (issue 33).

Each case builds its inputs in a fresh folder and says what must happen. For every case
the runner checks the exit code, that a one-line message names the file and the problem,
that no traceback escapes, that every good file of the batch is written, and that no file
that existed before is changed (bytes and permissions), except those the case names.
docs/reliability.md lists the same cases in a table; keep the two in step.

Most cases run in-process (CliRunner: an escaped exception is ``result.exception``);
plugin loading and real stderr are checked in a few subprocesses at the end.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from transcribe_helpers import SR, tone_bundle, tones

from conftest import make_installed_plugin, run_seqpipe
from seqpipe.cli import build_cli
from seqpipe.pipeline import METADATA_KEY, Pipeline, read_bundle_metadata

BURSTS = [(0.5, 1.0), (1.6, 2.5)]
MELODY = {
    "task": {"name": "melody", "sample_melodies": 0},
    "features": {"name": "melody_events"},
    "model": {"name": "rnn_lm", "embedding_size": 8, "hidden_size": 16, "num_layers": 1},
    "decoder": {"name": "sample"},
}
CLASSIFY = {
    "task": {"name": "classify", "labels": ["low", "mid", "high"], "sample_rate": 8000},
    "features": {"name": "logmel", "sample_rate": 8000, "n_mels": 16},
    "model": {"name": "classifier", "hidden_size": 8, "num_layers": 1, "pooling": "mean"},
}


@dataclass
class Fixtures:
    speech: str  # a deterministic tone "speech" bundle (transcribe_helpers)
    melody: str  # a tiny untrained melody bundle
    classify: str  # a tiny untrained classifier bundle
    tones: dict[str, Path]  # manifests of a small classification data set


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Iterator[Fixtures]:
    from seqpipe.data.tones import write_tone_dataset

    folder = tmp_path_factory.mktemp("fixtures")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: more threads only fight the other tests
    torch.manual_seed(0)
    melody = Pipeline.from_config(MELODY).save(folder / "melody.safetensors")
    classify = Pipeline.from_config(CLASSIFY).save(folder / "classify.safetensors")
    yield Fixtures(
        speech=tone_bundle(folder / "tone.safetensors"),
        melody=str(melody),
        classify=str(classify),
        tones=write_tone_dataset(folder / "tones", {"train": 2, "valid": 1}),
    )
    torch.set_num_threads(threads)


@dataclass
class Expect:
    """What one case runs and what must come of it."""

    args: list[str]
    code: int
    lines: list[tuple[str, ...]] = field(default_factory=list)  # each: words on ONE line
    written: list[Path] = field(default_factory=list)  # good outputs that must exist
    absent: list[Path] = field(default_factory=list)  # outputs that must not appear
    changed: list[Path] = field(default_factory=list)  # existing files it may replace
    stdin: bytes | None = None
    then: Callable | None = None  # extra checks on the result


# -- helpers that make inputs -----------------------------------------------------


def speech(path: Path, data: np.ndarray | None = None, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = tones(BURSTS, 3.0) if data is None else data
    sf.write(str(path), samples, SR, format="WAV", subtype=subtype)
    return path


def wav_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, tones(BURSTS, 3.0), SR, format="WAV")
    return buffer.getvalue()


def raw_bundle(path: Path, source: str, metadata: str) -> str:
    """``source``'s tensors under a metadata string given verbatim."""
    save_file(load_file(source), str(path), metadata={METADATA_KEY: metadata})
    return str(path)


def edited_bundle(path: Path, source: str, edit) -> str:
    meta = read_bundle_metadata(source)
    edit(meta)
    return raw_bundle(path, source, json.dumps(meta))


def fail_with(err: int, where: str):
    """A stand-in for os.replace / tempfile.mkstemp that fails with ``err`` under ``where``."""
    real = {"replace": os.replace, "mkstemp": __import__("tempfile").mkstemp}

    def replace(src, dst, *a, **k):
        if str(dst).startswith(where):
            raise OSError(err, os.strerror(err), str(dst))
        return real["replace"](src, dst, *a, **k)

    def mkstemp(*a, dir=None, **k):
        if str(dir).startswith(where):
            raise OSError(err, os.strerror(err), str(dir))
        return real["mkstemp"](*a, dir=dir, **k)

    return replace, mkstemp


def transcribe(fx, *args) -> list[str]:
    return ["transcribe", "-m", fx.speech, "-q", *map(str, args)]


def generate(fx, *args) -> list[str]:
    return ["generate", "-m", fx.melody, "--seed", "1", "--bars", "2", *map(str, args)]


# -- the cases: transcribe --------------------------------------------------------


def t_input_named_like_an_output(tmp, mp, fx):  # defect 1
    voice = speech(tmp / "voice.txt")
    good = speech(tmp / "good.wav")
    return Expect(
        transcribe(fx, voice, good, "-f", "txt"),
        1,
        [("voice.txt", "would overwrite an input")],
        written=[tmp / "good.txt"],
    )


def t_same_stem_in_two_folders(tmp, mp, fx):  # defect 2
    a, b = speech(tmp / "a" / "x.wav"), speech(tmp / "b" / "x.wav")
    return Expect(
        transcribe(fx, a, b, "-o", tmp / "out"),
        1,
        [(str(b), "also", str(a))],
        written=[tmp / "out" / "x.txt"],
    )


def t_same_stem_two_formats(tmp, mp, fx):  # defect 2
    speech(tmp / "y.wav")
    sf.write(str(tmp / "y.flac"), tones(BURSTS, 3.0), SR)
    return Expect(
        transcribe(fx, tmp / "y.wav", tmp / "y.flac", "-f", "txt"),
        1,
        [("y.flac", "y.txt", "also", "y.wav")],
        written=[tmp / "y.txt"],
    )


def t_srt_and_all_without_the_srt_package(tmp, mp, fx):  # defect 3
    import sys

    mp.setitem(sys.modules, "srt", None)  # as on the README's plain install
    a, b = speech(tmp / "a.wav"), speech(tmp / "b.wav")

    def then(result):
        text = (tmp / "a.srt").read_text()
        assert text.startswith("1\n00:00:00,") and " --> " in text

    return Expect(
        transcribe(fx, a, b, "-f", "all"),
        0,
        [("wrote", "2 file(s)")],
        written=[tmp / f"{n}.{f}" for n in "ab" for f in ("txt", "json", "srt", "vtt")],
        then=then,
    )


def t_output_dir_under_a_file(tmp, mp, fx):  # defect 4
    (tmp / "notes").write_text("a file, not a folder\n")
    return Expect(
        transcribe(fx, speech(tmp / "a.wav"), "-o", tmp / "notes" / "out"),
        1,
        [("notes", "not a directory")],
        absent=[tmp / "a.txt"],
    )


def t_output_dir_read_only(tmp, mp, fx):  # defect 4 (root ignores chmod: simulated)
    replace, mkstemp = fail_with(errno.EROFS, str(tmp / "ro"))
    mp.setattr("tempfile.mkstemp", mkstemp)
    (tmp / "ro").mkdir()
    return Expect(transcribe(fx, speech(tmp / "a.wav"), "-o", tmp / "ro"), 1, [("ro", "Read-only")])


def t_disk_full_keeps_the_old_transcript(tmp, mp, fx):  # defect 4
    a = speech(tmp / "a.wav")
    (tmp / "a.txt").write_text("the old transcript\n")
    replace, mkstemp = fail_with(errno.ENOSPC, str(tmp / "a.txt"))
    mp.setattr("seqpipe.atomic.os.replace", replace)
    return Expect(transcribe(fx, a, "-f", "txt"), 1, [("a.txt", "cannot write", "No space left")])


def t_nan_samples_are_silenced_with_a_warning(tmp, mp, fx):  # defect 5
    data = tones(BURSTS, 3.0)
    data[int(1.2 * SR) : int(1.3 * SR)] = np.nan
    data[int(2.7 * SR)] = np.inf
    nan = speech(tmp / "nan.wav", data, subtype="FLOAT")

    def then(result):
        assert (tmp / "nan.txt").read_text() == "a a\n"  # the speech around it survives

    return Expect(
        transcribe(fx, nan, "-f", "txt"),
        0,
        [("warning", "nan.wav", "non-finite", "1.20 s")],
        written=[tmp / "nan.txt"],
        then=then,
    )


def t_all_nan_file(tmp, mp, fx):  # defect 5: was an internal IndexError
    bad = speech(tmp / "allnan.wav", np.full(SR, np.nan, np.float32), subtype="FLOAT")
    return Expect(
        transcribe(fx, bad, speech(tmp / "good.wav"), "-f", "txt"),
        0,
        [("warning", "allnan.wav", "non-finite", "0.00 s")],
        written=[tmp / "good.txt", tmp / "allnan.txt"],
    )


def t_broken_symlink_in_a_folder(tmp, mp, fx):  # defect 8
    speech(tmp / "in" / "good.wav")
    (tmp / "in" / "gone.wav").symlink_to(tmp / "nowhere.wav")
    return Expect(
        transcribe(fx, tmp / "in", "-f", "txt"),
        1,
        [("gone.wav", "broken symbolic link")],
        written=[tmp / "in" / "good.txt"],
    )


def t_truncated_wav(tmp, mp, fx):  # defect 8
    whole = wav_bytes()
    (tmp / "cut.wav").write_bytes(whole[: len(whole) // 2])
    return Expect(
        transcribe(fx, tmp / "cut.wav", "-f", "txt"),
        0,
        [("warning", "cut.wav", "truncated")],
        written=[tmp / "cut.txt"],
    )


def t_stdin_twice(tmp, mp, fx):  # defect 8
    return Expect(
        transcribe(fx, "-", "-"),
        1,
        [("<stdin>", "more than once")],
        stdin=wav_bytes(),
        then=lambda result: result.stdout.index("a a"),
    )


def t_pipe_like_process_substitution(tmp, mp, fx):  # defect 8: <(cat x.wav) is a pipe
    fifo = tmp / "63"
    os.mkfifo(fifo)
    data = wav_bytes()

    def feed():
        with open(fifo, "wb") as f:
            f.write(data)

    threading.Thread(target=feed, daemon=True).start()

    def then(result):
        assert result.stdout == "a a\n"

    return Expect(transcribe(fx, fifo), 0, then=then)


def t_melody_model_for_transcribe(tmp, mp, fx):  # defect 8: was a KeyError
    return Expect(
        ["transcribe", "-m", fx.melody, str(speech(tmp / "a.wav"))],
        1,
        [("melody.safetensors", "not a speech model")],
    )


def t_stream_with_a_model_that_cannot_stream(tmp, mp, fx):  # issue 36
    return Expect(
        transcribe(fx, "--stream", speech(tmp / "a.wav")),
        1,
        [("tone.safetensors", "cannot stream")],
    )


def t_stream_of_an_empty_stdin(tmp, mp, fx):  # issue 36
    return Expect(
        ["transcribe", "--stream", "-", "-m", "digits"], 1, [("<stdin>", "no audio")], stdin=b""
    )


def t_stream_of_a_cut_wav_header(tmp, mp, fx):  # issue 36
    return Expect(
        ["transcribe", "--stream", "-", "-m", "digits"],
        1,
        [("<stdin>", "cannot read audio")],
        stdin=wav_bytes()[:20],
    )


def t_stream_of_two_sources(tmp, mp, fx):  # issue 36
    a, b = speech(tmp / "a.wav"), speech(tmp / "b.wav")
    return Expect(transcribe(fx, "--stream", a, b), 1, [("--stream", "one source")])


def t_replaced_transcript_keeps_its_mode(tmp, mp, fx):  # defect 8
    a = speech(tmp / "a.wav")
    (tmp / "a.txt").write_text("old\n")
    os.chmod(tmp / "a.txt", 0o600)

    def then(result):
        assert stat.S_IMODE((tmp / "a.txt").stat().st_mode) == 0o600
        assert (tmp / "a.txt").read_text() == "a a\n"

    return Expect(
        transcribe(fx, a, "-f", "txt"),
        0,
        [("replaced 1 existing file", "a.txt")],
        changed=[tmp / "a.txt"],
        then=then,
    )


def t_empty_and_garbage_files(tmp, mp, fx):
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "junk.wav").write_bytes(b"not audio at all" * 10)
    return Expect(
        transcribe(fx, tmp / "empty.wav", tmp / "junk.wav", speech(tmp / "ok.wav"), "-f", "txt"),
        1,
        [("empty.wav", "empty"), ("junk.wav", "cannot read audio")],
        written=[tmp / "ok.txt"],
    )


def t_missing_file_and_empty_folder(tmp, mp, fx):
    (tmp / "nothing").mkdir()
    return Expect(
        transcribe(fx, tmp / "gone.wav", tmp / "nothing", speech(tmp / "ok.wav"), "-f", "txt"),
        1,
        [("gone.wav", "no such file"), ("nothing", "no audio files")],
        written=[tmp / "ok.txt"],
    )


def t_silero_vad_without_its_extra(tmp, mp, fx):
    import sys

    from seqpipe.speech.vad import silero_model

    silero_model.cache_clear()
    mp.setitem(sys.modules, "silero_vad", None)
    return Expect(
        transcribe(fx, speech(tmp / "ok.wav"), "--vad", "silero", "-f", "txt"),
        1,
        [("--vad silero", "silero-vad", "seqpipe[vad]")],
        absent=[tmp / "ok.txt"],
    )


# -- generate ----------------------------------------------------------------------


def g_output_under_a_file(tmp, mp, fx):  # defect 4
    (tmp / "f").write_text("x")
    return Expect(generate(fx, "-o", tmp / "f" / "t.mid"), 1, [("f", "not a directory")])


def g_disk_full(tmp, mp, fx):  # defect 4
    replace, mkstemp = fail_with(errno.ENOSPC, str(tmp / "t.mid"))
    mp.setattr("seqpipe.atomic.os.replace", replace)
    return Expect(generate(fx, "-o", tmp / "t.mid"), 1, [("t.mid", "No space left")])


def g_plot_of_unknown_type(tmp, mp, fx):  # defect 8: was a traceback after the MIDI
    return Expect(
        generate(fx, "-o", tmp / "t.mid", "--plot", tmp / "t.xyz"),
        1,
        [("t.xyz", "cannot draw a plot of this type")],
        absent=[tmp / "t.mid"],
    )


def g_too_many_bars(tmp, mp, fx):  # defect 8
    args = ["generate", "-m", fx.melody, "-o", str(tmp / "t.mid"), "--bars", "100000"]
    return Expect(args, 1, [("--bars 100000", "at most")], absent=[tmp / "t.mid"])


def g_midi_primer_longer_than_the_bars(tmp, mp, fx):  # defect 8: overran without --meter
    from seqpipe.midi import Melody, Note, write_midi

    notes = [Note(60 + i % 5, i * 24, 24) for i in range(40)]  # 40 quarter notes
    write_midi(Melody(notes), tmp / "primer.mid")
    return Expect(
        generate(fx, "-o", tmp / "t.mid", "--primer", tmp / "primer.mid"),
        1,
        [("--primer", "longer than the requested length", "2 bar")],
        absent=[tmp / "t.mid"],
    )


def g_render_to_an_unknown_type(tmp, mp, fx):  # defect 8: wrote WAV data as .xyz
    return Expect(
        generate(fx, "-o", tmp / "t.mid", "--render", tmp / "t.xyz"),
        1,
        [("t.xyz", "cannot write audio of this type")],
        absent=[tmp / "t.mid"],
    )


def g_missing_recording_primer(tmp, mp, fx):
    return Expect(
        generate(fx, "-o", tmp / "t.mid", "--primer", tmp / "hum.wav"),
        1,
        [("--primer", "hum.wav", "no such file")],
        absent=[tmp / "t.mid"],
    )


# -- notes (melody transcription, the bundled `melody` model) ----------------------


def n_bad_and_missing_recordings(tmp, mp, fx):
    (tmp / "bad.wav").write_text("not audio")
    good = speech(tmp / "good.wav")
    args = ["notes", str(tmp / "bad.wav"), str(tmp / "gone.wav"), str(good), "-o", str(tmp / "out")]
    return Expect(
        args,
        1,
        [("bad.wav", "cannot read audio"), ("gone.wav", "no such file"), ("2 of 3", "failed")],
        written=[tmp / "out" / "good.mid"],
    )


def n_one_midi_file_for_two_inputs(tmp, mp, fx):
    a, b = speech(tmp / "a.wav"), speech(tmp / "b.wav")
    return Expect(
        ["notes", str(a), str(b), "-o", str(tmp / "x.mid")],
        1,
        [("x.mid", "one MIDI file for 2 inputs")],
        absent=[tmp / "x.mid"],
    )


def n_plot_of_unknown_type(tmp, mp, fx):
    a = speech(tmp / "a.wav")
    return Expect(
        ["notes", str(a), "-o", str(tmp / "x.mid"), "--plot", str(tmp / "x.xyz")],
        1,
        [("x.xyz", "cannot draw a plot of this type")],
        absent=[tmp / "x.mid"],
    )


def n_speech_model(tmp, mp, fx):
    a = speech(tmp / "a.wav")
    return Expect(
        ["notes", str(a), "-m", fx.speech, "-o", str(tmp / "x.mid")],
        1,
        [("not a melody transcription model", "'speech'")],
        absent=[tmp / "x.mid"],
    )


def needs_fluidsynth() -> None:
    import shutil

    from seqpipe.music.render import DEFAULT_SOUNDFONT

    if shutil.which("fluidsynth") is None or not Path(DEFAULT_SOUNDFONT).is_file():
        pytest.skip("FluidSynth or its GM soundfont is not installed")


def g_render_flac_is_flac(tmp, mp, fx):  # defect 8: --render x.mp3 held WAV data
    needs_fluidsynth()

    def then(result):
        assert sf.info(str(tmp / "t.flac")).format == "FLAC"

    return Expect(
        generate(fx, "-o", tmp / "t.mid", "--render", tmp / "t.flac"),
        0,
        written=[tmp / "t.mid", tmp / "t.flac"],
        then=then,
    )


def g_junk_soundfont(tmp, mp, fx):  # defect 8: was ignored
    needs_fluidsynth()
    (tmp / "junk.sf2").write_bytes(b"RIFF\0\0\0\0WAVEjunk")
    args = generate(fx, "-o", tmp / "t.mid", "--render", tmp / "t.wav", "--soundfont")
    return Expect(
        [*args, str(tmp / "junk.sf2")], 1, [("junk.sf2", "not a SoundFont")], absent=[tmp / "t.mid"]
    )


def g_replaced_midi_keeps_its_mode(tmp, mp, fx):  # defect 8
    (tmp / "t.mid").write_bytes(b"old")
    os.chmod(tmp / "t.mid", 0o640)

    def then(result):
        assert stat.S_IMODE((tmp / "t.mid").stat().st_mode) == 0o640

    return Expect(
        generate(fx, "-o", tmp / "t.mid"),
        0,
        changed=[tmp / "t.mid"],
        then=lambda r: (then(r), r.stdout.index("replaced the existing file")),
    )


def g_speech_model_for_generate(tmp, mp, fx):
    return Expect(
        ["generate", "-m", fx.speech, "-o", str(tmp / "t.mid")],
        1,
        [("tone.safetensors", "not a melody model")],
    )


def g_corrupt_primer(tmp, mp, fx):
    (tmp / "p.mid").write_bytes(b"MThd garbage")
    return Expect(
        generate(fx, "-o", tmp / "t.mid", "--primer", tmp / "p.mid"),
        1,
        [("p.mid", "cannot read MIDI")],
    )


def g_truncated_primer(tmp, mp, fx):
    (tmp / "p.mid").write_bytes(b"hi\n")
    return Expect(
        generate(fx, "-o", tmp / "t.mid", "--primer", tmp / "p.mid"),
        1,
        [("p.mid", "cannot read MIDI (EOFError: the file ends early)")],
        absent=[tmp / "t.mid"],
    )


# -- train, evaluate, lm -------------------------------------------------------------


def tiny_recipe(tmp: Path, fx) -> Path:
    recipe = tmp / "tiny.yaml"
    recipe.write_text(
        json.dumps(
            {
                **CLASSIFY,
                "data": {"train": str(fx.tones["train"]), "valid": str(fx.tones["valid"])},
                "train": {"epochs": 1, "batch_size": 2},
            }
        )
    )
    return recipe


def r_out_under_a_file(tmp, mp, fx):  # defect 4: was a traceback after training
    (tmp / "f").write_text("x")
    return Expect(
        ["train", str(tiny_recipe(tmp, fx)), "--out", str(tmp / "f" / "run")],
        1,
        [("f", "not a directory")],
    )


def r_resume_without_checkpoint(tmp, mp, fx):  # defect 8: was silent
    return Expect(
        ["train", str(tiny_recipe(tmp, fx)), "--out", str(tmp / "run"), "--resume"],
        0,
        [("--resume", "no checkpoint", "run", "from scratch")],
        written=[tmp / "run" / "model.safetensors"],
    )


def r_missing_recipe(tmp, mp, fx):
    return Expect(
        ["train", str(tmp / "nope.yaml")],
        1,
        [("nope.yaml", "no such recipe file or shipped recipe")],
    )


def e_nan_metric_is_valid_json(tmp, mp, fx):  # defect 8
    mp.setattr(
        "seqpipe.training.evaluation.evaluate", lambda *a, **k: {"loss": math.nan, "accuracy": 0.5}
    )

    def then(result):
        row = json.loads(result.stdout)  # strict parsers reject NaN
        assert row["loss"] is None and row["accuracy"] == 0.5
        assert "NaN" not in result.stdout

    return Expect(["evaluate", fx.classify, str(fx.tones["valid"]), "--json"], 0, then=then)


def e_one_unreadable_data_set(tmp, mp, fx):
    return Expect(
        ["evaluate", fx.classify, str(tmp / "gone.jsonl"), str(fx.tones["valid"]), "--json"],
        1,
        [("gone.jsonl", "cannot read")],
        then=lambda result: json.loads(result.stdout),
    )


def l_lm_build_without_kaldingram(tmp, mp, fx):  # defect 8
    import sys

    mp.setitem(sys.modules, "kaldingram.train", None)
    (tmp / "corpus.txt").write_text("one two three\n")
    return Expect(
        ["lm", "build", str(tmp / "corpus.txt"), "-o", str(tmp / "lm.arpa")],
        1,
        [("kaldingram", "not installed", "seqpipe[lm]")],
        absent=[tmp / "lm.arpa"],
    )


def l_lm_merge_with_a_broken_arpa(tmp, mp, fx):
    (tmp / "corpus.txt").write_text("one two three\n")
    (tmp / "base.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nminus\tone\n")
    return Expect(
        ["lm", "build", str(tmp / "corpus.txt"), "-o", str(tmp / "lm.arpa"), "--merge",
         str(tmp / "base.arpa")],
        1,
        [("base.arpa:5", "not a number")],
        absent=[tmp / "lm.arpa"],
    )  # fmt: skip


# -- bundles (through transcribe -m, which loads them) ----------------------------


def bundle_case(name: str, make, *words: str):
    def case(tmp, mp, fx):
        bad = make(tmp / name, fx)
        good = speech(tmp / "a.wav")
        return Expect(
            ["transcribe", "-m", bad, str(good), "-f", "txt"],
            1,
            [(name, *words)],
            absent=[tmp / "a.txt"],
        )

    case.__name__ = f"b_{name.split('.')[0]}"
    return case


def with_model(**options):
    return lambda meta: meta["config"]["model"].update(options)


def unknown_component_section(meta):
    meta["components"]["evil\x1b[31m"] = {"name": "x"}


def package_with_shell_text(meta):
    meta["config"]["model"]["name"] = "fancy_rnn"
    meta["components"]["model"] = {
        "name": "fancy_rnn",
        "package": "x; rm -rf ~ \x1b[2J",
    }


def decoder_side_file(value: str):
    def edit(meta):
        meta["config"]["decoder"] = {"name": "ctc_beam", "lexicon": value}

    return edit


BUNDLE_CASES = [
    bundle_case(
        "notjson.safetensors", lambda p, fx: raw_bundle(p, fx.speech, "{nope"), "not valid JSON"
    ),
    bundle_case("list.safetensors", lambda p, fx: raw_bundle(p, fx.speech, "[1, 2]"), "JSON list"),
    bundle_case(
        "noconfig.safetensors",
        lambda p, fx: edited_bundle(p, fx.speech, lambda m: m.pop("config")),
        "bad bundle header",
        "config",
    ),
    bundle_case(
        "section.safetensors",
        lambda p, fx: edited_bundle(p, fx.speech, unknown_component_section),
        "bad bundle header",
        "components",
    ),
    bundle_case(
        "extra.safetensors",
        lambda p, fx: edited_bundle(p, fx.speech, lambda m: m["config"].update(evil=1)),
        "config.evil",
        "unknown section",
    ),
    bundle_case(
        "huge.safetensors",
        lambda p, fx: edited_bundle(
            p, fx.melody, with_model(hidden_size=10**7, embedding_size=10**7)
        ),
        "weights do not match",
        "stored",
    ),
    bundle_case(
        "package.safetensors",
        lambda p, fx: edited_bundle(p, fx.speech, package_with_shell_text),
        "unknown model 'fancy_rnn'",
    ),
    bundle_case(
        "abspath.safetensors",
        lambda p, fx: edited_bundle(p, fx.speech, decoder_side_file("/etc/passwd")),
        "decoder.lexicon",
        "bundle's folder",
    ),
    bundle_case(
        "dotdot.safetensors",
        lambda p, fx: edited_bundle(p, fx.speech, decoder_side_file("../../x.lexicon")),
        "decoder.lexicon",
        "bundle's folder",
    ),
    bundle_case(
        "corrupt.safetensors",
        lambda p, fx: (p.write_bytes(b"\x10\0\0\0\0\0\0\0{garbage"), str(p))[1],
        "not a valid seqpipe bundle",
    ),
]

CASES = [
    t_input_named_like_an_output,
    t_same_stem_in_two_folders,
    t_same_stem_two_formats,
    t_srt_and_all_without_the_srt_package,
    t_output_dir_under_a_file,
    t_output_dir_read_only,
    t_disk_full_keeps_the_old_transcript,
    t_nan_samples_are_silenced_with_a_warning,
    t_all_nan_file,
    t_broken_symlink_in_a_folder,
    t_truncated_wav,
    t_stdin_twice,
    t_pipe_like_process_substitution,
    t_melody_model_for_transcribe,
    t_stream_with_a_model_that_cannot_stream,
    t_stream_of_an_empty_stdin,
    t_stream_of_a_cut_wav_header,
    t_stream_of_two_sources,
    t_replaced_transcript_keeps_its_mode,
    t_empty_and_garbage_files,
    t_missing_file_and_empty_folder,
    t_silero_vad_without_its_extra,
    g_output_under_a_file,
    g_disk_full,
    g_plot_of_unknown_type,
    g_too_many_bars,
    g_midi_primer_longer_than_the_bars,
    g_missing_recording_primer,
    n_bad_and_missing_recordings,
    n_one_midi_file_for_two_inputs,
    n_plot_of_unknown_type,
    n_speech_model,
    g_render_to_an_unknown_type,
    g_render_flac_is_flac,
    g_junk_soundfont,
    g_replaced_midi_keeps_its_mode,
    g_speech_model_for_generate,
    g_corrupt_primer,
    g_truncated_primer,
    r_out_under_a_file,
    r_resume_without_checkpoint,
    r_missing_recipe,
    e_nan_metric_is_valid_json,
    e_one_unreadable_data_set,
    l_lm_build_without_kaldingram,
    l_lm_merge_with_a_broken_arpa,
    *BUNDLE_CASES,
]


def snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {
        p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and not stat.S_ISFIFO(p.stat().st_mode)
    }


@pytest.mark.timeout(60)  # a pipe read twice would block for ever
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_bad_input(case, fx, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expect = case(tmp_path, monkeypatch, fx)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(build_cli(), expect.args, input=expect.stdin)
    out = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    # no traceback: nothing escaped the command but the exit
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{out}"
    )
    assert "Traceback" not in result.output
    assert result.exit_code == expect.code, out
    lines = result.stderr.splitlines()
    for words in expect.lines:  # each message is one line naming the file and the problem
        assert any(all(w in line for w in words) for line in lines), f"{words}\n{out}"
    if expect.code:
        failures = [line for line in lines if "rror" in line]
        assert failures and all(line.strip() for line in failures), out
    for path in expect.written:
        assert path.is_file() and path.stat().st_size, f"{path} not written\n{out}"
    for path in expect.absent:
        assert not path.exists(), f"{path} written\n{out}"
    after = snapshot(tmp_path)
    for path, (data, mode) in before.items():
        if path not in expect.changed:
            assert after.get(path) == (data, mode), f"{path} changed\n{out}"
    assert "\x1b" not in result.output  # nothing from a file drives the terminal
    assert not list(tmp_path.rglob(".*.tmp")), "a temp file was left behind"
    if expect.then is not None:
        expect.then(result)


def test_huge_bundle_fails_fast_without_allocating(fx, tmp_path):
    """hidden_size 10^7 would ask for petabytes: refused from the file's own shapes."""
    import time

    from seqpipe.errors import SeqpipeError

    bad = edited_bundle(tmp_path / "huge.safetensors", fx.melody, with_model(hidden_size=10**7))
    start = time.perf_counter()
    with pytest.raises(SeqpipeError, match=r"weights do not match.*values asked for"):
        Pipeline.load(bad)
    assert time.perf_counter() - start < 5


def test_pip_hint_only_for_valid_package_names(fx, tmp_path):
    from seqpipe.errors import SeqpipeError
    from seqpipe.pipeline import pip_name

    assert pip_name("seqpipe-fancy") == "seqpipe-fancy"
    for bad in ("x; rm -rf ~", "a b", "pkg[extra]", "pkg>=1", "\x1b[2J", "", None, 3):
        assert pip_name(bad) is None
    path = edited_bundle(tmp_path / "p.safetensors", fx.speech, package_with_shell_text)
    with pytest.raises(SeqpipeError) as info:
        Pipeline.load(path)
    assert "pip install" not in str(info.value) and "rm -rf" not in str(info.value)


def test_a_bundle_reads_side_files_beside_itself(fx, tmp_path):
    """A lexicon named by a bare file name is found in the bundle's folder, and the loaded
    config keeps the bundle's own name for it (not this machine's path)."""
    (tmp_path / "words.lexicon").write_text("a\ta |\n")
    path = edited_bundle(
        tmp_path / "lex.safetensors", fx.speech, decoder_side_file("words.lexicon")
    )
    pipeline = Pipeline.load(path)
    assert pipeline.decoder.lexicon_path == tmp_path / "words.lexicon"
    assert pipeline.config["decoder"]["lexicon"] == "words.lexicon"


# -- plugins and real stderr: subprocesses ------------------------------------------

EXITING = "raise SystemExit(3)\n"
INTERRUPTING = "raise KeyboardInterrupt\n"
ODD_BASE = "class Odd(BaseException):\n    pass\nraise Odd('odd')\n"
HIJACK = """
import click
import seqpipe


@seqpipe.hookimpl
def register_commands(cli):
    @cli.command("transcribe")
    def hijacked():
        print("hijacked")
"""


def test_plugins_that_raise_base_exceptions_are_isolated(plugin_site):  # defect 7
    for dist, module, code in (
        ("seqpipe-exits", "seqpipe_exits", EXITING),
        ("seqpipe-interrupts", "seqpipe_interrupts", INTERRUPTING),
        ("seqpipe-odd", "seqpipe_odd", ODD_BASE),
    ):
        make_installed_plugin(plugin_site, dist, module, code)
    result = run_seqpipe("--help", site=plugin_site)
    assert result.returncode == 0, result.stderr
    assert "transcribe" in result.stdout
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 3 and "Traceback" not in result.stderr
    for name, what in (("seqpipe_exits", "SystemExit"), ("seqpipe_interrupts", "Keyboard"),
                       ("seqpipe_odd", "Odd: odd")):  # fmt: skip
        assert any(name in w and what in w for w in warnings), result.stderr


def test_plugin_cannot_replace_a_builtin_command_and_unknown_allow_list_names_warn(
    plugin_site, tmp_path
):  # defect 7
    make_installed_plugin(plugin_site, "seqpipe-hijack", "seqpipe_hijack", HIJACK)
    result = run_seqpipe("transcribe", "--help", site=plugin_site)
    assert result.returncode == 0
    assert "Transcribe audio PATHS" in result.stdout and "hijacked" not in result.stdout
    assert "seqpipe_hijack" in result.stderr and "built-in command 'transcribe'" in result.stderr
    result = run_seqpipe(
        "plugins", site=plugin_site, env={"SEQPIPE_PLUGINS": "seqpipe_hijack,seqpipe-typo"}
    )
    assert result.returncode == 0
    assert "SEQPIPE_PLUGINS names 'seqpipe-typo', which is not an installed plugin" in (
        result.stderr
    )


def test_real_stderr_has_no_traceback(tmp_path):
    """One subprocess, several bad inputs at once: what a user's terminal shows."""
    speech(tmp_path / "voice.txt")
    speech(tmp_path / "in" / "good.wav")
    (tmp_path / "in" / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    (tmp_path / "in" / "junk.wav").write_bytes(b"junk" * 100)
    result = run_seqpipe(
        "transcribe", "-m", "digits", str(tmp_path / "voice.txt"), str(tmp_path / "in"), "-f",
        "txt", "--threads", "1", env={"SEQPIPE_PLUGINS": ""}, cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 3, result.stderr  # voice.txt, gone.wav, junk.wav
    assert (tmp_path / "in" / "good.txt").is_file()


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30
