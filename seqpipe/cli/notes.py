"""``seqpipe notes``: a sung, hummed or played melody (audio) -> MIDI notes."""

from __future__ import annotations

import click


@click.command("notes")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-o", "--output", help="Output .mid (one input) or folder (default: next to each input)."
)
@click.option("-m", "--model", default="melody", show_default=True, help="Bundle name or path.")
@click.option("--plot", help="Also draw the notes over the spectrogram: a .png/.svg/.pdf (one "
              "input) or a folder.")  # fmt: skip
@click.option("--program", type=click.IntRange(0, 127), default=0, show_default=True,
              help="GM instrument of the MIDI track.")  # fmt: skip
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto.")
def command(paths, output, model, plot, program, device) -> None:
    """Transcribe the melody in each recording PATHS (wav, flac, ogg, mp3) to a MIDI file.

    \b
    Monophonic: one note at a time (voice, whistle, flute, violin, a melody on a guitar).
    The MIDI keeps the notes' exact times, with the recording's estimated tempo.
    Examples:
      seqpipe notes hum.wav -o hum.mid --plot hum.png
      seqpipe notes takes/*.wav -o midi/
      seqpipe transcribe hum.wav --to midi -o hum.mid     # the same
    """
    write_midi_files(paths, output, model=model, plot=plot, program=program, device=device)


def write_midi_files(paths, output, **options) -> None:
    """Run the service and report each file (shared with ``seqpipe transcribe --to midi``)."""
    from seqpipe.music.melody_transcriber import transcribe_to_midi

    written = transcribe_to_midi(
        list(paths), output, report=lambda m: click.echo(m, err=True), **options
    )
    for path, target, count in written.files:
        click.echo(f"{path} -> {target}: {count} notes")
    if written.failed:
        click.echo(f"seqpipe: {len(written.failed)} of {len(paths)} file(s) failed", err=True)
        raise SystemExit(1)
