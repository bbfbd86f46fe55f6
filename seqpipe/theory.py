"""Just enough music theory: key names, scales, note names, key finding.

Keys are 24 canonical names ("G major", "E minor"). Church modes, common in folk
tunes (A dorian, D mixolydian), map to the major/minor key with the same tonic and
third, which is what a conditioning token needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from seqpipe.errors import SeqpipeError

PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MINOR_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
KEYS = [f"{n} major" for n in MAJOR_NAMES] + [f"{n} minor" for n in MINOR_NAMES]
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
_MODES = {
    "": "major", "maj": "major", "major": "major", "ionian": "major", "mix": "major",
    "mixolydian": "major", "lyd": "major", "lydian": "major",
    "m": "minor", "min": "minor", "minor": "minor", "aeolian": "minor", "aeo": "minor",
    "dor": "minor", "dorian": "minor", "phr": "minor", "phrygian": "minor",
    "loc": "minor", "locrian": "minor",
}  # fmt: skip
# Krumhansl-Kessler key profiles (probe-tone ratings), index 0 = tonic.
_KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def _pitch_class(letter: str, accidentals: str) -> int:
    return (PITCH_CLASSES[letter.lower()] + accidentals.count("#") - accidentals.count("b")) % 12


def key_name(tonic: int, mode: str) -> str:
    return f"{(MAJOR_NAMES if mode == 'major' else MINOR_NAMES)[tonic % 12]} {mode}"


def parse_key(text: str) -> str:
    """'G', 'Gm', 'g minor', 'F#m', 'Bb major', 'A dorian' -> a canonical key name."""
    match = re.fullmatch(r"\s*([A-Ga-g])([#b]*)[\s_-]*([A-Za-z]*)\s*", text or "")
    mode = _MODES.get(match.group(3).lower()) if match else None
    if match is None or mode is None:
        raise SeqpipeError(
            f"unknown key {text!r} (expected e.g. 'G', 'Gm', 'F# minor', 'Bb major', 'A dorian')"
        )
    return key_name(_pitch_class(match.group(1), match.group(2)), mode)


def key_parts(key: str) -> tuple[int, str]:
    """Canonical key name -> (tonic pitch class, 'major' | 'minor')."""
    name, mode = key.split()
    return _pitch_class(name[0], name[1:]), mode


def transpose_key(key: str, semitones: int) -> str:
    tonic, mode = key_parts(key)
    return key_name(tonic + semitones, mode)


def scale_pitch_classes(key: str) -> set[int]:
    """The diatonic scale of a key; minor also allows the raised 7th (harmonic minor)."""
    tonic, mode = key_parts(key)
    steps = MAJOR_SCALE if mode == "major" else (*MINOR_SCALE, 11)
    return {(tonic + s) % 12 for s in steps}


def key_from_midi_number(number: int) -> str:
    """pretty_midi's key number (0-11 major, 12-23 minor) -> key name."""
    return key_name(number % 12, "major" if number < 12 else "minor")


def key_to_midi_number(key: str) -> int:
    tonic, mode = key_parts(key)
    return tonic + (0 if mode == "major" else 12)


def parse_note_name(text: str) -> int:
    """'C4' -> 60, 'F#5' -> 78, 'Bb3' -> 58, '60' -> 60 (scientific pitch notation, C4 = 60)."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        number = int(text)
    else:
        match = re.fullmatch(r"([A-Ga-g])([#b]*)(-?\d+)", text)
        if match is None:
            raise SeqpipeError(
                f"invalid note {text!r} (expected a name like C4, F#5, Bb3 or 0-127)"
            )
        letter, acc, octave = match.groups()
        number = 12 * (int(octave) + 1) + PITCH_CLASSES[letter.lower()]
        number += acc.count("#") - acc.count("b")
    if not 0 <= number <= 127:
        raise SeqpipeError(f"invalid note {text!r}: MIDI numbers run from 0 to 127")
    return number


def estimate_key(pitches: Iterable[int], weights: Iterable[float] | None = None) -> str:
    """Krumhansl-Schmuckler key finding: the key whose profile best correlates with the histogram."""
    import numpy as np

    pitches = list(pitches)
    hist = np.zeros(12)
    for p, w in zip(
        pitches, weights if weights is not None else [1.0] * len(pitches), strict=False
    ):
        hist[p % 12] += w
    best, best_r = "C major", -2.0
    for mode, profile in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1] if hist.std() > 0 else 0.0
            if r > best_r:
                best, best_r = key_name(tonic, mode), r
    return best


def in_key_fraction(pitches: Iterable[int]) -> float:
    """Share of notes inside the best-fitting diatonic scale (any of the 12 major scales)."""
    pitches = list(pitches)
    if not pitches:
        return 0.0
    counts = [0] * 12
    for p in pitches:
        counts[p % 12] += 1
    best = max(sum(counts[(t + s) % 12] for s in MAJOR_SCALE) for t in range(12))
    return best / len(pitches)
