"""seqpipe's Python front door: :func:`transcribe`, :func:`stream`, :func:`generate`, :func:`load`.

    import seqpipe
    from seqpipe.midi import write_midi

    print(seqpipe.transcribe("talk.wav"))                 # a Transcript; str() is the text
    for update in seqpipe.stream(blocks, sample_rate=16000):  # live; blocks of samples
        print(update.text, end="\n" if update.final else "\r")
    tunes = seqpipe.generate(n=2, key="D", meter="6/8", seed=1)
    write_midi(tunes[0], "jig.mid")

Each call loads its model by name (a bundled one) or path; pass a :func:`load` ed
Pipeline instead to load it once. Importing seqpipe does not import torch: these
functions do, on first use. Bad arguments raise :class:`seqpipe.errors.ParameterError`
naming the parameter, other problems :class:`seqpipe.errors.SeqpipeError`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import numpy as np

    from seqpipe.midi import Melody, Note
    from seqpipe.pipeline import Pipeline
    from seqpipe.speech.formats import Transcript
    from seqpipe.speech.streaming import Update


def load(model: str | os.PathLike, device: str | None = "auto") -> Pipeline:
    """A bundle by registered name (``en-small``, ``digits``, ``folk``) or ``.safetensors``
    path, on ``device`` (``auto``: CUDA, then MPS, then the CPU)."""
    from seqpipe.device import pick_device
    from seqpipe.pipeline import Pipeline

    return Pipeline.load(model, pick_device(device))


def transcribe(
    audio: str | os.PathLike | np.ndarray,
    model: str | os.PathLike | Pipeline | None = None,
    *,
    sample_rate: int | None = None,
    device: str | None = "auto",
    beam_size: int | None = None,
    lm: str | None = None,
    lm_weight: float | None = None,
    max_chunk: float = 20.0,
    vad: str = "auto",
    vad_margin: float = 12.0,
    vad_floor: float = -50.0,
    vad_threshold: float = 0.5,
    hotwords: str | None = None,
    words: str | None = None,
    hotword_boost: float | None = None,
    backend: str = "torch",
    compute_type: str = "auto",
    threads: int | None = None,
) -> Transcript:
    """Speech to text, with segments and word times, for audio of any length.

    ``audio``: a file path, or mono samples (a 1-D array or tensor) at ``sample_rate``.
    ``model``: a speech bundle (default: en-small). ``beam_size``/``lm``/``lm_weight``
    replace the bundle's decoder with a beam search, as ``seqpipe transcribe`` does;
    ``max_chunk``: the longest stretch (s) the VAD cuts long audio into; ``vad`` (``auto``,
    ``energy``, ``silero``, ``off``) and its ``vad_margin``/``vad_floor``/``vad_threshold``:
    how speech is found (:func:`seqpipe.speech.vad.vad_options`); ``hotwords`` ("Nguyen,
    seqpipe") / ``words`` (a file of them) / ``hotword_boost``: names and terms added to the
    beam search; ``backend`` ``onnx``: the acoustic model on onnxruntime; ``compute_type``
    ``auto`` (int8 on the CPU), ``float32`` or ``int8``; ``threads``:
    torch's CPU threads for the call.
    """
    import tempfile
    from pathlib import Path

    from seqpipe.device import threads as torch_threads
    from seqpipe.errors import ParameterError
    from seqpipe.pipeline import Pipeline
    from seqpipe.speech.files import Input
    from seqpipe.speech.transcriber import Transcriber
    from seqpipe.speech.vad import vad_options

    options = dict(
        beam_size=beam_size, lm=lm, lm_weight=lm_weight, hotwords=hotwords, words=words,
        hotword_boost=hotword_boost, backend=backend, compute_type=compute_type,
        vad=vad_options(max_chunk, vad, vad_margin, vad_floor, vad_threshold),
    )  # fmt: skip
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="seqpipe-") as tmp:
        if isinstance(model, Pipeline):
            transcriber = Transcriber(pipeline=model, **options)
        else:
            transcriber = Transcriber(model, device, **options)
        if isinstance(audio, str | os.PathLike):
            path = str(audio)
            if not Path(path).exists():
                raise ParameterError("audio", "no such file or directory", path)
        else:
            if not sample_rate:
                raise ParameterError("sample_rate", "needed with samples (an array) as {audio}")
            path = str(Path(tmp) / "audio.wav")
            _write_samples(path, audio, sample_rate)
        (result,) = transcriber.run([Input(path, Path(path).stem)])
    if result.error:
        shown = path if isinstance(audio, str | os.PathLike) else None
        raise ParameterError("audio", result.error, shown)
    return result.transcript


def stream(
    blocks: Iterable,
    model: str | os.PathLike | Pipeline | None = None,
    *,
    sample_rate: int | None = None,
    device: str | None = "auto",
    beam_size: int | None = None,
    lm: str | None = None,
    lm_weight: float | None = None,
    chunk: float = 0.4,
    lookahead: float = 0.5,
    settle: float | None = None,
    endpoint: float = 0.5,
    threads: int | None = None,
) -> Iterator[Update]:
    """Live transcription: ``blocks`` of mono samples (arrays or tensors of any length,
    at ``sample_rate``, default the model's) in, :class:`~seqpipe.speech.streaming.Update`
    s out as soon as the audio allows.

    ``update.text`` is the current segment's text (its first ``update.stable`` words are
    final); ``update.final`` marks a segment's last update, at a pause of ``endpoint``
    seconds. ``chunk``: seconds of audio per model step; ``lookahead``: seconds the model
    waits for after each chunk; ``settle``: None, a word is final once the whole beam
    agrees on it, or seconds the best path must hold it (sooner, less accurate). The model must stream (``ctc_rnn``: en-small, digits).
    """
    from seqpipe.device import threads as torch_threads
    from seqpipe.pipeline import Pipeline
    from seqpipe.speech.streaming import Streamer, StreamOptions
    from seqpipe.speech.streaming import stream as run
    from seqpipe.speech.transcriber import Transcriber

    options = dict(beam_size=beam_size, lm=lm, lm_weight=lm_weight)
    with torch_threads(threads):
        if isinstance(model, Pipeline):
            transcriber = Transcriber(pipeline=model, **options)
        else:
            transcriber = Transcriber(model, device, **options)
        options = StreamOptions(chunk, lookahead, settle, endpoint_seconds=endpoint)
        streamer = Streamer(transcriber, options)
        yield from run(blocks, streamer, sample_rate)


def _write_samples(path: str, samples, sample_rate: int) -> None:
    import numpy as np

    from seqpipe.audio import write_audio
    from seqpipe.errors import ParameterError

    if hasattr(samples, "detach"):  # a torch tensor
        samples = samples.detach().cpu().numpy()
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ParameterError("audio", f"expected mono samples (1-D), got shape {samples.shape}")
    write_audio(path, samples, sample_rate)


def generate(
    model: str | os.PathLike | Pipeline = "folk",
    *,
    n: int = 1,
    bars: int | None = 16,
    steps: int | None = None,
    key: str | None = None,
    meter: str | tuple[int, int] | None = None,
    tempo: float | None = None,
    primer: str | list[Note] | None = None,
    scale: bool = False,
    seed: int = 0,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    beam: int | None = None,
    repeat: float | None = None,
    device: str | None = "cpu",
) -> list[Melody]:
    """``n`` melodies from a melody bundle (default: folk), as :class:`seqpipe.midi.Melody`.

    ``bars`` (or ``steps``, 16th notes) long; ``key`` (``'G'``, ``'Em'``, ``'A dorian'``),
    ``meter`` (``'6/8'``) and ``tempo`` (quarter notes per minute) fixed, or None for the
    model to choose; ``primer``: opening notes (``'D4 F#4 A4'``, one beat each, or a .mid
    file); ``scale``: every note in the key's scale. ``temperature``/``top_k``/``top_p``
    override the bundle's sampler, ``beam`` searches instead; ``repeat``: the bias (nats)
    toward material 1, 2, 4 and 8 bars back (0: none). The same ``seed`` gives the
    same melodies. Write them with :func:`seqpipe.midi.write_midi`.
    """
    from seqpipe.music.generator import Sampling
    from seqpipe.music.generator import generate as generate_melodies
    from seqpipe.music.request import make_request

    request = make_request(n=n, bars=bars, steps=steps, key=key, meter=meter, tempo=tempo,
                           primer=primer, scale=scale, seed=seed)  # fmt: skip
    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, beam=beam,
                        repeat=repeat)  # fmt: skip
    return generate_melodies(model, request, sampling, device)
