"""``ctc_beam``: CTC prefix beam search (flashlight-text), optional word LM.

Without ``lm`` it is a lexicon-free beam search over the model's tokens (optionally
restricted to the words of ``lexicon``). With ``lm`` (an ARPA file from
``seqpipe lm build``, or a KenLM binary) the search is constrained to a lexicon and
scores words with the n-gram model, which is where beam search earns its cost.
``rescore: N`` then scores the final beam's N best distinct word sequences again with
their exact CTC likelihood: the search sums only the paths it kept alive, and on
en-small this second look took 1.4 points of WER off voices it never heard.
The lexicon defaults to ``<lm>.lexicon`` next to the LM, else the LM's own unigrams.

Relative ``lm``/``lexicon`` paths that do not exist are looked up in
``seqpipe/bundled/`` so a shipped bundle can name the LM shipped beside it.

The LM and the lexicon trie are built once and shared read-only; each search thread has a
flashlight decoder of its own (they hold per-utterance state), so a batch's utterances
are searched on all CPU cores at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import torch

from seqpipe.decoders.arpa import SPECIAL_WORDS, arpa_unigrams, read_lexicon
from seqpipe.decoders.ctc_greedy import ctc_posteriors
from seqpipe.decoders.hypothesis import DecodeOutput, Hypothesis, SettledText, TokenText
from seqpipe.errors import SeqpipeError
from seqpipe.types import NonNegativeInt, PositiveFloat, PositiveInt

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


def ctc_log_likelihoods(
    emissions: Sequence[torch.Tensor], targets: Sequence[list[int]], blank: int
) -> torch.Tensor:
    """log P(targets[i] | emissions[i]) under CTC, every alignment summed, for each pair of
    [T_i, V] log-probs and token ids: one batched ``ctc_loss`` call."""
    frames = torch.tensor([e.shape[0] for e in emissions])
    batch = emissions[0].new_zeros(int(frames.max()), len(emissions), emissions[0].shape[1])
    for j, e in enumerate(emissions):
        batch[: e.shape[0], j] = e
    return -torch.nn.functional.ctc_loss(
        batch,
        torch.tensor([t for target in targets for t in target], dtype=torch.long),
        frames,
        torch.tensor([len(t) for t in targets]),
        blank=blank,
        reduction="none",
    )


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


class _Shared(NamedTuple):
    """What all of a decoder's searches share: read-only while they run."""

    lm: Any
    trie: Any  # None for a lexicon-free search
    words: Any  # the LM's word dictionary (None without a lexicon)
    spellings: dict[str, list[int]]  # lexicon word -> its token ids (empty without one)
    silence: int


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
        rescore: NonNegativeInt = 0,
        rescore_word_score: float | None = None,
        threads: PositiveInt | None = None,
    ):
        """``rescore``: how many distinct word sequences of the final beam to score again
        (lexicon search only; 0: keep the search's own best), with ``rescore_word_score``
        in place of ``word_score`` if given. ``threads``: utterances searched side by side
        (default: torch's CPU threads)."""
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
            rescore=rescore,
            rescore_word_score=rescore_word_score,
        )
        self.lm_path = resolve_path(lm, "language model")
        self.lexicon_path = resolve_path(lexicon, "lexicon")
        if self.lm_path is not None and self.lexicon_path is None:
            sibling = self.lm_path.with_suffix(".lexicon")
            self.lexicon_path = sibling if sibling.exists() else None
        self._check_rescore()
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
        self.threads = threads
        self._resources: _Shared | None = None
        self._idle: queue.SimpleQueue = queue.SimpleQueue()  # searches not in use
        self._pool: tuple[int, ThreadPoolExecutor] | None = None  # (threads, pool)

    # -- building the search ---------------------------------------------------------

    def _ids(self, tokens: Iterable[str]) -> list[int] | None:
        """Token ids of a spelling, or None if the model has no such token."""
        ids = [self.token_index.get(t) for t in tokens]
        return None if None in ids else ids

    def _spelling(self, word: str) -> list[int] | None:
        """How the model spells ``word`` in its tokens, or None if it cannot."""
        if not self.text.char_level:
            return self._ids([word])
        return None if SIL in word else self._ids(word)

    def _lexicon_entries(self) -> dict[str, list[int]]:
        if self.lexicon_path is not None:
            source = self.lexicon_path
            pairs = ((w, self._ids(s)) for w, s in read_lexicon(self.lexicon_path))
        else:
            source = self.lm_path
            pairs = ((w, self._spelling(w)) for w in arpa_unigrams(self.lm_path))
        entries: dict[str, list[int]] = {}
        for word, spelling in pairs:
            if word not in SPECIAL_WORDS and spelling is not None:
                entries.setdefault(word, spelling)
        if not entries:
            raise SeqpipeError(f"{source}: no word in it can be spelled with the model's tokens")
        return entries

    def load(self) -> None:
        """Read the LM and lexicon now (they are otherwise read on first use)."""
        self._resources = None
        self._idle = queue.SimpleQueue()
        self._shared()

    def _shared(self) -> _Shared:
        """Load the LM and build the lexicon trie once; every search thread reads them."""
        if self._resources is not None:
            return self._resources
        try:
            from flashlight.lib.text import decoder as fl
            from flashlight.lib.text.dictionary import Dictionary
        except ImportError:
            raise SeqpipeError(
                "CTC beam search needs the flashlight-text package: pip install flashlight-text"
            ) from None
        silence = self.token_index[SIL]
        if self.lm_path is None and self.lexicon_path is None:
            self._resources = _Shared(fl.ZeroLM(), None, None, {}, silence)
            return self._resources
        entries = self._lexicon_entries()
        words = Dictionary([*entries, "<unk>"])  # the LM's word ids
        lm = fl.ZeroLM() if self.lm_path is None else self._kenlm(words)
        trie = fl.Trie(len(self.tokens), silence)
        start = lm.start(False)
        for word, spelling in entries.items():
            index = words.get_index(word)
            trie.insert(spelling, index, lm.score(start, index)[1])
        trie.smear(fl.SmearingMode.MAX)
        self._resources = _Shared(lm, trie, words, entries, silence)
        return self._resources

    def _kenlm(self, words):
        try:
            from flashlight.lib.text.decoder.kenlm import KenLM
        except ImportError:
            raise SeqpipeError(
                "ctc_beam: this flashlight-text build has no KenLM support"
            ) from None
        try:
            with _silenced_fds():  # KenLM prints its loading progress on stdout/stderr
                return KenLM(str(self.lm_path), words)
        except (RuntimeError, ValueError) as exc:  # KenLM's last line says what is wrong
            reason = (str(exc).strip().splitlines() or ["unreadable"])[-1]
            raise SeqpipeError(
                f"{self.lm_path}: cannot load the language model: {reason}"
            ) from None

    def _new_search(self):
        """A flashlight decoder: per-call state of its own, trie and LM shared."""
        from flashlight.lib.text import decoder as fl

        shared, o = self._shared(), self.options
        common = dict(
            beam_size=o["beam_size"],
            beam_size_token=o["beam_size_token"] or len(self.tokens),
            beam_threshold=o["beam_threshold"],
            lm_weight=o["lm_weight"],
            sil_score=o["sil_score"],
            log_add=o["log_add"],
            criterion_type=fl.CriterionType.CTC,
        )
        if shared.trie is None:
            options = fl.LexiconFreeDecoderOptions(**common)
            return fl.LexiconFreeDecoder(options, shared.lm, shared.silence, self.blank, [])
        options = fl.LexiconDecoderOptions(
            **common, word_score=o["word_score"], unk_score=float("-inf")
        )
        unk = shared.words.get_index("<unk>")
        return fl.LexiconDecoder(
            options, shared.trie, shared.lm, shared.silence, self.blank, unk, [], False
        )

    def set_options(self, **changes: Any) -> None:
        """Change search options (beam_size, lm_weight, ...); LM and lexicon stay loaded."""
        unknown = set(changes) - set(self.options)
        if unknown:
            raise SeqpipeError(f"ctc_beam: unknown option(s) {', '.join(sorted(unknown))}")
        self.options.update(changes)
        self._check_rescore()
        self._idle = queue.SimpleQueue()

    def _check_rescore(self) -> None:
        if self.options["rescore"] and self.lm_path is None and self.lexicon_path is None:
            raise SeqpipeError(
                "ctc_beam: rescore needs words to rescore: give it an lm or a lexicon"
            )

    def _search(self, emissions: torch.Tensor) -> list:
        """The final beam of one utterance's [T,V] emissions, best first."""
        idle = self._idle  # set_options swaps in a new queue: older searches retire with it
        try:
            search = idle.get_nowait()
        except queue.Empty:
            search = self._new_search()
        try:  # flashlight releases the GIL here, so threads search side by side
            return search.decode(emissions.data_ptr(), *emissions.shape)
        finally:
            idle.put(search)

    def _best_path(self, results: list) -> tuple[list[int], list[int], list[str], float]:
        """The search's own best: (tokens, frames, words, score)."""
        if not results:
            return [], [], [], float("-inf")
        best, words = results[0], self._resources.words
        tokens, frames, previous = [], [], None
        # the path has one token per frame, plus a start frame first
        for frame, token in enumerate(best.tokens):
            if token != self.blank and token != previous:
                tokens.append(token)
                frames.append(max(0, frame - 1))
            previous = token
        names = [words.get_entry(w) for w in best.words if w >= 0] if words else []
        return tokens, frames, names, float(best.score)

    def distinct_words(self, results: list) -> list[tuple[list[str], float]]:
        """The final beam's first ``rescore`` distinct word sequences, best first, each
        with its (unweighted) LM score."""
        words, out, seen = self._resources.words, [], set()
        for result in results:
            text = [words.get_entry(w) for w in result.words if w >= 0]
            if tuple(text) not in seen:
                seen.add(tuple(text))
                out.append((text, result.lmScore))
                if len(out) == self.options["rescore"]:
                    break
        return out

    def _rescore(
        self, beams: list[list], emissions: list[torch.Tensor]
    ) -> list[tuple[list[int], list[int], list[str], float]]:
        """Each beam's best distinct word sequence by exact CTC log-likelihood + weighted
        LM score + word score, all candidates of the batch in one call, outside the
        search threads (inside them, ``ctc_loss`` fights the searches for the cores)."""
        o = self.options
        word_score = o["word_score"] if o["rescore_word_score"] is None else o["rescore_word_score"]
        candidates = [
            (b, *c) for b, results in enumerate(beams) for c in self.distinct_words(results)
        ]
        picks = [([], [], [], float("-inf"))] * len(beams)
        if not candidates:
            return picks
        acoustic = ctc_log_likelihoods(
            [emissions[b] for b, _, _ in candidates],
            [self._spell(text) for _, text, _ in candidates],
            self.blank,
        ).tolist()
        for (b, text, lm), am in zip(candidates, acoustic, strict=True):
            score = am + o["lm_weight"] * lm + word_score * len(text)
            if score > picks[b][3]:
                picks[b] = ([], [], text, score)
        return picks

    def _map(self, items: list[torch.Tensor]) -> list:
        threads = self.threads or torch.get_num_threads()
        if threads < 2 or len(items) < 2:
            return [self._search(item) for item in items]
        if self._pool is None or self._pool[0] != threads:
            self._pool = threads, ThreadPoolExecutor(threads, thread_name_prefix="ctc-beam")
        return list(self._pool[1].map(self._search, items))

    # -- decoding --------------------------------------------------------------------

    def __call__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> list[Hypothesis]:
        """Decode log-probs [B,T,V] (CPU or not) with valid lengths [B]."""
        emissions = self._emissions(log_probs)
        B, T, _ = emissions.shape
        lengths = [T] * B if lengths is None else torch.as_tensor(lengths).tolist()
        self._shared()  # build once, before any thread needs it
        items = [emissions[b, : int(n)].contiguous() for b, n in enumerate(lengths)]
        beams = self._map(items)
        if self.options["rescore"]:
            found = self._rescore(beams, items)
        else:
            found = [self._best_path(results) for results in beams]
        hyps = []
        for tokens, frames, words, score in found:
            keep = [i for i, t in enumerate(tokens) if t < len(self.text.vocab)]
            tokens, frames = [tokens[i] for i in keep], [frames[i] for i in keep]
            # drop leading/trailing separators flashlight emits as silence
            while tokens and tokens[0] == self.text.separator:
                tokens, frames = tokens[1:], frames[1:]
            while tokens and tokens[-1] == self.text.separator:
                tokens, frames = tokens[:-1], frames[:-1]
            if words:
                # lexicon search: the words are the answer; the frame path may merge
                # repeated letters, so spell the words out again for alignment
                tokens, frames = self._spell(words), []
            hyps.append(
                Hypothesis(text=self.text.text(tokens), tokens=tokens, score=score, frames=frames)
            )
        return hyps

    def _emissions(self, log_probs: torch.Tensor) -> torch.Tensor:
        """Log-softmaxed float CPU emissions [..., V'] as flashlight reads them (a word
        vocabulary gets the silence column it never emits)."""
        emissions = torch.log_softmax(log_probs.float(), dim=-1).cpu()
        if self.extra_sil:
            pad = emissions.new_full((*emissions.shape[:-1], 1), -1e9)
            emissions = torch.cat([emissions, pad], dim=-1)
        return emissions

    def stream(self, settle_frames: int | None = None, margin: float = 3.0) -> BeamStream:
        """A live search (``decoders.base.FrameStream``) over frames fed chunk by chunk.

        ``settle_frames`` None (a search with words): a word is final once every path in
        the beam within ``margin`` (log-probability) of the best has it, and ``rescore``
        picks the rest at the end among the paths that agree with it: with a wide margin,
        what the search and rescoring of the whole utterance would give. A number
        (or a lexicon-free search, 5): once the best path has had it that many frames,
        and the search is pruned there (faster to settle; no rescoring)."""
        shared = self._shared()
        if settle_frames is None and shared.words is None:
            settle_frames = 5
        return BeamStream(self, self._new_search(), settle_frames, margin)

    def _spell(self, words: list[str]) -> list[int]:
        shared, tokens = self._resources, []
        for word in words:
            if tokens and self.text.separator is not None:
                tokens.append(self.text.separator)
            tokens += [t for t in shared.spellings.get(word, []) if t != shared.silence]
        return tokens

    def decode_batch(
        self, model: torch.nn.Module, feats: torch.Tensor, feat_lengths: torch.Tensor
    ) -> DecodeOutput:
        log_probs, lengths, ratio = ctc_posteriors(model, feats, feat_lengths)
        return DecodeOutput(self(log_probs, lengths), log_probs, lengths, ratio)


class BeamStream:
    """One utterance's beam search, fed as its frames arrive (flashlight's
    ``decode_begin`` / ``decode_step`` / ``decode_end``).

    Agreement (``settle_frames`` None): ``settle()`` makes final the words that every
    path within ``margin`` of the best starts with; at a pause (``settle(pause=True)``)
    and at the end, ``rescore`` picks the rest among the paths that agree with them, over
    every frame so far, as the offline search does. (A word is emitted at its last
    letter, so a path that may still spell a longer word, "one" -> "once", keeps the
    beam from agreeing on it until the next word starts or the speaker pauses.)
    Look-back (a number): ``settle()`` takes the best path up to the last word it
    completed at least ``settle_frames`` frames ago, makes those words final and prunes
    the search there (wav2letter's streaming inference): every path the search keeps
    continues from that point, and there is no rescoring.
    """

    def __init__(self, beam: CTCBeam, search, settle_frames: int | None, margin: float = 3.0):
        self.beam, self.search, self.margin = beam, search, margin
        self.look_back = None if settle_frames is None else max(0, int(settle_frames))
        self.words = beam._resources.words  # None: a lexicon-free search spells words
        self.path = SettledText(beam.text)  # lexicon-free: the final tokens
        self.final: list[str] = []  # lexicon search: the final words
        self.final_ids: list[int] = []  # agreement: their ids
        self.emissions: list[torch.Tensor] = []  # agreement: for rescoring at the end
        search.decode_begin()

    def step(self, log_probs: torch.Tensor) -> None:
        emissions = self.beam._emissions(log_probs).contiguous()
        if self.look_back is None:
            self.emissions.append(emissions)
        self.search.decode_step(emissions.data_ptr(), *emissions.shape)

    def _read(self, result) -> tuple[list[str], list[int]]:
        """Words and (collapsed) tokens of a path after its first frame, which is the
        start state or the point the search was last pruned at, already read."""
        words = [self.words.get_entry(w) for w in result.words[1:] if w >= 0] if self.words else []
        tokens, previous = [], result.tokens[0] if len(result.tokens) else None
        for token in result.tokens[1:]:
            if token != self.beam.blank and token != previous and token < len(self.beam.text.vocab):
                tokens.append(token)
            previous = token
        return words, tokens

    def _commit(self, result, everything: bool = False) -> list[str]:
        words, tokens = self._read(result)
        if self.words is not None:
            self.final += words
            return words
        self.path.tokens += tokens
        return self.path.settle(everything)

    def _agreeing(self) -> list:
        """The beam's paths that start with the final words, best first."""
        done = self.final_ids
        return [
            r for r in self.search.get_all_final_hypothesis() if _word_ids(r)[: len(done)] == done
        ]

    def _agreed(self) -> list[int]:
        """The word ids after the final ones that every path within ``margin`` of the
        best starts with."""
        beam = self._agreeing()
        if not beam:
            return []
        floor, done, common = max(r.score for r in beam) - self.margin, len(self.final_ids), None
        for result in beam:
            if result.score < floor:
                continue
            ids = _word_ids(result)[done:]
            if common is not None:
                n = next(
                    (i for i, (a, b) in enumerate(zip(common, ids, strict=False)) if a != b), None
                )
                ids = common[: min(len(common), len(ids)) if n is None else n]
            common = ids
            if not common:
                break
        return common or []

    def _decided(self, beam: list) -> list[int]:
        """The word ids of the best of ``beam``, rescored over every frame so far if the
        decoder rescores."""
        if not beam:
            return list(self.final_ids)
        if not (self.beam.options["rescore"] and self.emissions):
            return _word_ids(beam[0])
        words = self.beam._rescore([beam], [torch.cat(self.emissions)])[0][2]
        index = {self.words.get_entry(w): w for r in beam for w in _word_ids(r)}
        return [index[w] for w in words]

    def _take(self, ids: list[int]) -> list[str]:
        if ids[: len(self.final_ids)] != self.final_ids:  # no agreeing path was left
            return []
        new = [self.words.get_entry(w) for w in ids[len(self.final_ids) :]]
        self.final_ids, self.final = list(ids), self.final + new
        return new

    def settle(self, pause: bool = False) -> list[str]:
        """``pause``: the speaker has paused, so the words so far are all final (the best
        path's, rescored, among those that agree with the final words)."""
        if self.look_back is None:
            if pause:
                return self._take(self._decided(self._agreeing()))
            return self._take(self.final_ids + self._agreed())
        look_back = 0 if pause else self.look_back
        result = self.search.get_best_hypothesis(look_back)
        if len(result.words) <= 1:  # nothing old enough: the search is not pruned either
            return []
        self.search.prune(look_back)
        return self._commit(result, everything=pause)

    def pending(self) -> list[str]:
        words, tokens = self._read(self.search.get_best_hypothesis(0))
        if self.look_back is None:
            return words[len(self.final) :]
        if self.words is not None:
            return words
        text = self.beam.text.text(self.path.tokens + tokens).split()
        return text[self.path.reported :]

    def end(self) -> list[str]:
        self.search.decode_end()
        if self.look_back is not None:
            return self._commit(self.search.get_best_hypothesis(0), everything=True)
        agreeing = self._agreeing()
        if agreeing:
            return self._take(self._decided(agreeing))
        # every path that agreed with the final words has left the beam: the best path's
        # words after the last of them it shares
        import difflib

        words, _ = self._read(self.search.get_best_hypothesis(0))
        match = difflib.SequenceMatcher(None, self.final, words, autojunk=False)
        shared = [m.b + m.size for m in match.get_matching_blocks() if m.size]
        new = words[max(shared, default=0) :]
        self.final += new
        return new


def _word_ids(result) -> list[int]:
    """The word ids a flashlight path emitted (its per-frame list holds -1 elsewhere)."""
    return [w for w in result.words if w >= 0]
