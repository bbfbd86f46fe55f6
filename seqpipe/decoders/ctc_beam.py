"""``ctc_beam``: CTC prefix beam search (flashlight-text through torchaudio), optional word LM.

Without ``lm`` it is a lexicon-free beam search over the model's tokens (optionally
restricted to the words of ``lexicon``). With ``lm`` (an ARPA file from
``seqpipe lm build``, or a KenLM binary) the search is constrained to a lexicon and
scores words with the n-gram model, which is where beam search earns its cost.
The lexicon defaults to ``<lm>.lexicon`` next to the LM, else the LM's own unigrams.

Relative ``lm``/``lexicon`` paths that do not exist are looked up in
``seqpipe/bundled/`` so a shipped bundle can name the LM shipped beside it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from seqpipe.decoders.ctc_greedy import ctc_posteriors
from seqpipe.decoders.hypothesis import DecodeOutput, Hypothesis, TokenText
from seqpipe.errors import SeqpipeError
from seqpipe.lm import SPECIAL_WORDS
from seqpipe.types import PositiveFloat, PositiveInt

SIL = "|"
BUNDLED = Path(__file__).resolve().parent.parent / "bundled"


def resolve_path(value: str | os.PathLike | None, what: str) -> Path | None:
    """An existing path as given, else the bundled file of that name; None stays None."""
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if path.exists():
        return path
    if not path.is_absolute() and (BUNDLED / path).exists():
        return BUNDLED / path
    raise SeqpipeError(f"{value}: {what} file not found")


def arpa_unigrams(path: Path) -> Iterator[str]:
    """Stream the words of an ARPA file's 1-gram section (never loads the whole file)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            inside = False
            for line in f:
                line = line.strip()
                if line == "\\1-grams:":
                    inside = True
                elif inside and (not line or line.startswith("\\")):
                    return
                elif inside:
                    parts = line.split()
                    if len(parts) >= 2:
                        yield parts[1]
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read language model: {exc.strerror}") from None
    if not inside:
        raise SeqpipeError(f"{path}: not an ARPA language model (no \\1-grams: section)")


def read_lexicon(path: Path) -> Iterator[tuple[str, list[str]]]:
    """``word spelling...`` lines (tab or space separated), as written by ``seqpipe lm build``."""
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) < 2:
                    raise SeqpipeError(f"{path}:{number}: lexicon line has a word but no spelling")
                yield parts[0], parts[1:]
    except OSError as exc:
        raise SeqpipeError(f"{path}: cannot read lexicon: {exc.strerror}") from None


@contextlib.contextmanager
def _silenced_fds() -> Iterator[None]:
    """Point file descriptors 1 and 2 at /dev/null (C++ code writes there directly)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


class CTCBeam:
    """Beam search over CTC posteriors with an optional lexicon and word n-gram LM."""

    def __init__(
        self,
        vocab: Sequence[str],
        blank: int = 0,
        beam_size: PositiveInt = 50,
        beam_size_token: PositiveInt | None = None,
        beam_threshold: PositiveFloat = 25.0,
        lm: str | None = None,
        lexicon: str | None = None,
        lm_weight: float = 1.0,
        word_score: float = 0.0,
        sil_score: float = 0.0,
        log_add: bool = False,
    ):
        self.text = TokenText(vocab, blank)
        self.blank = blank
        self.options = dict(
            beam_size=beam_size,
            beam_size_token=beam_size_token,
            beam_threshold=beam_threshold,
            lm_weight=lm_weight,
            word_score=word_score,
            sil_score=sil_score,
            log_add=log_add,  # sum (True) or max (False) over paths that merge into one prefix
        )
        self.lm_path = resolve_path(lm, "language model")
        self.lexicon_path = resolve_path(lexicon, "lexicon")
        if self.lm_path is not None and self.lexicon_path is None:
            sibling = self.lm_path.with_suffix(".lexicon")
            self.lexicon_path = sibling if sibling.exists() else None
        # flashlight names tokens by strings without spaces; the separator becomes "|"
        self.tokens = [f"<tok{i}>" if not t.strip() else t for i, t in enumerate(vocab)]
        if self.text.separator is not None:
            self.tokens[self.text.separator] = SIL
            self.extra_sil = False
        else:  # a word vocabulary: flashlight still needs a silence token; it is never emitted
            self.tokens.append(SIL)
            self.extra_sil = True
        self.token_index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.token_index) != len(self.tokens):
            raise SeqpipeError("ctc_beam: the vocabulary has duplicate tokens")
        self._decoder = None
        self.spellings: dict[str, list[str]] | None = None  # lexicon word -> its tokens

    # -- building the flashlight decoder -------------------------------------------

    def _spelling(self, word: str) -> list[str] | None:
        """How the model spells ``word`` in its tokens, or None if it cannot."""
        if not self.text.char_level:
            return [word] if word in self.token_index else None
        if any(c not in self.token_index or c == SIL for c in word):
            return None
        return list(word)

    def _lexicon_entries(self) -> dict[str, list[str]]:
        if self.lexicon_path is not None:
            source = self.lexicon_path
            pairs = (
                (w, s if self.token_index.keys() >= set(s) else None)
                for w, s in read_lexicon(self.lexicon_path)
            )
        else:
            source = self.lm_path
            pairs = ((w, self._spelling(w)) for w in arpa_unigrams(self.lm_path))
        entries: dict[str, list[str]] = {}
        for word, spelling in pairs:
            if word not in SPECIAL_WORDS and spelling is not None:
                entries.setdefault(word, spelling)
        if not entries:
            raise SeqpipeError(f"{source}: no word in it can be spelled with the model's tokens")
        return entries

    def _build(self):
        try:
            from torchaudio.models.decoder import ctc_decoder
        except (ImportError, RuntimeError):  # torchaudio raises RuntimeError when it is missing
            raise SeqpipeError(
                "CTC beam search needs the flashlight-text package: pip install flashlight-text"
            ) from None

        with tempfile.TemporaryDirectory(prefix="seqpipe-lex-") as tmp:
            lexicon_file = lm_dict = None
            if self.lm_path is not None or self.lexicon_path is not None:
                self.spellings = entries = self._lexicon_entries()
                lexicon_file = os.path.join(tmp, "lexicon.txt")
                lm_dict = os.path.join(tmp, "words.txt")  # the LM's words: lexicon + <unk>
                with open(lexicon_file, "w", encoding="utf-8") as f:
                    f.writelines(f"{w}\t{' '.join(s)}\n" for w, s in entries.items())
                with open(lm_dict, "w", encoding="utf-8") as f:
                    f.writelines(f"{w}\n" for w in [*entries, "<unk>"])
            try:
                with _silenced_fds():  # KenLM prints its loading progress on stdout/stderr
                    return ctc_decoder(
                        lexicon=lexicon_file,
                        tokens=self.tokens,
                        lm=str(self.lm_path) if self.lm_path else None,
                        lm_dict=lm_dict,
                        blank_token=self.tokens[self.blank],
                        sil_token=SIL,
                        **self.options,
                    )
            except (RuntimeError, ValueError) as exc:
                where = self.lm_path or self.lexicon_path or "ctc_beam"
                raise SeqpipeError(
                    f"{where}: cannot build the beam-search decoder: {exc}"
                ) from None

    def set_options(self, **changes: Any) -> None:
        """Change search options (beam_size, lm_weight, ...); the search is rebuilt lazily."""
        unknown = set(changes) - set(self.options)
        if unknown:
            raise SeqpipeError(f"ctc_beam: unknown option(s) {', '.join(sorted(unknown))}")
        self.options.update(changes)
        self._decoder = None

    @property
    def decoder(self):
        if self._decoder is None:
            self._decoder = self._build()
        return self._decoder

    # -- decoding --------------------------------------------------------------------

    def __call__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> list[Hypothesis]:
        """Decode log-probs [B,T,V] (CPU or not) with valid lengths [B]."""
        emissions = torch.log_softmax(log_probs.float(), dim=-1).cpu()
        if self.extra_sil:
            pad = emissions.new_full((*emissions.shape[:2], 1), -1e9)
            emissions = torch.cat([emissions, pad], dim=-1)
        B, T, _ = emissions.shape
        lengths = torch.full((B,), T) if lengths is None else torch.as_tensor(lengths).cpu()
        results = self.decoder(emissions.contiguous(), lengths.to(torch.int32))
        hyps = []
        for nbest in results:
            if not nbest:
                hyps.append(Hypothesis(text="", tokens=[], score=float("-inf")))
                continue
            best = nbest[0]
            tokens = [int(t) for t in best.tokens]
            # flashlight's path starts with one extra (start) frame
            frames = [max(0, int(f) - 1) for f in best.timesteps]
            keep = [i for i, t in enumerate(tokens) if t < len(self.text.vocab)]
            tokens, frames = [tokens[i] for i in keep], [frames[i] for i in keep]
            # drop leading/trailing separators flashlight emits as silence
            while tokens and tokens[0] == self.text.separator:
                tokens, frames = tokens[1:], frames[1:]
            while tokens and tokens[-1] == self.text.separator:
                tokens, frames = tokens[:-1], frames[:-1]
            if self.spellings is not None and best.words:
                # lexicon search: the words are the answer; the frame path may merge
                # repeated letters, so spell the words out again for alignment
                tokens, frames = self._spell(best.words), []
            hyps.append(
                Hypothesis(
                    text=self.text.text(tokens),
                    tokens=tokens,
                    score=float(best.score),
                    frames=frames,
                )
            )
        return hyps

    def _spell(self, words: list[str]) -> list[int]:
        tokens: list[int] = []
        for word in words:
            if tokens and self.text.separator is not None:
                tokens.append(self.text.separator)
            tokens += [self.token_index[t] for t in self.spellings.get(word, []) if t != SIL]
        return tokens

    def decode_batch(
        self, model: torch.nn.Module, feats: torch.Tensor, feat_lengths: torch.Tensor
    ) -> DecodeOutput:
        log_probs, lengths, ratio = ctc_posteriors(model, feats, feat_lengths)
        return DecodeOutput(self(log_probs, lengths), log_probs, lengths, ratio)
