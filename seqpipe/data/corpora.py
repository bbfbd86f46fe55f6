"""Public speech corpora in their own layouts -> manifest entries.

Each reader returns ``{"audio", "text", "duration", "speaker"}`` entries (plus ``"gender"``,
``"f"`` or ``"m"``, where the corpus says), sorted by audio path, the text normalised as
training reads it. A malformed line fails naming the file and the line number.

=============  ==============================================================================
LibriSpeech    ``<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt``: lines
               ``<utterance-id> <TEXT>``, audio ``<utterance-id>.flac`` beside it; speakers'
               sexes from ``SPEAKERS.TXT`` (in the subset folder or one above it)
CMU Sphinx     (AN4 and its kin) ``etc/<name>.transcription``: lines
               ``<s> TEXT </s> (<utterance-id>)``, paired in order with ``etc/<name>.fileids``
               (``<folder>/<speaker>/<utterance-id>``); audio under ``wav/``, NIST SPHERE
               ``.sph`` or ``.wav``
LJSpeech       ``metadata.csv``: lines ``<id>|<text>|<normalised text>``, audio ``wavs/<id>.wav``
Common Voice   a clip list (``train.tsv``, ``validated.tsv``...) whose header names
               ``client_id``, ``path`` and ``sentence`` (and ``gender``); audio under ``clips/``
Speech         ``<word>/<speaker>_nohash_<n>.wav``: one spoken word per clip, the folder
Commands       naming it (the test set's ``_unknown_/<word>_<speaker>_nohash_<n>.wav`` too;
               ``_background_noise_`` and ``_silence_`` are not speech)
Kaldi          a data directory (speechocean762, many recipes' ``data/train``): ``text``
               (``<utterance-id> TEXT``) and ``wav.scp`` (``<utterance-id> <audio path>``,
               relative to the directory or the one above it; piped commands are refused),
               ``utt2spk`` (``<utterance-id> <speaker>``) and ``spk2gender`` if present
=============  ==============================================================================
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

from seqpipe.errors import SeqpipeError

Entry = dict[str, Any]

SPHINX_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<id>[^()\s]+)\)\s*$")
SPHINX_MARKUP = re.compile(r"</?s>|<sil>|\+\+[^+]*\+\+|\[[^\]]*\]", re.IGNORECASE)
AN4_SPEAKER = re.compile(r"^[fm][a-z]{3}\d*$")  # AN4's speaker ids start with their sex


def read_librispeech(root: str | os.PathLike) -> list[Entry]:
    """A LibriSpeech subset folder (``train-clean-5``, ``dev-clean``...)."""
    root = _folder(root)
    genders = _librispeech_genders(root)
    entries = []
    for listing in sorted(root.rglob("*.trans.txt")):
        for number, line in _lines(listing):
            utterance, _, text = line.partition(" ")
            if not text.strip() or utterance.count("-") != 2:
                raise SeqpipeError(f"{listing}:{number}: expected '<speaker>-<chapter>-<n> TEXT'")
            speaker = utterance.split("-")[0]
            audio = _existing(listing.parent / f"{utterance}.flac", listing, number)
            entries.append(_entry(audio, text, speaker, genders.get(speaker)))
    if not entries:
        raise SeqpipeError(f"{root}: no LibriSpeech transcripts (*.trans.txt) found")
    return _sorted(entries)


def read_sphinx(
    transcription: str | os.PathLike,
    fileids: str | os.PathLike | None = None,
    audio_dir: str | os.PathLike | None = None,
) -> list[Entry]:
    """A CMU Sphinx ``.transcription`` file (its ``.fileids`` beside it, audio in ``../wav``)."""
    transcription = Path(transcription)
    fileids = Path(fileids) if fileids else transcription.with_suffix(".fileids")
    audio_dir = Path(audio_dir) if audio_dir else transcription.parent.parent / "wav"
    texts = list(_lines(transcription))
    ids = list(_lines(fileids))
    if len(texts) != len(ids):
        raise SeqpipeError(
            f"{transcription}: {len(texts)} transcripts but {fileids} lists {len(ids)} files"
        )
    entries = []
    for (number, line), (_, fileid) in zip(texts, ids, strict=True):
        match = SPHINX_LINE.match(line)
        if not match:
            raise SeqpipeError(f"{transcription}:{number}: expected '<s> TEXT </s> (utterance-id)'")
        if Path(fileid).name != match["id"]:
            raise SeqpipeError(
                f"{transcription}:{number}: utterance {match['id']!r} but {fileids} "
                f"lists {fileid!r} at that line"
            )
        parts = Path(fileid).parts
        speaker = parts[-2] if len(parts) >= 2 else match["id"]
        audio = next(
            (p for p in (audio_dir / f"{fileid}.sph", audio_dir / f"{fileid}.wav") if p.exists()),
            None,
        )
        if audio is None:
            raise SeqpipeError(
                f"{transcription}:{number}: no audio {audio_dir / fileid}.sph (or .wav)"
            )
        text = SPHINX_MARKUP.sub(" ", match["text"])
        entries.append(_entry(audio, text, speaker, None))
    if entries and all(AN4_SPEAKER.match(e["speaker"]) for e in entries):
        for entry in entries:
            entry["gender"] = entry["speaker"][0]
    return _sorted(entries)


def read_ljspeech(root: str | os.PathLike) -> list[Entry]:
    """An LJSpeech folder (``metadata.csv`` and ``wavs/``): one speaker, ``LJ``."""
    root = _folder(root)
    metadata = root / "metadata.csv"
    entries = []
    for number, line in _lines(metadata):
        fields = line.split("|")
        if len(fields) not in (2, 3) or not fields[-1].strip():
            raise SeqpipeError(f"{metadata}:{number}: expected 'id|text|normalised text'")
        audio = _existing(root / "wavs" / f"{fields[0]}.wav", metadata, number)
        entries.append(_entry(audio, fields[-1], "LJ", "f"))
    return _sorted(entries)


def read_commonvoice(tsv: str | os.PathLike, clips: str | os.PathLike | None = None) -> list[Entry]:
    """A Common Voice clip list (``train.tsv``...; audio in ``clips/`` beside it)."""
    tsv = Path(tsv)
    clips = Path(clips) if clips else tsv.parent / "clips"
    try:
        with tsv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (OSError, UnicodeDecodeError) as exc:
        raise SeqpipeError(f"{tsv}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if not rows or not {"client_id", "path", "sentence"} <= set(rows[0]):
        raise SeqpipeError(f"{tsv}:1: expected a header naming client_id, path and sentence")
    header = rows[0]
    entries = []
    for number, row in enumerate(rows[1:], 2):
        if not any(row):
            continue
        if len(row) != len(header):
            raise SeqpipeError(f"{tsv}:{number}: {len(row)} fields, the header has {len(header)}")
        fields = dict(zip(header, row, strict=True))
        if not fields["sentence"].strip():
            raise SeqpipeError(f"{tsv}:{number}: empty sentence")
        audio = _existing(clips / fields["path"], tsv, number)
        gender = fields.get("gender", "")[:1].lower()
        entries.append(_entry(audio, fields["sentence"], fields["client_id"], gender or None))
    return _sorted(entries)


def read_speechcommands(root: str | os.PathLike) -> list[Entry]:
    """A Speech Commands folder (v0.01, v0.02, or their test sets)."""
    root = _folder(root)
    entries = []
    for audio in sorted(root.glob("*/*.wav")):
        folder = audio.parent.name
        if folder in ("_background_noise_", "_silence_"):
            continue
        stem = audio.name.split(".", 1)[0]  # some copies are named x.wav.wav
        if folder == "_unknown_":
            folder, _, stem = stem.partition("_")
        speaker, marker, _ = stem.partition("_nohash_")
        if not marker or not folder:
            raise SeqpipeError(f"{audio}: expected a name like <speaker>_nohash_<n>.wav")
        entries.append(_entry(audio, folder.replace("_", " "), f"sc-{speaker}", None))
    if not entries:
        raise SeqpipeError(f"{root}: no Speech Commands clips (<word>/<speaker>_nohash_<n>.wav)")
    return _sorted(entries)


def read_kaldi(root: str | os.PathLike) -> list[Entry]:
    """A Kaldi data directory (``text``, ``wav.scp``; ``utt2spk``, ``spk2gender`` if there).
    Without ``utt2spk`` each utterance is its own speaker, as Kaldi has it."""
    root = _folder(root)
    texts = _kaldi_table(root / "text")
    audio = _kaldi_table(root / "wav.scp")
    speakers = _kaldi_table(root / "utt2spk") if (root / "utt2spk").exists() else {}
    genders = _kaldi_table(root / "spk2gender") if (root / "spk2gender").exists() else {}
    entries = []
    for utterance, (number, text) in texts.items():
        if utterance not in audio:
            raise SeqpipeError(f"{root / 'text'}:{number}: {utterance!r} is not in wav.scp")
        scp_line, path = audio[utterance]
        if path.endswith("|") or len(path.split()) > 1:
            raise SeqpipeError(
                f"{root / 'wav.scp'}:{scp_line}: a command, not an audio file; write the "
                "audio out (e.g. with sox) and list the files"
            )
        found = next((d / path for d in (root, root.parent) if (d / path).exists()), None)
        if found is None:
            raise SeqpipeError(f"{root / 'wav.scp'}:{scp_line}: no audio file {path}")
        speaker = speakers.get(utterance, (0, utterance))[1]
        gender = genders.get(speaker, (0, ""))[1].lower()
        entries.append(_entry(found, text, speaker, gender or None))
    if not entries:
        raise SeqpipeError(f"{root / 'text'}: no utterances")
    return _sorted(entries)


def _kaldi_table(path: Path) -> dict[str, tuple[int, str]]:
    """A Kaldi ``<key> <value>`` file: key -> (line number, value)."""
    table = {}
    for number, line in _lines(path):
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise SeqpipeError(f"{path}:{number}: expected '<key> <value>'")
        table[fields[0]] = (number, fields[1])
    return table


def _entry(audio: Path, text: str, speaker: str, gender: str | None) -> Entry:
    from seqpipe.audio import audio_duration
    from seqpipe.text import normalize

    entry = {
        "audio": str(audio),
        "text": normalize(text),
        "duration": round(audio_duration(audio), 3),
        "speaker": speaker,
    }
    if gender in ("f", "m"):
        entry["gender"] = gender
    return entry


def _librispeech_genders(root: Path) -> dict[str, str]:
    for folder in (root, root.parent):
        table = folder / "SPEAKERS.TXT"
        if table.exists():
            genders = {}
            for _, line in _lines(table):
                fields = [f.strip() for f in line.split("|")]
                if not line.startswith(";") and len(fields) >= 2 and fields[1] in ("F", "M"):
                    genders[fields[0]] = fields[1].lower()
            return genders
    return {}


def _lines(path: Path):
    """(line number, line) for each non-blank line of a text file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeqpipeError(
            f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _existing(audio: Path, listing: Path, number: int) -> Path:
    if not audio.exists():
        raise SeqpipeError(f"{listing}:{number}: no audio file {audio}")
    return audio


def _folder(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SeqpipeError(f"{root}: not a directory")
    return root


def _sorted(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: e["audio"])
