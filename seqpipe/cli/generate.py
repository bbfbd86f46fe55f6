"""``seqpipe generate``: melodies from a melody model, as MIDI (and optionally WAV / piano roll)."""

from __future__ import annotations

import click


def numbered(path: str, i: int, n: int) -> str:
    """``tune.mid`` -> ``tune-2.mid`` when several files are written."""
    if n == 1:
        return path
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}-{i}.{suffix}" if dot and "/" not in suffix else f"{path}-{i}"


def parse_meter(text: str | None) -> tuple[int, int] | None:
    from seqpipe.errors import SeqpipeError

    if text is None:
        return None
    num, slash, den = text.partition("/")
    if not slash or not num.strip().isdigit() or not den.strip().isdigit():
        raise SeqpipeError(f"--meter {text!r}: expected a time signature like 4/4 or 6/8")
    return int(num), int(den)


@click.command("generate")
@click.option("-m", "--model", default="folk", show_default=True, help="Bundle name or path.")
@click.option("-o", "--output", required=True, help="Output MIDI file (OUT.mid).")
@click.option("-n", "--num", "n", default=1, show_default=True, help="Melodies to generate.")
@click.option("--bars", type=int, default=16, show_default=True, help="Length in bars.")
@click.option("--steps", type=int, help="Length in 16th notes (overrides --bars).")
@click.option("--key", help="Key, e.g. G, Em, 'F# minor', 'A dorian' (default: the model picks).")
@click.option("--meter", help="Time signature, e.g. 6/8 (default: the model picks).")
@click.option("--tempo", type=float, help="Quarter notes per minute (default: the model picks).")
@click.option(
    "--primer",
    help="Opening notes: 'C4 E4 G4', '60 64 67' (one beat each, r = rest) or a .mid file.",
)
@click.option("--scale", is_flag=True, help="Keep every note in the scale of --key.")
@click.option("--seed", type=int, help="Random seed (default: random, printed).")
@click.option(
    "--temperature", type=click.FloatRange(min=0, min_open=True), help="Sampling temperature."
)
@click.option("--top-k", type=click.IntRange(min=0), help="Sample among the k most likely tokens.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), help="Nucleus sampling mass.")
@click.option(
    "--beam", type=click.IntRange(min=1), help="Beam search with this width instead of sampling."
)
@click.option(
    "--program",
    type=click.IntRange(0, 127),
    default=0,
    show_default=True,
    help="General MIDI instrument.",
)
@click.option("--render", help="Also synthesise audio to this .wav (FluidSynth).")
@click.option("--soundfont", help="Soundfont for --render (default: FluidR3_GM).")
@click.option(
    "--plot", help="Also draw a piano roll (one panel per melody) to this .png/.svg/.pdf."
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto.")
def command(
    model, output, n, bars, steps, key, meter, tempo, primer, scale, seed, temperature,
    top_k, top_p, beam, program, render, soundfont, plot, device,
):  # fmt: skip
    """Generate N melodies and write them as Standard MIDI files.

    \b
    With -n 1 the file is OUT.mid; with -n N they are OUT-1.mid ... OUT-N.mid (and
    likewise for --render and --plot). The same --seed gives identical files.
    Examples:
      seqpipe generate -o tune.mid --render tune.wav --plot tune.png
      seqpipe generate -o jig.mid --key D --meter 6/8 --bars 16 -n 4 --seed 1
      seqpipe generate -o tune.mid --primer "D4 F#4 A4" --scale --key D --top-p 0.9
    """
    import os
    from pathlib import Path

    from seqpipe.atomic import check_writable
    from seqpipe.decoders.melody import Request, check_request, generate_melodies, parse_primer
    from seqpipe.decoders.sampling import BeamSearch, Sampler
    from seqpipe.device import pick_device
    from seqpipe.midi import write_midi
    from seqpipe.pipeline import Pipeline

    ts = parse_meter(meter)
    request = Request(
        n=n, bars=bars, steps=steps, key=key, time_signature=ts, tempo=tempo,
        primer=parse_primer(primer, ts or (4, 4)) if primer is not None else None,
        scale=scale, seed=seed if seed is not None else 0,
    )  # fmt: skip
    check_request(request)  # everything that can be refused before the model loads
    if render:
        from seqpipe.midi_render import audio_format, check_renderer

        check_renderer(soundfont)
        audio_format(render)
    if plot:
        from seqpipe.midi_render import check_plot_path

        check_plot_path(plot)
    for target in filter(None, (output, render, plot)):
        check_writable(Path(target).parent)
    if seed is None:
        request.seed = int.from_bytes(os.urandom(4), "little") >> 1
        click.echo(f"seed {request.seed}", err=True)
    pipeline = Pipeline.load(model, device=pick_device(device))
    decoder = pipeline.decoder if isinstance(pipeline.decoder, Sampler) else Sampler()
    if beam:
        decoder = BeamSearch(beam_size=beam, temperature=temperature or 1.0)
    else:
        decoder = Sampler(
            temperature=temperature if temperature is not None else decoder.temperature,
            top_k=top_k if top_k is not None else decoder.top_k,
            top_p=top_p if top_p is not None else decoder.top_p,
        )
    melodies = generate_melodies(pipeline, request, decoder=decoder)
    for i, melody in enumerate(melodies, 1):
        path = numbered(output, i, n)
        replaced = " (replaced the existing file)" if Path(path).exists() else ""
        write_midi(melody, path, program=program)
        click.echo(f"{path}: {len(melody.notes)} notes, {melody.key or 'key ?'}, "
                   f"{melody.time_signature[0]}/{melody.time_signature[1]}, {melody.tempo:g} qpm"
                   f"{replaced}")  # fmt: skip
        if render:
            from seqpipe.midi_render import render_wav

            render_wav(path, numbered(render, i, n), soundfont=soundfont)
    if plot:
        from seqpipe.midi_render import plot_piano_roll

        plot_piano_roll(melodies, plot)
