"""A .mid primer's meter, tempo and key carry over unless overridden; Magenta's flag names."""

from click.testing import CliRunner

from seqpipe.cli import build_cli
from seqpipe.midi import TPQ, Melody, Note, read_midi, write_midi


def primer(tmp_path):
    notes = [Note(64 + i, i * TPQ // 2, TPQ // 2) for i in range(3)]  # three eighths
    path = tmp_path / "primer.mid"
    write_midi(Melody(notes, key="E minor", time_signature=(6, 8), tempo=184.0), path)
    return path


def generate(tmp_path, *args):
    result = CliRunner().invoke(
        build_cli(), ["generate", "-o", str(tmp_path / "out.mid"), "--seed", "1", *args]
    )
    assert result.exit_code == 0, result.output
    return [read_midi(tmp_path / f"out-{i}.mid") for i in (1, 2)]


def test_a_midi_primers_tempo_meter_and_key_are_kept(tmp_path):
    path = primer(tmp_path)
    for melody in generate(tmp_path, "--primer", str(path), "--num-outputs", "2", "--bars", "4"):
        assert (melody.time_signature, round(melody.tempo), melody.key) == ((6, 8), 184, "E minor")
        assert [n.pitch for n in melody.notes[:2]] == [64, 65]


def test_flags_override_the_primer_and_magenta_names_work(tmp_path):
    path = primer(tmp_path)
    args = ["--primer", str(path), "--num-outputs", "2", "--qpm", "90", "--meter", "3/4"]
    for melody in generate(tmp_path, *args, "--key", "G", "--num-steps", "24"):
        assert (melody.time_signature, round(melody.tempo), melody.key) == ((3, 4), 90, "G major")
        assert melody.end <= 24 * TPQ // 4  # 24 sixteenths
