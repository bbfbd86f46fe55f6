"""The melody transcription service: recordings of a sung, hummed or played melody -> notes.

:func:`transcribe_notes` runs a ``notes`` pipeline (the bundled ``melody`` model by
default) on one recording and returns ``[onset s, offset s, MIDI pitch]`` rows;
:func:`notes_to_melody` puts them on a 16th-note grid at the recording's tempo (what
``seqpipe generate --primer song.wav`` primes the melody model with);
:func:`transcribe_to_midi` is ``seqpipe notes`` / ``seqpipe transcribe --to midi``:
files in, Standard MIDI files (exact times, not quantised) and optional piano-roll plots
over the spectrogram out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from seqpipe.atomic import atomic_write
from seqpipe.errors import SeqpipeError
from seqpipe.midi import TPQ, Melody, Note

DEFAULT_MODEL = "melody"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MAX_SECONDS = 30 * 60  # longer recordings are refused, not transcribed for an hour


@lru_cache(maxsize=2)
def load_transcriber(model: str = DEFAULT_MODEL, device: str = "cpu"):
    """A ``notes`` pipeline from a bundle name or file, in eval mode."""
    from seqpipe.device import pick_device
    from seqpipe.pipeline import Pipeline

    pipeline = Pipeline.load(model, pick_device(device))
    if pipeline.config.get("task", {}).get("name") != "notes":
        raise SeqpipeError(f"{model}: not a melody transcription model (its task is "
                           f"'{pipeline.config.get('task', {}).get('name')}', not 'notes')")  # fmt: skip
    return pipeline.eval()


def transcribe_notes(pipeline, wave: np.ndarray) -> np.ndarray:
    """``[K, 3]`` notes (onset s, offset s, MIDI pitch) of one mono recording at the
    pipeline's sample rate."""
    import torch

    task = pipeline.task
    feats = pipeline.features.compute(np.asarray(wave, dtype=np.float32)).T
    x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))[None].to(pipeline.device)
    lengths = torch.tensor([x.shape[1]])
    with torch.inference_mode():
        return pipeline.decoder.decode_batch(
            pipeline.model, x, lengths, task.frame_seconds, task.min_pitch
        )[0]


def read_recording(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    from seqpipe.audio import audio_duration, load_audio

    if not Path(path).is_file():
        raise SeqpipeError(f"{path}: no such file")
    if audio_duration(path) > MAX_SECONDS:
        raise SeqpipeError(f"{path}: longer than {MAX_SECONDS // 60} minutes")
    wave = load_audio(path, sample_rate)
    if len(wave) < sample_rate // 10:
        raise SeqpipeError(f"{path}: too short to hold a note (under 0.1 s)")
    return wave


@lru_cache(maxsize=8)
def _cached_notes(path: str, mtime: float, model: str, device: str) -> tuple[np.ndarray, float]:
    pipeline = load_transcriber(model, device)
    notes = transcribe_notes(pipeline, read_recording(path, pipeline.sample_rate))
    return notes, estimate_tempo(notes)


def recording_notes(
    path: str | os.PathLike, model: str = DEFAULT_MODEL, device: str = "cpu"
) -> tuple[np.ndarray, float]:
    """Notes and tempo (quarter notes per minute) of a recording, computed once per file."""
    path = str(path)
    mtime = os.path.getmtime(path) if os.path.exists(path) else 0.0
    return _cached_notes(path, mtime, model, device)


def estimate_tempo(notes: np.ndarray) -> float:
    """Quarter notes per minute from the notes themselves: the median time between onsets
    taken as a beat, folded into 60-180 (120 with too few notes to tell)."""
    gaps = np.diff(notes[:, 0]) if len(notes) else np.array([])
    gaps = gaps[(gaps > 0.08) & (gaps < 2.0)]
    if len(gaps) < 2:
        return 120.0
    tempo = 60.0 / float(np.median(gaps))
    while tempo > 180:
        tempo /= 2
    while tempo < 60:
        tempo *= 2
    return round(tempo, 1)


def notes_to_melody(notes: np.ndarray, tempo: float, name: str = "") -> Melody:
    """Notes in seconds -> a :class:`Melody` on a 16th-note grid at ``tempo``, starting at
    its first note; overlaps are cut (a melody is monophonic)."""
    step = TPQ // 4
    ticks_per_second = tempo / 60.0 * TPQ
    first = notes[0, 0] if len(notes) else 0.0
    out: list[Note] = []
    for onset, offset, pitch in notes:
        start = int(round((onset - first) * ticks_per_second / step)) * step
        end = max(int(round((offset - first) * ticks_per_second / step)) * step, start + step)
        if out and out[-1].start == start:
            continue  # two notes on one grid step: keep the first
        if out and out[-1].end > start:
            out[-1] = Note(out[-1].pitch, out[-1].start, start - out[-1].start)
        out.append(Note(int(pitch), start, end - start))
    return Melody(notes=out, tempo=float(tempo), name=name)


def write_notes_midi(
    notes: np.ndarray, path: str | os.PathLike, program: int = 0, tempo: float = 120.0
) -> Path:
    """A Standard MIDI file with the notes at their exact times (not quantised)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    instrument = pretty_midi.Instrument(program=program, name="melody")
    instrument.notes = [
        pretty_midi.Note(90, int(p), float(a), float(max(b, a + 0.01))) for a, b, p in notes
    ]
    pm.instruments.append(instrument)
    return atomic_write(Path(path), pm.write)


def plot_transcription(
    wave: np.ndarray, sample_rate: int, notes: np.ndarray, path: str | os.PathLike, title: str = ""
) -> Path:
    """The notes as boxes over the recording's constant-Q spectrogram (PNG/SVG/PDF)."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqpipe.music.render import check_plot_path

    fmt = check_plot_path(path)
    low = int(min(notes[:, 2].min() - 5, 48)) if len(notes) else 48
    high = int(max(notes[:, 2].max() + 5, 76)) if len(notes) else 84
    hop = 256
    C = librosa.amplitude_to_db(np.abs(librosa.cqt(
        wave, sr=sample_rate, hop_length=hop, fmin=librosa.midi_to_hz(low), n_bins=high - low
    )), ref=np.max)  # fmt: skip
    seconds = len(wave) / sample_rate
    fig, ax = plt.subplots(figsize=(min(4 + seconds / 2, 40), 4))
    ax.imshow(C, origin="lower", aspect="auto", cmap="magma",
              extent=(0, C.shape[1] * hop / sample_rate, low - 0.5, high - 0.5))  # fmt: skip
    for onset, offset, pitch in notes:
        ax.add_patch(plt.Rectangle((onset, pitch - 0.5), offset - onset, 1.0, fill=False,
                                   edgecolor="cyan", linewidth=1.2))  # fmt: skip
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    ticks = [p for p in range(low, high) if p % 12 in (0, 7)]
    ax.set_yticks(ticks, [f"{names[p % 12]}{p // 12 - 1}" for p in ticks])
    ax.set_xlabel("seconds")
    ax.set_title(title or f"{len(notes)} notes", fontsize=9, loc="left")
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    plt.close(fig)
    return Path(path)


@dataclass
class Written:
    """What :func:`transcribe_to_midi` did: (input, MIDI path, notes) per file, failures."""

    files: list[tuple[str, Path, int]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def output_paths(paths: list[str], output: str | None) -> list[Path]:
    """Where each input's MIDI goes: ``output`` itself for one input and a .mid/.midi
    ``output``, else ``output``/NAME.mid (or next to each input without ``output``)."""
    if output and Path(output).suffix.lower() in (".mid", ".midi"):
        if len(paths) > 1:
            raise SeqpipeError(f"{output}: one MIDI file for {len(paths)} inputs (give a folder)")
        return [Path(output)]
    folder = Path(output) if output else None
    return [(folder or Path(p).parent) / (Path(p).stem + ".mid") for p in paths]


def transcribe_to_midi(
    paths: list[str],
    output: str | None = None,
    model: str = DEFAULT_MODEL,
    plot: str | None = None,
    program: int = 0,
    device: str = "cpu",
    report=print,
) -> Written:
    """Transcribe each recording in ``paths`` to a MIDI file (and a plot when ``plot`` is
    given: a file for one input, else a folder). A file that fails is reported and
    skipped; the others are still written."""
    from seqpipe.audio import load_audio

    targets = output_paths(list(paths), output)
    if plot and Path(plot).suffix:
        from seqpipe.music.render import check_plot_path

        check_plot_path(plot)
    pipeline = load_transcriber(model, device)
    written = Written()
    for path, target in zip(paths, targets, strict=True):
        try:
            notes, tempo = recording_notes(path, model, device)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_notes_midi(notes, target, program=program, tempo=tempo)
            if plot:
                picture = (
                    Path(plot)
                    if len(paths) == 1 and Path(plot).suffix
                    else Path(plot) / (Path(path).stem + ".png")
                )
                picture.parent.mkdir(parents=True, exist_ok=True)
                wave = load_audio(path, pipeline.sample_rate)
                plot_transcription(
                    wave, pipeline.sample_rate, notes, picture, title=Path(path).name
                )
            written.files.append((path, target, len(notes)))
        except SeqpipeError as exc:
            report(f"Error: {exc}")
            written.failed.append(path)
    return written
