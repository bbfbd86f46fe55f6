"""What to generate: a :class:`Request`, and the primer and meter texts users type.

Everything that can be refused is refused here, before a model is loaded. Errors name
the parameter as the Python API spells it (:class:`seqpipe.errors.ParameterError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqpipe.errors import ParameterError
from seqpipe.midi import TPQ, Note

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")  # a recording primer is transcribed
STEP_TICKS = TPQ // 4  # steps count 16th notes, whatever the encoding
MAX_BARS = 1000  # bars (and steps / 16): longer requests are refused, not run for hours
MAX_MELODIES = 1000


@dataclass
class Request:
    """What to generate; None means "let the model choose" (key, meter, tempo)."""

    n: int = 1
    bars: int | None = 16
    steps: int | None = None  # 16th notes; overrides bars
    key: str | None = None
    time_signature: tuple[int, int] | None = None
    tempo: float | None = None
    primer: list[Note] | None = None
    scale: bool = False  # keep every note inside the key's scale (needs key)
    seed: int = 0


def parse_meter(text: str | None) -> tuple[int, int] | None:
    """``'6/8'`` -> ``(6, 8)``; None stays None (the model picks)."""
    if text is None:
        return None
    num, slash, den = text.partition("/")
    if not slash or not num.strip().isdigit() or not den.strip().isdigit():
        raise ParameterError("meter", "expected a time signature like 4/4 or 6/8", repr(text))
    return int(num), int(den)


def parse_primer(text: str, time_signature: tuple[int, int] = (4, 4)) -> list[Note]:
    """A MIDI file, a recording of a melody (transcribed), or note names / MIDI numbers
    ('C4 E4 G4', '60 64 67', 'r' for a rest).

    Each named note lasts one beat of the meter (a quarter in 4/4, an eighth in 6/8).
    """
    from pathlib import Path

    from seqpipe.errors import SeqpipeError
    from seqpipe.midi import read_midi
    from seqpipe.theory import parse_note_name

    path = Path(text)
    if path.suffix.lower() in (".mid", ".midi"):
        if not path.exists():
            raise ParameterError("primer", "no such file", text)
        return read_midi(path).notes
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return audio_primer(path).notes
    beat = 4 * TPQ // time_signature[1]
    notes, time = [], 0
    items = text.replace(",", " ").split()
    if not items:
        raise ParameterError("primer", "empty (give note names like 'C4 E4 G4' or a .mid file)")
    for item in items:
        if item.lower() not in ("r", "rest"):
            try:
                notes.append(Note(parse_note_name(item), time, beat))
            except SeqpipeError as exc:
                raise ParameterError("primer", str(exc)) from None
        time += beat
    return notes


def audio_primer(path: Path):
    """A recording's melody, transcribed by the bundled ``melody`` model (once per file),
    on a 16th-note grid at the recording's tempo."""
    from seqpipe.errors import SeqpipeError
    from seqpipe.music.melody_transcriber import notes_to_melody, recording_notes

    if not path.exists():
        raise ParameterError("primer", "no such file", str(path))
    try:
        notes, tempo = recording_notes(path)
    except SeqpipeError as exc:
        raise ParameterError("primer", str(exc)) from None
    if not len(notes):
        raise ParameterError("primer", "no notes heard in the recording", str(path))
    return notes_to_melody(notes, tempo, name=path.stem)


def primer_facts(text: str) -> dict:
    """The meter, tempo and key a .mid primer's file states (``{}`` for note names; a key
    only if the file has a key signature)."""
    from pathlib import Path

    from seqpipe.midi import read_midi

    path = Path(text)
    if path.suffix.lower() in AUDIO_SUFFIXES and path.exists():
        return {"tempo": audio_primer(path).tempo}
    if path.suffix.lower() not in (".mid", ".midi") or not path.exists():
        return {}
    melody = read_midi(path)
    facts = {"time_signature": tuple(melody.time_signature), "tempo": float(melody.tempo)}
    return {**facts, "key": melody.key} if melody.key else facts


def check_request(request: Request) -> int | None:
    """Refuse what cannot be generated, before any model is loaded; returns the length in
    ticks when the request fixes it (``steps``, or ``bars`` with a meter)."""
    from seqpipe.errors import SeqpipeError
    from seqpipe.theory import parse_key

    n, steps, bars = request.n, request.steps, request.bars
    if n < 1:
        raise ParameterError("n", "need at least one melody", n)
    if n > MAX_MELODIES:
        raise ParameterError("n", f"at most {MAX_MELODIES} melodies in one call", n)
    if steps is not None and steps <= 0:
        raise ParameterError("steps", "length must be positive", steps)
    if steps is not None and steps > MAX_BARS * 16:
        raise ParameterError("steps", f"at most {MAX_BARS * 16} (16th notes)", steps)
    if steps is None and (bars is None or bars <= 0):
        raise ParameterError("bars", "length must be positive", bars)
    if steps is None and bars > MAX_BARS:
        raise ParameterError("bars", f"at most {MAX_BARS} bars", bars)
    try:
        key = parse_key(request.key) if request.key else None
    except SeqpipeError as exc:
        raise ParameterError("key", str(exc)) from None
    if request.scale and key is None:
        raise ParameterError("scale", "needs {key} (the scale to keep to)")
    ts = request.time_signature
    if ts is not None and (ts[0] <= 0 or ts[1] not in (1, 2, 4, 8, 16, 32)):
        raise ParameterError("meter", "not a valid time signature", f"{ts[0]}/{ts[1]}")
    if request.tempo is not None and not 10 <= request.tempo <= 400:
        raise ParameterError("tempo", "expected 10-400 quarter notes per minute", request.tempo)
    target = None
    if steps is not None:
        target = steps * STEP_TICKS
    elif ts is not None:
        target = bars * ts[0] * 4 * TPQ // ts[1]
    end = request.primer[-1].end if request.primer else 0
    # without a meter the model picks one: the primer must fit the longest bar (8/4)
    if end > (target if target is not None else bars * 8 * TPQ):
        length = f"{steps} steps" if steps is not None else f"{bars} bar(s)"
        raise ParameterError(
            "primer", f"longer than the requested length ({end / TPQ:g} quarter notes; {length})"
        )
    return target


def make_request(
    n: int = 1, bars: int | None = 16, steps: int | None = None, key: str | None = None,
    meter: str | tuple[int, int] | None = None, tempo: float | None = None,
    primer: str | list[Note] | None = None, scale: bool = False, seed: int = 0,
) -> Request:  # fmt: skip
    """A checked Request from what a user types: ``meter`` as ``'6/8'``, ``primer`` as note
    names or a .mid file (either may also be given parsed). A .mid primer's own meter,
    tempo and key are kept where ``meter``/``tempo``/``key`` do not say otherwise."""
    ts = parse_meter(meter) if isinstance(meter, str) else meter
    if isinstance(primer, str):
        facts = primer_facts(primer)
        ts = ts or facts.get("time_signature")
        tempo = tempo if tempo is not None else facts.get("tempo")
        key = key or facts.get("key")
        primer = parse_primer(primer, ts or (4, 4))
    request = Request(n=n, bars=bars, steps=steps, key=key, time_signature=ts, tempo=tempo,
                      primer=primer, scale=scale, seed=seed)  # fmt: skip
    check_request(request)
    return request
