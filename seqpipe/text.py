"""Text normalisation and the character vocabulary for speech.

Training targets and scoring references go through the same :func:`normalize`, so a
model is never penalised for writing "seven" where a transcript said "7".
"""

from __future__ import annotations

import re
import unicodedata

ONES = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = [(10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")]

#: the characters a speech model writes; index 0 is the CTC blank
BLANK = "<b>"
CHARS = list(" abcdefghijklmnopqrstuvwxyz'")
VOCAB = [BLANK, *CHARS]


def number_to_words(n: int) -> str:
    """Spell a non-negative integer in English words ("21" -> "twenty one")."""
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        tens, ones = divmod(n, 10)
        return TENS[tens] + (f" {ONES[ones]}" if ones else "")
    for value, word in SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return f"{number_to_words(high)} {word}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _spell_number(match: re.Match) -> str:
    digits = match.group(0)
    # long digit strings (phone numbers, codes) and leading zeros are read digit by digit
    if len(digits) > 4 or (len(digits) > 1 and digits[0] == "0"):
        return " " + " ".join(ONES[int(d)] for d in digits) + " "
    return " " + number_to_words(int(digits)) + " "


def normalize(text: str) -> str:
    """Lower-case, spell digits out, drop punctuation, squeeze spaces.

    Apostrophes inside words survive ("don't"); everything else that is not a letter
    becomes a space. Accented letters lose their accents ("café" -> "cafe").
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("\u2019", "'").replace("&", " and ").replace("%", " percent ")
    text = re.sub(r"\d+", _spell_number, text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)  # quotes, not apostrophes
    return " ".join(text.split())


def encode(text: str) -> list[int]:
    """Normalised text -> character ids (1..len(CHARS)); unknown characters are dropped."""
    index = {c: i for i, c in enumerate(VOCAB)}
    return [index[c] for c in normalize(text) if c in index]


def decode(ids: list[int]) -> str:
    """Character ids -> text (blanks and out-of-range ids are skipped)."""
    return "".join(VOCAB[i] for i in ids if 0 < i < len(VOCAB))
