"""Audio -> notes: the note tracker, its decoder and task, the rendered training data, and
the commands (``seqpipe notes``, ``transcribe --to midi``, ``generate --primer song.wav``,
``evaluate melody``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from seqpipe.cli import build_cli
from seqpipe.decoders.notes import NotePeaks
from seqpipe.models.note_tracker import HarmonicStack, NoteTracker
from seqpipe.music.melody_transcriber import notes_to_melody
from seqpipe.tasks.notes import NotesTask, score_notes

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "folk_clarinet.wav"  # O'Neill's #84 (test split), clarinet
FLUIDSYNTH = shutil.which("fluidsynth") and Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").exists()


def reference_notes() -> np.ndarray:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(EXAMPLE.with_suffix(".mid")))
    return np.array([(n.start, n.end, n.pitch) for n in pm.instruments[0].notes])


# -- components ------------------------------------------------------------------------


def test_harmonic_stack_puts_each_harmonic_on_the_fundamentals_bin():
    x = torch.zeros(1, 1, 72)
    x[0, 0, 10] = 1.0  # fundamental at bin 10, 12 bins an octave (1 bin a semitone)
    x[0, 0, 22] = 2.0  # 2nd harmonic, an octave up
    x[0, 0, 29] = 3.0  # 3rd harmonic, 19 semitones up
    y = HarmonicStack(1, (0.5, 1, 2, 3))(x)  # [1, H, 1, 72]
    assert y.shape == (1, 4, 1, 72)
    assert y[0, :, 0, 10].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert y[0, 0, 0, 22] == 1.0  # the sub-octave channel: bin 22 sees bin 10


def test_note_tracker_shapes_and_padding_do_not_leak():
    torch.manual_seed(0)
    model = NoteTracker(input_size=90, output_size=2 + 24, bins_per_semitone=3, pitch_offset=1,
                        channels=4, hidden_size=8, num_layers=1).eval()  # fmt: skip
    x = torch.rand(2, 40, 90) - 1
    y, lengths = model(x, torch.tensor([40, 25]))
    assert y.shape == (2, 40, 26) and lengths.tolist() == [40, 25]
    alone, _ = model(x[1:, :25], torch.tensor([25]))
    assert torch.allclose(alone[0], y[1, :25], atol=1e-5)  # padding is masked everywhere
    with pytest.raises(ValueError, match="do not fit"):
        NoteTracker(input_size=30, output_size=2 + 24, bins_per_semitone=3)


def posteriors(T=100, P=12):
    onset, voiced = np.zeros(T), np.zeros(T)
    logp = np.full((T, P), np.log(0.01))
    for start, end, pitch in ((10, 30, 4), (30, 50, 7), (60, 62, 2), (70, 90, 5)):
        onset[start] = 0.9
        voiced[start:end] = 0.95
        logp[start + 2 : end, pitch] = np.log(0.9)
        logp[start : start + 2, pitch - 1] = np.log(0.9)  # a scoop from below
    onset[70] = 0.1  # the last note has no onset peak: its voicing starts it
    return onset, voiced, logp


def test_note_peaks_onsets_voicing_and_pitch_vote():
    onset, voiced, logp = posteriors()
    notes = NotePeaks(onset_threshold=0.5, min_note_seconds=0.05).decode(
        onset, voiced, logp, 0.01, 60
    )
    assert np.allclose(notes, [[0.1, 0.3, 64], [0.3, 0.5, 67], [0.7, 0.9, 65]])  # 60-62: too short
    notes = NotePeaks(onset_threshold=0.5, voiced_onsets=False).decode(
        onset, voiced, logp, 0.01, 60
    )
    assert len(notes) == 2


def test_pitch_refinement_moves_a_sharp_note_to_the_nearest_semitone():
    decoder = NotePeaks(refine_pitch=True, spectrum_fmin_midi=35, spectrum_bins_per_semitone=3)
    bins = (np.arange(234) - 1) / 3 + 35  # the pitch (MIDI) at each bin's centre

    def sung(f0: float) -> np.ndarray:  # harmonics 1-4 of f0, as dB / 80 in [-1, 0]
        amp = sum(
            np.exp(-0.5 * ((bins - f0 - 12 * np.log2(h)) / 0.2) ** 2) / h for h in (1, 2, 3, 4)
        )
        return np.tile(np.log10(amp + 1e-4) / 4, (10, 1))

    assert decoder.nearest_semitone(sung(60.7), 60) == 61  # 70 cents sharp of the model's C4
    assert decoder.nearest_semitone(sung(60.2), 60) == 60
    assert decoder.nearest_semitone(sung(59.4), 60) == 59
    assert decoder.nearest_semitone(sung(64.0), 60) in (59, 60, 61)  # never more than one away


def test_score_notes_is_mir_eval_with_pitch():
    ref = np.array([[0.0, 0.5, 60], [0.5, 1.0, 62.2]])
    assert score_notes(ref, ref)["onset_f1"] == 1.0
    assert score_notes(ref, ref + [0.03, 0.03, 0])["onset_f1"] == 1.0  # within 50 ms
    assert score_notes(ref, ref + [0, 0, 1])["onset_f1"] == 0.0  # a semitone off
    assert score_notes(ref, ref + [0, 0, 1])["onset_only_f1"] == 1.0
    assert score_notes(ref, ref[:1])["onset_recall"] == 0.5


def test_task_targets_and_loss():
    task = NotesTask(min_pitch=60, max_pitch=71)
    task.frame_seconds = 0.01
    onset, voiced, pitch = task.targets(np.array([[0.1, 0.3, 64], [0.3, 0.5, 80]]), 60)
    assert onset[9:12].tolist() == [0.5, 1.0, 0.5] and voiced[10:30].all() and not voiced[5]
    assert (pitch[10:30] == 4).all() and (pitch[30:50] == -100).all()  # 80 is out of range

    class Pipe:
        model = NoteTracker(input_size=60, output_size=14, channels=4, hidden_size=8, num_layers=1)

    from seqpipe.tasks.notes import NoteExample

    feats = np.random.default_rng(0).uniform(-1, 0, (80, 60)).astype(np.float16)
    batch = task.collate([NoteExample(feats, np.array([[0.1, 0.3, 64]]), train=True)])
    loss, frames = task.loss(Pipe(), batch)
    assert torch.isfinite(loss) and frames == 80 and batch["feats"].shape == (1, 80, 60)


def test_notes_to_melody_quantises_to_sixteenths_at_the_tempo():
    notes = np.array([[1.0, 1.26, 62], [1.24, 1.5, 64], [1.52, 2.0, 66]])
    melody = notes_to_melody(notes, tempo=120.0)  # a 16th = 0.125 s = 6 ticks
    assert [(n.pitch, n.start, n.duration) for n in melody.notes] == [
        (62, 0, 12), (64, 12, 12), (66, 24, 24)
    ]  # fmt: skip


# -- training data -----------------------------------------------------------------------


def test_the_singer_and_the_room_make_audio_of_the_notes_length():
    from seqpipe.data.melody_audio import SAMPLE_RATE, finish, sing

    rng = np.random.default_rng(0)
    notes = np.array([[0.0, 0.4, 60], [0.4, 0.9, 64], [1.2, 1.6, 67]])
    audio, vowels = sing(notes, rng)
    assert len(audio) == int(2.0 * SAMPLE_RATE) and len(vowels) == 3
    assert np.abs(audio[: int(0.3 * SAMPLE_RATE)]).max() > 0.1
    assert np.abs(audio[int(1.8 * SAMPLE_RATE) :]).max() < 0.01  # silence after the last note
    out = finish(audio, rng)
    assert out.dtype == np.float32 and len(out) == len(audio) and np.isfinite(out).all()


@pytest.mark.skipif(not FLUIDSYNTH, reason="needs fluidsynth and fluid-soundfont-gm")
def test_rendered_excerpts_round_trip_through_a_shard(tmp_path):
    from seqpipe.data.melody_audio import read_shard, render_batch, write_shard
    from seqpipe.features.tonal import CQT
    from seqpipe.midi import Melody, Note

    tune = Melody([Note(62 + (i % 5), i * 12, 12) for i in range(24)], tempo=120.0)
    rng = np.random.default_rng(1)
    excerpts = render_batch([tune], rng, "/usr/share/sounds/sf2/FluidR3_GM.sf2", count=3,
                            voice_share=0.34, random_share=0.0)  # fmt: skip
    assert len(excerpts) == 3
    for e in excerpts:
        assert len(e.audio) / 16000 >= e.notes[-1, 1] and np.abs(e.audio).max() > 0
    features = CQT(sample_rate=16000, hop_length=256, n_bins=60, fmin_midi=48, bins_per_semitone=3)
    write_shard(tmp_path / "s.npz", excerpts, features)
    back = read_shard(tmp_path / "s.npz")
    assert [len(n) for _, n in back] == [len(e.notes) for e in excerpts]
    assert back[0][0].shape[1] == 60 and back[0][0].dtype == np.float16


# -- the bundled model and the commands --------------------------------------------------


def notes_of(path: Path) -> np.ndarray:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    return np.array([(n.start, n.end, n.pitch) for n in pm.instruments[0].notes]).reshape(-1, 3)


def test_a_folk_tune_in_an_unseen_instrument_comes_back(tmp_path):
    out = tmp_path / "x.mid"
    result = CliRunner().invoke(
        build_cli(), ["transcribe", str(EXAMPLE), "--to", "midi", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert score_notes(reference_notes(), notes_of(out))["onset_f1"] >= 0.9


def test_notes_command_writes_midi_and_a_plot_and_names_bad_files(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    args = ["notes", str(EXAMPLE), "-o", str(tmp_path / "out"), "--plot", str(tmp_path / "plots")]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "folk_clarinet.mid").exists()
    assert (tmp_path / "plots" / "folk_clarinet.png").stat().st_size > 1000
    result = CliRunner().invoke(build_cli(), ["notes", str(bad), str(tmp_path / "none.wav")])
    assert (
        result.exit_code == 1
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    assert (
        f"{bad}: cannot read audio" in result.output and "none.wav: no such file" in result.output
    )


def test_generate_primed_with_a_recording(tmp_path):
    out = tmp_path / "tune.mid"
    args = ["generate", "-o", str(out), "--primer", str(EXAMPLE), "--bars", "16", "--seed", "1"]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    from seqpipe.midi import read_midi
    from seqpipe.music.request import audio_primer

    primer = audio_primer(EXAMPLE)
    melody = read_midi(out)
    assert [n.pitch for n in melody.notes[: len(primer.notes)]] == [n.pitch for n in primer.notes]
    assert len(melody.notes) > len(primer.notes) and abs(melody.tempo - primer.tempo) < 1


def test_evaluate_melody_on_a_manifest(tmp_path):
    manifest = tmp_path / "set.jsonl"
    row = {"audio": str(EXAMPLE), "notes": reference_notes().tolist()}
    manifest.write_text(json.dumps(row) + "\n")
    result = CliRunner().invoke(build_cli(), ["evaluate", "melody", str(manifest), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["onset_f1"] >= 0.9
