"""Melody generation, the service behind ``seqpipe generate`` and :func:`seqpipe.generate`.

:func:`generate_melodies` samples a :class:`~seqpipe.music.request.Request` from a loaded
melody pipeline in one batch, the tokens chosen by a token decoder
(:mod:`seqpipe.decoders.sampling`) under :class:`~seqpipe.music.rules.MelodyRules`.
Conditioning tokens the request leaves open (key, meter, tempo) are sampled by the
model itself. :func:`generate_files` is the whole command: it refuses a bad request
or an unwritable output before loading the model, then writes MIDI (and WAV, a piano
roll) atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqpipe.errors import SeqpipeError
from seqpipe.features.melody_tokens import PREFIX, MelodyEncoding
from seqpipe.midi import TPQ, Melody
from seqpipe.music.request import Request, check_request, make_request

DEFAULT_MODEL = "folk"
LOOKBACK_BARS = (1, 2, 4, 8)  # what a repetition-aware sampler may copy from


def generate_melodies(pipeline, request: Request, decoder=None, model=None) -> list[Melody]:
    """Sample ``request.n`` melodies from a melody pipeline in one batch; ``model``
    (default: the pipeline's) is what the decoder steps, e.g. an onnxruntime one."""
    from seqpipe.decoders.sampling import Sampler
    from seqpipe.music.rules import MelodyRules
    from seqpipe.theory import parse_key, scale_pitch_classes

    enc: MelodyEncoding = pipeline.features
    if not isinstance(enc, MelodyEncoding):
        task = pipeline.config.get("task", {}).get("name", "?")
        raise SeqpipeError(
            f"{getattr(pipeline, 'source', 'model')}: not a melody model (its task is "
            f"'{task}'); seqpipe generate needs a melody bundle such as folk"
        )
    target = check_request(request)
    key = parse_key(request.key) if request.key else None
    ts = request.time_signature
    primer = request.primer or []
    spec: list[int | None] = [
        1,  # <bos>
        enc.key_token(key) if key else None,
        enc.meter_token(ts) if ts else None,
        enc.tempo_token(request.tempo) if request.tempo else None,
        *enc.encode_notes(primer),
    ]
    cut = next((i for i, t in enumerate(spec) if t is None), len(spec))
    prompt, forced = spec[:cut], spec[cut:]
    decoder = decoder or pipeline.decoder or Sampler()
    if not hasattr(decoder, "generate"):
        decoder = Sampler()
    rules = MelodyRules(
        enc,
        bars=request.bars,
        target_ticks=target,
        forced=forced,
        scale=scale_pitch_classes(key) if request.scale else None,
        min_ticks=primer[-1].end if primer else 0,
        lookback=LOOKBACK_BARS if getattr(decoder, "repeat", 0) else (),
    )
    longest = target or request.bars * 8 * TPQ  # 8/4 is the longest bar in METERS
    max_tokens = 2 * longest // rules.min_advance + len(forced) + PREFIX + 2
    generator = torch.Generator(pipeline.device).manual_seed(request.seed)
    was_training = pipeline.training
    pipeline.eval()
    try:
        rows = decoder.generate(
            model or pipeline.model, prompt, request.n, rules, max_tokens, generator
        )
    finally:
        pipeline.train(was_training)
    melodies = []
    for i, row in enumerate(rows):
        melody = enc.decode(prompt + row, name=f"seqpipe melody {i + 1}")
        if ts is not None:
            melody.time_signature = ts
        if request.tempo is not None:
            melody.tempo = float(request.tempo)
        melodies.append(melody)
    return melodies


@dataclass
class Sampling:
    """How tokens are chosen; None keeps the bundle decoder's setting. ``beam``: beam
    search of that width instead of sampling; ``repeat``: the sampler's copy bias toward
    earlier bars (:mod:`seqpipe.decoders.sampling`)."""

    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    beam: int | None = None
    repeat: float | None = None

    def decoder(self, pipeline):
        from seqpipe.decoders.sampling import BeamSearch, Sampler

        if self.beam:
            return BeamSearch(beam_size=self.beam, temperature=self.temperature or 1.0)
        base = pipeline.decoder if isinstance(pipeline.decoder, Sampler) else Sampler()
        return Sampler(
            temperature=base.temperature if self.temperature is None else self.temperature,
            top_k=base.top_k if self.top_k is None else self.top_k,
            top_p=base.top_p if self.top_p is None else self.top_p,
            repeat=base.repeat if self.repeat is None else self.repeat,
        )


def generate(
    model=DEFAULT_MODEL, request: Request | None = None, sampling: Sampling | None = None,
    device: str | None = "cpu", backend: str = "torch",
) -> list[Melody]:  # fmt: skip
    """Melodies for ``request`` from ``model`` (a bundle name or path, or a loaded Pipeline);
    ``backend`` ``onnx``: the LM steps on onnxruntime (its exported ``step`` graph)."""
    from seqpipe.device import pick_device
    from seqpipe.pipeline import Pipeline

    request = request or Request()
    check_request(request)
    pipeline = model if isinstance(model, Pipeline) else Pipeline.load(model, pick_device(device))
    decoder = (sampling or Sampling()).decoder(pipeline)
    stepper = None
    if backend == "onnx":
        from seqpipe.deploy.runtime import onnx_model

        stepper = onnx_model(pipeline.cpu())
    return generate_melodies(pipeline, request, decoder=decoder, model=stepper)


def numbered(path: str, i: int, n: int) -> str:
    """``tune.mid`` -> ``tune-2.mid`` when several files are written."""
    if n == 1:
        return path
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}-{i}.{suffix}" if dot and "/" not in suffix else f"{path}-{i}"


@dataclass
class Written:
    """What :func:`generate_files` wrote: the seed used, each melody and its MIDI file, and
    the MIDI files that replaced existing ones."""

    seed: int
    files: list[tuple[str, Melody]] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def generate_files(
    output: str, model: str = DEFAULT_MODEL, *, n: int = 1, bars: int | None = 16,
    steps: int | None = None, key: str | None = None, meter: str | None = None,
    tempo: float | None = None, primer: str | None = None, scale: bool = False,
    seed: int | None = None, temperature: float | None = None, top_k: int | None = None,
    top_p: float | None = None, beam: int | None = None, repeat: float | None = None,
    program: int = 0,
    render: str | None = None, soundfont: str | None = None, plot: str | None = None,
    device: str | None = "cpu", backend: str = "torch",
) -> Written:  # fmt: skip
    """Generate ``n`` melodies and write ``output`` (``OUT-1.mid`` ... for several), and with
    ``render`` / ``plot`` their audio (FluidSynth) and one piano roll. ``seed`` None draws
    one (reported in the result). Everything that can be refused is, before the model loads.
    """
    from seqpipe.atomic import check_writable
    from seqpipe.midi import write_midi
    from seqpipe.music import render as renderer

    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") >> 1
    request = make_request(n=n, bars=bars, steps=steps, key=key, meter=meter, tempo=tempo,
                           primer=primer, scale=scale, seed=seed)  # fmt: skip
    if render:
        renderer.check_renderer(soundfont)
        renderer.audio_format(render)
    if plot:
        renderer.check_plot_path(plot)
    for target in filter(None, (output, render, plot)):
        check_writable(Path(target).parent)
    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, beam=beam,
                        repeat=repeat)  # fmt: skip
    melodies = generate(model, request, sampling, device, backend)
    written = Written(seed)
    for i, melody in enumerate(melodies, 1):
        path = numbered(output, i, n)
        if Path(path).exists():
            written.replaced.append(path)
        write_midi(melody, path, program=program)
        written.files.append((path, melody))
        if render:
            renderer.render_wav(path, numbered(render, i, n), soundfont=soundfont)
    if plot:
        renderer.plot_piano_roll(melodies, plot)
    return written
