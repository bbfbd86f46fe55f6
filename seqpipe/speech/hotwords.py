"""Domain words (hotwords): names and terms a beam search should be able to write.

A CTC beam search with a lexicon writes only lexicon words, and its n-gram LM scores a
word it has never seen as ``<unk>`` (en-small's: one in ten million). :func:`boosted_lm`
writes a copy of the LM and its lexicon with each hotword added: spelled in the model's
characters, and as a unigram of log10 probability ``BASE_LOG10 + boost`` (a word already
in the LM keeps the higher of the two), so it competes with common words in any
context the LM backs off from. Nothing else in the LM changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from seqpipe.decoders.arpa import arpa_unigrams, lexicon_text, read_lexicon
from seqpipe.errors import ParameterError, SeqpipeError

BASE_LOG10 = -4.0  # a rare word of English in a 150k-word LM
BOOST = 1.5  # default: a hotword is as likely as a common word (1 in 300)


def hotword_list(hotwords: str | None = None, words: str | None = None) -> list[str]:
    """The words of ``hotwords`` ("Nguyen, seqpipe": commas or newlines between them)
    and of the file ``words`` (one or more a line), normalised as the speech models
    write text (lower case, digits spelled out), each once, in order."""
    from seqpipe.text import normalize

    text = hotwords or ""
    if words:
        try:
            text += "\n" + Path(words).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ParameterError("words", f"cannot read: {reason}", words) from None
    found = [w for phrase in re.split(r"[,\n]", text) for w in normalize(phrase).split()]
    return list(dict.fromkeys(found))


def boosted_lm(
    lm: Path | None,
    lexicon: Path | None,
    words: list[str],
    out_dir: Path,
    boost: float = BOOST,
) -> tuple[Path | None, Path]:
    """Copies of ``lm`` (ARPA; None: a lexicon-only search) and ``lexicon`` (None: spelled
    from the LM's unigrams) in ``out_dir`` with ``words`` added, in the LM at
    ``BASE_LOG10 + boost``; returns their paths (the LM's None without ``lm``)."""
    if lm is not None and lm.suffix.lower() != ".arpa":
        raise SeqpipeError(f"{lm}: hotwords need an ARPA language model (not a KenLM binary)")
    known = set(arpa_unigrams(lm)) if lm is not None else set()
    new = [w for w in words if w not in known]
    out_lm, out_lexicon = out_dir / "hotwords.arpa", out_dir / "hotwords.lexicon"
    if lm is not None:
        with open(lm, encoding="utf-8", errors="replace") as src, open(out_lm, "w") as dst:
            dst.writelines(_with_unigrams(src, set(words), new, BASE_LOG10 + boost))
    spelled = read_lexicon(lexicon) if lexicon else ((w, list(w)) for w in known)
    listed: set[str] = set()
    with open(out_lexicon, "w", encoding="utf-8") as dst:
        for word, spelling in spelled:
            listed.add(word)
            dst.write(f"{word}\t{' '.join(spelling)}\n")
        dst.write(lexicon_text(w for w in words if w not in listed))
    return (out_lm if lm is not None else None), out_lexicon


def _with_unigrams(lines: Iterable[str], boosted: set[str], new: list[str], logp: float):
    """An ARPA file's ``lines`` with the 1-gram count raised by ``len(new)``, the words of
    ``boosted`` raised to ``logp`` and ``new`` appended to the 1-grams at ``logp``."""
    section = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("\\"):
            section = stripped
        if section == "\\data\\" and stripped.startswith("ngram 1="):
            line = f"ngram 1={int(stripped.split('=')[1]) + len(new)}\n"
        elif section == "\\1-grams:" and not stripped:
            yield from (f"{logp:.7f}\t{w}\t0.0000000\n" for w in new)
            section = ""
        elif section == "\\1-grams:" and not stripped.startswith("\\"):
            line = _raised(line, boosted, logp)
        yield line


def _raised(line: str, boosted: set[str], logp: float) -> str:
    parts = line.split("\t")
    if len(parts) >= 2 and parts[1].strip() in boosted and float(parts[0]) < logp:
        parts[0] = f"{logp:.7f}"
        return "\t".join(parts)
    return line
