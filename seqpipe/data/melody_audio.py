"""Melody recordings with free ground truth: folk tunes (or any melodies) rendered to audio.

Each example is a short excerpt of a melody, transposed into its source's range and
played at a random tempo, either by FluidSynth with a General MIDI program (vibrato
and tuning offsets through pitch bend, random loudness per note) or by a synthetic
singer (:func:`sing`: a glottal-pulse source through vowel formants, with scoops,
vibrato, glides between legato notes, consonants and breath). The audio then goes
through a room (:func:`room`), a microphone (:func:`microphone`) and background noise.
The notes that were played are the labels: ``[onset s, offset s, MIDI pitch]`` rows.

Many excerpts are rendered by one FluidSynth call (one excerpt per MIDI channel, one
after another, cut apart afterwards), because loading the soundfont costs more than
rendering a few seconds of audio.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.midi import TPQ, Melody

SAMPLE_RATE = 16000

#: General MIDI programs rendered for training, with the MIDI range each plays well in
PROGRAMS = {
    0: (48, 84), 4: (48, 84), 11: (55, 88), 16: (48, 84), 19: (48, 84), 21: (53, 84),
    24: (45, 79), 25: (45, 79), 26: (45, 79), 40: (55, 91), 41: (48, 84), 42: (36, 72),
    46: (48, 88), 52: (48, 79), 53: (48, 79), 54: (48, 79), 56: (55, 82), 57: (40, 72),
    60: (41, 77), 64: (56, 87), 65: (49, 80), 66: (44, 75), 68: (58, 91), 70: (36, 65),
    72: (74, 96), 73: (60, 93), 74: (60, 93), 75: (60, 88), 78: (65, 93), 80: (48, 84),
    81: (48, 84), 85: (48, 79), 105: (48, 84), 109: (58, 84), 110: (55, 91),
}  # fmt: skip
#: programs never rendered for training: the "unseen instrument" round trip
#: (clarinet, harmonica, ocarina, shakuhachi)
HELD_OUT_PROGRAMS = {71: (50, 89), 22: (60, 84), 79: (60, 91), 77: (60, 88)}
VOICE_RANGES = ((45, 69), (52, 76), (57, 81))  # low, middle, high voices (MIDI)

# vowel formants (Hz) and bandwidths; "m" is a hum (nasal, dark)
VOWELS = {
    "a": ((800, 1150, 2900), (80, 90, 120)),
    "e": ((400, 1700, 2600), (70, 80, 100)),
    "i": ((300, 2200, 3000), (60, 90, 100)),
    "o": ((450, 800, 2830), (70, 80, 100)),
    "u": ((325, 700, 2530), (50, 60, 170)),
    "m": ((250, 1000, 2300), (60, 300, 400)),
}


@dataclass
class Excerpt:
    """One training example: mono audio at :data:`SAMPLE_RATE` and its notes."""

    audio: np.ndarray  # [N] float32
    notes: np.ndarray  # [K, 3] onset s, offset s, MIDI pitch
    source: str  # "gm:<program>" or "voice:<vowels>"


# -- choosing what to play ---------------------------------------------------------


def excerpt_notes(
    melody: Melody, rng: np.random.Generator, low: int, high: int, max_seconds: float = 12.0
) -> np.ndarray:
    """A random window of ``melody`` as ``[onset s, offset s, pitch]`` rows, transposed into
    ``low..high`` and played at a random tempo, with random articulation."""
    notes = melody.notes
    pitches = np.array([n.pitch for n in notes])
    shift = int(round((low + high) / 2 - np.median(pitches))) + int(rng.integers(-3, 4))
    if np.ptp(pitches) <= high - low:
        shift = int(np.clip(shift, low - pitches.min(), high - pitches.max()))
    qpm = float(np.clip(melody.tempo * rng.uniform(0.6, 1.6), 50, 220))
    tick = 60.0 / qpm / TPQ
    start = int(rng.integers(0, max(1, len(notes) - 8)))
    rows, t0 = [], notes[start].start
    articulation = rng.uniform(0.55, 1.0) if rng.random() < 0.4 else 1.0
    for n in notes[start:]:
        onset = (n.start - t0) * tick
        if onset > max_seconds:
            break
        length = n.duration * tick * (articulation if rng.random() < 0.8 else 1.0)
        rows.append((onset, onset + max(length, 0.06), n.pitch + shift))
    out = np.array(rows, dtype=np.float64)
    out[:, :2] *= rng.uniform(0.97, 1.03)  # not exactly metronomic
    return out


def random_line(rng: np.random.Generator, low: int, high: int, seconds: float = 10.0) -> np.ndarray:
    """A melody with no tonal grammar: random steps and leaps, random rhythms and rests,
    so the model does not learn to expect folk tunes."""
    rows, t, pitch = [], 0.0, int(rng.integers(low + 3, high - 3))
    while t < seconds:
        length = float(rng.choice([0.12, 0.18, 0.25, 0.35, 0.5, 0.7, 1.0, 1.5]))
        if rng.random() < 0.12:
            t += length  # rest
            continue
        step = int(rng.choice([0, 0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 7, -7, 12, -12]))
        pitch = int(np.clip(pitch + step, low, high))
        gap = length * (rng.uniform(0.0, 0.45) if rng.random() < 0.5 else 0.0)
        rows.append((t, t + max(length - gap, 0.06), pitch))
        t += length
    return np.array(rows, dtype=np.float64)


# -- FluidSynth --------------------------------------------------------------------


def render_gm(
    lines: list[tuple[int, np.ndarray]], rng: np.random.Generator, soundfont: str | Path
) -> list[np.ndarray]:
    """Render ``(program, notes)`` excerpts with FluidSynth in one call; one array each."""
    import pretty_midi
    import soundfile as sf

    from seqpipe.music.render import check_renderer

    exe, font = check_renderer(str(soundfont))
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    spans, t = [], 0.5
    for program, notes in lines:
        inst = pretty_midi.Instrument(program=program)
        tuning = rng.uniform(-0.3, 0.3)  # semitones, for the whole excerpt
        depth, rate = rng.uniform(0.0, 0.35), rng.uniform(4.0, 7.0)
        velocity = rng.integers(50, 120)
        for onset, offset, pitch in notes:
            v = int(np.clip(velocity + rng.normal(0, 10), 20, 127))
            inst.notes.append(pretty_midi.Note(v, int(pitch), t + onset, t + offset))
        end = t + notes[-1, 1]
        for time in np.arange(t, end, 0.02):  # vibrato + tuning, bend range +-2 semitones
            bend = tuning + depth * np.sin(2 * np.pi * rate * (time - t))
            inst.pitch_bends.append(pretty_midi.PitchBend(int(bend / 2 * 8191), float(time)))
        inst.pitch_bends.append(pretty_midi.PitchBend(0, float(end + 0.8)))
        pm.instruments.append(inst)
        spans.append((t, end))
        t = end + 1.5
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = os.path.join(tmp, "x.mid"), os.path.join(tmp, "x.wav")
        _write_channels(pm, midi)
        cmd = [exe, "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-T", "wav", "-F", wav,
               "-r", str(SAMPLE_RATE), str(font), midi]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not os.path.exists(wav):
            raise SeqpipeError(f"FluidSynth failed: {(done.stderr or done.stdout).strip()[-200:]}")
        audio, _ = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    out = []
    for start, end in spans:
        a, b = int(start * SAMPLE_RATE), int((end + 0.6) * SAMPLE_RATE)
        out.append(audio[a:b].copy())
    return out


def _write_channels(pm, path: str) -> None:
    """pretty_midi writes instrument i on channel i (9 is drums): skip 9 by padding."""
    import pretty_midi

    instruments = list(pm.instruments)
    if len(instruments) > 9:
        instruments.insert(9, pretty_midi.Instrument(program=0))
    pm.instruments = instruments[:16]
    pm.write(path)


# -- the synthetic singer ----------------------------------------------------------


def sing(
    notes: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE
) -> tuple[np.ndarray, str]:
    """A sung (or hummed) line: glottal source with scoops, vibrato, legato glides,
    off-key notes and jitter, through one vowel's formants per note, plus consonants at
    some onsets and breath noise. Returns the audio and the vowels used."""
    from scipy.signal import lfilter

    n = int((notes[-1, 1] + 0.4) * sr)
    semis = np.full(n, np.nan)
    amp = np.zeros(n)
    tuning = rng.uniform(-0.25, 0.25)
    depth, rate = rng.uniform(0.0, 0.6), rng.uniform(4.5, 6.8)
    attack = rng.uniform(0.01, 0.07)
    hum = rng.random() < 0.25
    vowels = ["m"] * len(notes) if hum else list(rng.choice(list("aeiou"), size=len(notes)))
    for onset, offset, pitch in notes:
        a, b = int(onset * sr), min(int(offset * sr), n)
        t = np.arange(b - a) / sr
        target = pitch + tuning + rng.normal(0, 0.08)
        scoop = (
            -rng.uniform(0, 1.2) * np.exp(-t / rng.uniform(0.02, 0.06)) if rng.random() < 0.6 else 0
        )
        vib = depth * np.sin(2 * np.pi * rate * t) * np.clip((t - 0.15) / 0.2, 0, 1)
        semis[a:b] = target + scoop + vib
        release = rng.uniform(0.02, 0.08)
        env = np.minimum(1.0, t / attack) * np.clip((offset - onset - t) / release, 0, 1)
        amp[a:b] = np.maximum(amp[a:b], env * rng.uniform(0.6, 1.0))
    # legato: fill short gaps with a glide so the voice never stops between the notes
    voiced = ~np.isnan(semis)
    idx = np.arange(n)
    semis = np.interp(idx, idx[voiced], semis[voiced])
    semis += _smooth_noise(rng, n, sr, 0.05)  # jitter
    hz = 440.0 * 2 ** ((semis - 69) / 12)
    phase = 2 * np.pi * np.cumsum(hz) / sr
    tilt = rng.uniform(1.0, 2.0)
    source = np.zeros(n)
    for k in range(1, 60):
        alive = k * hz < 0.45 * sr
        if not alive.any():
            break
        source += np.where(alive, np.sin(k * phase + rng.uniform(0, 2 * np.pi)), 0) / k**tilt
    source = source * amp * (1 + _smooth_noise(rng, n, sr, 0.08))  # shimmer
    voice = np.zeros(n)
    for i, (onset, offset, _) in enumerate(notes):  # per-note vowels, crossfaded
        a, b = max(int((onset - 0.03) * sr), 0), min(int((offset + 0.1) * sr), n)
        seg = source[a:b]
        freqs, bands = VOWELS[vowels[i]]
        y = sum(
            lfilter(*_resonator(f * rng.uniform(0.9, 1.12), bw, sr), seg)
            for f, bw in zip(freqs, bands, strict=True)
        )
        fade = np.minimum(1, np.minimum(np.arange(b - a), np.arange(b - a)[::-1]) / (0.03 * sr))
        voice[a:b] += y * fade
    voice /= np.abs(voice).max() + 1e-9
    for onset, _, _ in notes:  # consonants: noise bursts and dips at some onsets
        if rng.random() < (0.15 if hum else 0.5):
            a = int(onset * sr)
            length = int(rng.uniform(0.02, 0.08) * sr)
            burst = rng.normal(0, 1, length) * np.hanning(length)
            lo = rng.uniform(1500, 4000)
            burst = _bandpass(burst, lo, min(lo * 2.5, 0.45 * sr), sr)
            b = min(a + length, n)
            voice[max(a - length // 2, 0) : max(a - length // 2, 0) + b - a] += burst[
                : b - a
            ] * rng.uniform(0.05, 0.4)
    breath = _bandpass(rng.normal(0, 1, n), 500, 6000, sr) * amp * rng.uniform(0.0, 0.05)
    return (voice + breath).astype(np.float32), "".join(vowels[:8])


def _resonator(freq: float, bandwidth: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """A two-pole resonance at ``freq`` Hz: (b, a) for lfilter."""
    r = np.exp(-np.pi * bandwidth / sr)
    theta = 2 * np.pi * freq / sr
    return np.array([1 - r]), np.array([1, -2 * r * np.cos(theta), r * r])


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, scale: float) -> np.ndarray:
    """Slow random wander (about 3 Hz) of standard deviation ~``scale``."""
    points = rng.normal(0, scale, n // (sr // 3) + 2)
    return np.interp(np.arange(n), np.arange(len(points)) * (sr // 3), points)


def _bandpass(x: np.ndarray, low: float, high: float, sr: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(2, [low, high], btype="band", fs=sr, output="sos"), x)


# -- the room, the microphone and the noise ----------------------------------------


def room(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Reverb from a synthetic impulse response (exponentially decaying noise)."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 1.2)
    t = np.arange(int(rt60 * sr)) / sr
    ir = rng.normal(0, 1, len(t)) * np.exp(-6.9 * t / rt60)
    ir = _bandpass(ir, 100, rng.uniform(3000, 7000), sr)
    ir[0] = 0
    ir /= np.sqrt((ir**2).sum()) + 1e-9
    wet = fftconvolve(audio, ir)[: len(audio)]
    mix = rng.uniform(0.1, 0.6)
    return (1 - mix) * audio + mix * wet * np.abs(audio).max() / (np.abs(wet).max() + 1e-9)


def microphone(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A cheap microphone: band limits, a presence bump or dip, and (rarely) clipping."""
    from scipy.signal import butter, sosfilt

    low, high = rng.uniform(60, 350), rng.uniform(3500, 7800)
    y = sosfilt(butter(2, [low, high], btype="band", fs=sr, output="sos"), audio)
    centre = rng.uniform(800, 4000)
    y = y + rng.uniform(-0.5, 0.8) * _bandpass(y, centre / 1.4, centre * 1.4, sr)
    if rng.random() < 0.1:
        y = np.clip(y, -0.5 * np.abs(y).max(), 0.5 * np.abs(y).max())
    return y


def noise(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Background noise (white, pink or brown, sometimes mains hum) at 5-45 dB SNR."""
    n = len(audio)
    colour = rng.integers(0, 3)
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0)
    spectrum /= f ** (colour / 2)  # 0 white, 1 pink, 2 brown
    bg = np.fft.irfft(spectrum, n)
    if rng.random() < 0.2:
        hum = rng.choice([50.0, 60.0])
        bg += np.std(bg) * 3 * np.sin(2 * np.pi * hum * np.arange(n) / sr)
    snr = rng.uniform(5, 45)
    power = np.mean(audio**2) + 1e-12
    bg *= np.sqrt(power / (np.mean(bg**2) + 1e-12) / 10 ** (snr / 10))
    return audio + bg


def finish(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Room, microphone, noise (each most of the time) and a random level."""
    if rng.random() < 0.7:
        audio = room(audio, rng)
    if rng.random() < 0.8:
        audio = microphone(audio, rng)
    if rng.random() < 0.8:
        audio = noise(audio, rng)
    peak = np.abs(audio).max() + 1e-9
    return (audio / peak * 10 ** (rng.uniform(-35, -1) / 20)).astype(np.float32)


# -- examples ----------------------------------------------------------------------


def render_batch(
    melodies: list[Melody],
    rng: np.random.Generator,
    soundfont: str | Path,
    count: int = 15,
    voice_share: float = 0.4,
    random_share: float = 0.25,
    programs: dict[int, tuple[int, int]] | None = None,
) -> list[Excerpt]:
    """``count`` excerpts of random ``melodies`` (or random lines), a ``voice_share`` of
    them sung, the rest played by FluidSynth with ``programs`` (default :data:`PROGRAMS`)."""
    programs = programs or PROGRAMS
    gm, sung = [], []
    for _ in range(count):
        voice = rng.random() < voice_share
        if voice:
            low, high = VOICE_RANGES[rng.integers(len(VOICE_RANGES))]
        else:
            program = int(rng.choice(list(programs)))
            low, high = programs[program]
        if rng.random() < random_share or not melodies:
            notes = random_line(rng, low, high, seconds=rng.uniform(4, 12))
        else:
            notes = excerpt_notes(melodies[rng.integers(len(melodies))], rng, low, high)
        if len(notes) == 0:
            continue
        (sung if voice else gm).append(notes if voice else (program, notes))
    out = []
    if gm:
        for (program, notes), audio in zip(gm, render_gm(gm, rng, soundfont), strict=True):
            out.append(Excerpt(finish(audio, rng), notes, f"gm:{program}"))
    for notes in sung:
        audio, vowels = sing(notes, rng)
        out.append(Excerpt(finish(audio, rng), notes, f"voice:{vowels}"))
    return out


# -- the feature cache the ``notes`` task trains from --------------------------------


def write_shard(path: str | os.PathLike, excerpts: list[Excerpt], features) -> Path:
    """Features of ``excerpts`` (``features``: an audio front end such as ``cqt``) and their
    notes in one ``.npz`` (no pickled objects): ``feats`` [sum T, F] float16, ``frames``
    [E], ``notes`` [sum K, 3], ``counts`` [E], ``sources`` [E] strings."""
    from seqpipe.atomic import atomic_write

    feats = [np.asarray(features.compute(e.audio).T, dtype=np.float16) for e in excerpts]
    arrays = {
        "feats": np.concatenate(feats),
        "frames": np.array([len(f) for f in feats]),
        "notes": np.concatenate([e.notes for e in excerpts]).astype(np.float32),
        "counts": np.array([len(e.notes) for e in excerpts]),
        "sources": np.array([e.source for e in excerpts]),
        "hop_seconds": np.array(features.hop_length / features.sample_rate),
    }
    return atomic_write(Path(path), lambda tmp: np.savez(open(tmp, "wb"), **arrays))


def read_shard(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(feats [T, F] float16, notes [K, 3])`` per excerpt of a shard (no unpickling)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            feats, frames = data["feats"], data["frames"]
            notes, counts = data["notes"], data["counts"]
    except (OSError, ValueError, KeyError) as exc:
        raise SeqpipeError(f"{path}: not a note-feature shard ({exc})") from None
    out, f0, n0 = [], 0, 0
    for t, k in zip(frames.tolist(), counts.tolist(), strict=True):
        out.append((feats[f0 : f0 + t], notes[n0 : n0 + k]))
        f0, n0 = f0 + t, n0 + k
    return out
