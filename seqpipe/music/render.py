"""Hearing and seeing melodies: FluidSynth audio rendering and matplotlib piano rolls."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from seqpipe.atomic import atomic_write
from seqpipe.errors import SeqpipeError
from seqpipe.midi import TPQ, Melody

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def find_soundfont(soundfont: str | None = None) -> Path:
    path = Path(soundfont or os.environ.get("SEQPIPE_SOUNDFONT") or DEFAULT_SOUNDFONT)
    if not path.is_file():
        raise SeqpipeError(
            f"--render: no General MIDI soundfont at {path} "
            "(apt install fluid-soundfont-gm, or set SEQPIPE_SOUNDFONT / --soundfont)"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read soundfont: {exc.strerror}") from None
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":  # SF2/SF3: a RIFF file of form 'sfbk'
        raise SeqpipeError(f"{path}: not a SoundFont (SF2/SF3) file")
    return path


def audio_format(path: str | os.PathLike) -> str:
    """libsndfile's format name for ``path``'s suffix (WAV, FLAC, OGG...), or a SeqpipeError."""
    import soundfile as sf

    fmt = Path(path).suffix.lstrip(".").upper()
    writable = sorted(f for f in sf.available_formats() if f in ("WAV", "FLAC", "OGG", "MP3"))
    if fmt not in writable:
        names = ", ".join(f".{f.lower()}" for f in writable)
        raise SeqpipeError(f"{path}: cannot write audio of this type (use {names})")
    return fmt


def check_plot_path(path: str | os.PathLike) -> str:
    """matplotlib's format for ``path``'s suffix (png when it has none), or a SeqpipeError."""
    from matplotlib.backend_bases import FigureCanvasBase

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise SeqpipeError(
            f"{path}: cannot draw a plot of this type (use {', '.join(f'.{f}' for f in sorted(supported))})"
        )
    return fmt


def check_renderer(soundfont: str | None = None) -> tuple[str, Path]:
    """FluidSynth's path and the soundfont, or a SeqpipeError saying what to install."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise SeqpipeError("--render needs FluidSynth (apt install fluidsynth fluid-soundfont-gm)")
    return exe, find_soundfont(soundfont)


def render_wav(
    midi_path: str | os.PathLike,
    wav_path: str | os.PathLike,
    soundfont: str | None = None,
    sample_rate: int = 44100,
    tail: float = 0.5,
) -> Path:
    """Synthesise a MIDI file with FluidSynth (reverb and chorus off, so the audio ends with the
    notes), as WAV, FLAC, OGG or MP3 after ``wav_path``'s suffix."""
    exe, font = check_renderer(soundfont)
    fmt = audio_format(wav_path)

    def write(tmp: str) -> None:
        cmd = [exe, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.8", "-T", "wav", "-F", tmp,
               "-r", str(sample_rate), str(font), str(midi_path)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not Path(tmp).stat().st_size:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise SeqpipeError(
                f"{wav_path}: FluidSynth failed: {message[-1] if message else done.returncode}"
            )
        trim_wav(tmp, midi_end(midi_path) + tail, fmt)

    return atomic_write(Path(wav_path), write)


def midi_end(path: str | os.PathLike) -> float:
    import pretty_midi

    return pretty_midi.PrettyMIDI(str(path)).get_end_time()


def trim_wav(path: str, seconds: float, fmt: str = "WAV") -> None:
    """Cut FluidSynth's trailing silence/release so the audio lasts as long as the music (+ tail),
    and write it as ``fmt``."""
    import soundfile as sf

    audio, rate = sf.read(path, always_2d=True)
    subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    sf.write(path, audio[: int(round(seconds * rate))], rate, format=fmt, subtype=subtype)


def plot_piano_roll(melodies: list[Melody], path: str | os.PathLike, title: str = "") -> Path:
    """One piano-roll panel per melody (time in bars, MIDI pitch with note names), as PNG/SVG/PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, axes = plt.subplots(
        len(melodies), 1, figsize=(12, 2.2 * len(melodies) + 0.6), squeeze=False
    )
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    for ax, melody in zip(axes[:, 0], melodies, strict=False):
        bar = melody.ticks_per_bar
        for n in melody.notes:
            ax.add_patch(
                plt.Rectangle(
                    (n.start / bar, n.pitch - 0.4), n.duration / bar, 0.8, color="tab:blue"
                )
            )
        pitches = [n.pitch for n in melody.notes] or [60]
        low, high = min(pitches) - 2, max(pitches) + 2
        ax.set_ylim(low, high)
        ax.set_xlim(0, max(melody.end / bar, 1))
        marks = (0, 4, 7) if high - low <= 24 else (0,)
        ticks = [p for p in range(low, high + 1) if p % 12 in marks]
        ax.set_yticks(ticks, [f"{names[p % 12]}{p // 12 - 1}" for p in ticks])
        for x in range(int(melody.end / bar) + 1):
            ax.axvline(x, color="0.85", lw=0.8, zorder=0)
        num, den = melody.time_signature
        ax.set_title(
            f"{melody.name}  ({melody.key or 'key ?'}, {num}/{den}, {melody.tempo:g} qpm)",
            fontsize=9,
            loc="left",
        )
    axes[-1, 0].set_xlabel("bar")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fmt = check_plot_path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=100))
    plt.close(fig)
    return path


def seconds(melody: Melody) -> float:
    """Length in seconds at the melody's tempo."""
    return melody.end / TPQ * 60.0 / melody.tempo
