"""``seqpipe generate``: melodies from a melody model, as MIDI (and optionally WAV / piano roll)."""

from __future__ import annotations

import click


@click.command("generate")
@click.option("-m", "--model", default="folk", show_default=True, help="Bundle name or path.")
@click.option("-o", "--output", required=True, help="Output MIDI file (OUT.mid).")
@click.option("-n", "--num", "--num-outputs", "n", default=1, show_default=True,
              help="Melodies to generate (--num-outputs: Magenta's name).")  # fmt: skip
@click.option("--bars", type=int, default=16, show_default=True, help="Length in bars.")
@click.option("--steps", "--num-steps", "steps", type=int,
              help="Length in 16th notes (overrides --bars; --num-steps: Magenta's name).")  # fmt: skip
@click.option("--key", help="Key, e.g. G, Em, 'F# minor', 'A dorian' (default: the model picks).")
@click.option("--meter", help="Time signature, e.g. 6/8 (default: a .mid primer's, else the "
              "model picks).")  # fmt: skip
@click.option("--tempo", "--qpm", "tempo", type=float,
              help="Quarter notes per minute (default: a .mid primer's, else the model picks; "
              "--qpm: Magenta's name).")  # fmt: skip
@click.option("--primer", help="Opening notes: 'C4 E4 G4', '60 64 67' (a beat each, r = rest) "
              "or a .mid (its meter, tempo and key are kept unless given).")  # fmt: skip
@click.option("--scale", is_flag=True, help="Keep every note in the scale of --key.")
@click.option("--seed", type=int, help="Random seed (default: random, printed).")
@click.option(
    "--temperature", type=click.FloatRange(0, min_open=True), help="Sampling temperature."
)
@click.option("--top-k", type=click.IntRange(min=0), help="Sample among the k most likely tokens.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Nucleus sampling mass.")
@click.option(
    "--beam", type=click.IntRange(1), help="Beam search of this width instead of sampling."
)
@click.option("--repeat", type=click.FloatRange(0), help="Bias (nats) toward repeating the "
              "notes 1, 2, 4 or 8 bars back; 0: none (default: the model's).")  # fmt: skip
@click.option(
    "--program", type=click.IntRange(0, 127), default=0, show_default=True, help="GM instrument."
)
@click.option("--render", help="Also synthesise audio to this .wav (FluidSynth).")
@click.option("--soundfont", help="Soundfont for --render (default: FluidR3_GM).")
@click.option("--plot", help="Also draw a piano roll (a panel per melody) to this .png/.svg/.pdf.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Step the model in PyTorch or, exported to ONNX, in onnxruntime.")  # fmt: skip
def command(output: str, seed: int | None, **options) -> None:
    """Generate N melodies and write them as Standard MIDI files.

    \b
    With -n 1 the file is OUT.mid; with -n N they are OUT-1.mid ... OUT-N.mid (and
    likewise for --render and --plot). The same --seed gives identical files.
    Examples:
      seqpipe generate -o tune.mid --render tune.wav --plot tune.png
      seqpipe generate -o jig.mid --key D --meter 6/8 --bars 16 -n 4 --seed 1
      seqpipe generate -o tune.mid --primer "D4 F#4 A4" --scale --key D --top-p 0.9
    """
    from seqpipe.music.generator import generate_files

    written = generate_files(output, seed=seed, **options)
    if seed is None:
        click.echo(f"seed {written.seed}", err=True)
    for path, melody in written.files:
        replaced = " (replaced the existing file)" if path in written.replaced else ""
        click.echo(f"{path}: {len(melody.notes)} notes, {melody.key or 'key ?'}, "
                   f"{melody.time_signature[0]}/{melody.time_signature[1]}, {melody.tempo:g} qpm"
                   f"{replaced}")  # fmt: skip
