"""``seqpipe generate`` and the decoders behind it, on a tiny untrained bundle (or the bundled one)."""

import shutil
from pathlib import Path

import mido
import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from conftest import run_seqpipe
from seqpipe.cli import build_cli
from seqpipe.decoders.sampling import BeamSearch, Sampler, filter_logits
from seqpipe.errors import SeqpipeError
from seqpipe.music.generator import generate_melodies
from seqpipe.music.request import Request, parse_primer
from seqpipe.pipeline import Pipeline
from seqpipe.theory import scale_pitch_classes

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


TINY = {
    "task": {"name": "melody", "sample_melodies": 0},
    "features": {"name": "melody_events"},
    "model": {"name": "rnn_lm", "embedding_size": 16, "hidden_size": 32, "num_layers": 1},
    "decoder": {"name": "sample"},
}


@pytest.fixture(scope="module")
def pipeline():
    torch.manual_seed(0)
    return Pipeline.from_config(TINY)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, pipeline) -> str:
    bundled = Path(__file__).resolve().parents[1] / "seqpipe/bundled/folk.safetensors"
    if bundled.exists():
        return "folk"
    return str(pipeline.save(tmp_path_factory.mktemp("bundle") / "tiny.safetensors"))


def seconds(bars: int, meter=(4, 4), tempo=120.0) -> float:
    return bars * meter[0] * 4 / meter[1] * 60.0 / tempo


def test_same_seed_gives_identical_valid_monophonic_files(bundle, tmp_path):
    args = ("generate", "-m", bundle, "-n", "3", "--seed", "1", "--bars", "4", "--meter", "4/4",
            "--tempo", "120")  # fmt: skip
    for run in ("a", "b"):
        result = run_seqpipe(*args, "-o", str(tmp_path / run / "x.mid"))
        assert result.returncode == 0, result.stderr
    for i in (1, 2, 3):
        a, b = tmp_path / "a" / f"x-{i}.mid", tmp_path / "b" / f"x-{i}.mid"
        assert a.read_bytes() == b.read_bytes()
        mido.MidiFile(str(a))  # parses as a Standard MIDI file
        pm = pretty_midi.PrettyMIDI(str(a))
        assert len(pm.instruments) == 1
        notes = sorted(pm.instruments[0].notes, key=lambda n: n.start)
        assert notes and all(
            x.end <= y.start + 1e-6 for x, y in zip(notes, notes[1:], strict=False)
        )
        assert pm.get_end_time() == pytest.approx(seconds(4), abs=1e-3)
    assert not (tmp_path / "a" / "x.mid").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--primer", "C4 X9"], "invalid note 'X9'"),
        (["--key", "H"], "unknown key 'H'"),
        (["--bars", "0"], "length must be positive"),
        (["--meter", "six-eight"], "expected a time signature"),
    ],
)
def test_bad_requests_fail_with_one_line(bundle, tmp_path, args, message):
    result = CliRunner().invoke(
        build_cli(), ["generate", "-m", bundle, "-o", str(tmp_path / "y.mid"), *args]
    )
    assert result.exit_code != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "y.mid").exists()


@pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").exists(),
    reason="FluidSynth or the FluidR3 GM soundfont is not installed",
)
def test_render_writes_wav_of_matching_duration_and_plot(bundle, tmp_path):
    import soundfile

    args = ["generate", "-m", bundle, "-o", str(tmp_path / "t.mid"), "--seed", "2", "--bars", "2",
            "--meter", "3/4", "--tempo", "90", "--render", str(tmp_path / "t.wav"),
            "--plot", str(tmp_path / "t.png")]  # fmt: skip
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    length = pretty_midi.PrettyMIDI(str(tmp_path / "t.mid")).get_end_time()
    assert length == pytest.approx(seconds(2, (3, 4), 90.0), abs=1e-3)
    assert soundfile.info(str(tmp_path / "t.wav")).duration == pytest.approx(length + 0.5, abs=0.1)
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_key_meter_scale_and_primer_are_respected(pipeline):
    primer = parse_primer("D4 F#4 r A4", (6, 8))
    melodies = generate_melodies(
        pipeline,
        Request(n=4, bars=3, key="D", time_signature=(6, 8), tempo=100, primer=primer,
                scale=True, seed=3),
    )  # fmt: skip
    scale = scale_pitch_classes("D major")
    for m in melodies:
        assert (m.key, m.time_signature, m.tempo) == ("D major", (6, 8), 100.0)
        assert m.notes[:2] == primer[:2]  # the last primer note may be held longer
        assert (m.notes[2].pitch, m.notes[2].start) == (primer[2].pitch, primer[2].start)
        assert all(n.pitch % 12 in scale for n in m.notes)
        assert m.end == 3 * m.ticks_per_bar


def test_steps_and_beam_search(pipeline):
    (m,) = generate_melodies(pipeline, Request(n=1, steps=20, seed=0))
    assert m.end == 20 * 6
    beams = generate_melodies(
        pipeline, Request(n=2, bars=1, time_signature=(2, 4), seed=0), decoder=BeamSearch(3)
    )
    assert len(beams) == 2 and all(b.end == 48 for b in beams)


def test_the_primer_must_fit(pipeline):
    with pytest.raises(SeqpipeError, match="longer than the requested length"):
        generate_melodies(pipeline, Request(steps=4, primer=parse_primer("C4 D4 E4 F4 G4")))


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.9)).tolist() == [[False, False, False, True]]


def test_sampling_is_incremental_and_seeded(pipeline):
    calls = []
    model = pipeline.model
    original = model.forward
    model.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        a = generate_melodies(pipeline, Request(n=2, bars=2, seed=5), decoder=Sampler(top_k=20))
        b = generate_melodies(pipeline, Request(n=2, bars=2, seed=5), decoder=Sampler(top_k=20))
    finally:
        model.forward = original
    assert not calls  # only step(): no re-running the prefix
    assert [m.notes for m in a] == [m.notes for m in b]


def test_lookback_offers_the_token_written_a_bar_earlier(pipeline):
    from seqpipe.music.rules import MelodyRules

    enc = pipeline.features
    bar = parse_primer("D4 F#4 r A4", (4, 4))  # a 4/4 bar: quarter notes and a rest
    prompt = [1, enc.key_token("D major"), enc.meter_token((4, 4)), enc.tempo_token(120)]
    prompt += enc.encode_notes(bar)
    rules = MelodyRules(enc, bars=4, lookback=(1, 2))
    state = rules.start(2, prompt, "cpu")
    candidates, runs = rules.lookback(state)
    body = prompt[4:]  # note:62 dur:24 note:66 dur:24 shift:24 note:69 dur:24
    assert candidates.tolist() == [[body[0], -1]] * 2  # nothing two bars back yet
    assert runs.tolist() == [[0, 0]] * 2
    state = rules.update(torch.tensor([body[0], body[2]]), state)  # row 0 repeats, row 1 not
    candidates, runs = rules.lookback(state)
    assert candidates[:, 0].tolist() == [body[1], body[1]]  # the first note's duration
    assert runs[:, 0].tolist() == [1, 0]
    state = rules.select(state, torch.tensor([0]))
    assert rules.lookback(state)[1].tolist() == [[1, 0]]


def test_repeat_bias_makes_melodies_repeat_earlier_bars(pipeline):
    """An untrained model wanders; with an overwhelming copy bias every bar repeats the
    primer's bar, and a moderate one repeats more than none."""
    primer = parse_primer("D4 F#4 A4 G4", (4, 4))
    request = Request(n=3, bars=4, time_signature=(4, 4), tempo=120, primer=primer, seed=2)
    copied = generate_melodies(pipeline, request, decoder=Sampler(repeat=200.0))
    for m in copied:
        assert [(n.pitch, n.start % 96, n.duration) for n in m.notes] == [
            (n.pitch, n.start, n.duration) for n in primer
        ] * 4
    free = generate_melodies(pipeline, request, decoder=Sampler())
    assert all(m.end == 4 * 96 for m in free)
    assert all(len(m.notes) != 16 or m.notes[4:8] != m.notes[:4] for m in free)


def test_cli_repeat_flag_reaches_the_sampler(bundle, tmp_path):
    out = tmp_path / "r.mid"
    args = ["generate", "-m", bundle, "-o", str(out), "--seed", "4", "--bars", "3", "--meter",
            "4/4", "--tempo", "120", "--primer", "D4 F#4 A4 G4", "--repeat", "200"]  # fmt: skip
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    notes = sorted(pretty_midi.PrettyMIDI(str(out)).instruments[0].notes, key=lambda n: n.start)
    assert [n.pitch for n in notes] == [62, 66, 69, 67] * 3  # each bar repeats the primer's
