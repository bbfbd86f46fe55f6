"""``seqpipe lm build``: ARPA n-gram models and lexicons from text."""

import math

from click.testing import CliRunner

from seqpipe.cli import build_cli
from seqpipe.speech.ngram_lm import build_arpa


def read_arpa(path, backoffs=None):
    """(counts, {order: {ngram: log10 p}}); back-off weights go into ``backoffs`` if given."""
    sections, counts, current = {}, {}, None
    for line in path.read_text().splitlines():
        if line.startswith("ngram "):
            n, c = line[6:].split("=")
            counts[int(n)] = int(c)
        elif line.endswith("-grams:"):
            current = int(line[1])
            sections[current] = {}
        elif current and line.strip() and not line.startswith("\\"):
            parts = line.split("\t")
            sections[current][parts[1]] = float(parts[0])
            if backoffs is not None and len(parts) > 2:
                backoffs[parts[1]] = float(parts[2])
    return counts, sections


def test_arpa_is_normalised_and_consistent(tmp_path):
    out = tmp_path / "lm.arpa"
    stats = build_arpa(
        ["Hello, World!", "the world is 42", "hello there", "the world"], out, order=3
    )
    counts, sections = read_arpa(out)
    assert {n: len(s) for n, s in sections.items()} == counts == stats.ngrams
    unigrams = sections[1]
    assert "forty" in unigrams and "42" not in unigrams and "hello," not in unigrams
    assert unigrams["<unk>"] == -100.0  # present, so KenLM loads it quietly
    # the unigram distribution (without <s>, which is never predicted) sums to one
    total = sum(10**p for w, p in unigrams.items() if w != "<s>")
    assert math.isclose(total, 1.0, rel_tol=1e-4)
    # seen trigrams get a real probability even though nothing was seen twice
    assert all(p > -5 for p in sections[3].values())
    assert (tmp_path / "lm.lexicon").read_text().splitlines()[0] == "forty\tf o r t y"


def test_kenlm_scores_seen_better_than_unseen(tmp_path):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    out = tmp_path / "lm.arpa"
    build_arpa(["the cat sat", "the cat ran", "a dog sat"] * 5, out, order=3)
    words = tmp_path / "words.txt"
    words.write_text("the\ncat\ndog\nsat\nran\na\n<unk>\n")
    d = Dictionary(str(words))
    lm = KenLM(str(out), d)
    state, _ = lm.score(lm.start(False), d.get_index("the"))
    _, seen = lm.score(state, d.get_index("cat"))
    _, unseen = lm.score(state, d.get_index("dog"))
    assert seen > unseen


def test_cli_builds_from_stdin(tmp_path):
    out = tmp_path / "sub" / "lm.arpa"
    result = CliRunner().invoke(
        build_cli(),
        ["lm", "build", "-", "-o", str(out), "--order", "2"],
        input="one two\ntwo three\n",
    )
    assert result.exit_code == 0, result.output
    counts, _ = read_arpa(out)
    assert sorted(counts) == [1, 2]
    assert not list(out.parent.glob(".*.tmp"))  # atomic: no temp file left


def test_cli_empty_corpus_is_an_error(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("!!!\n\n")
    result = CliRunner().invoke(
        build_cli(), ["lm", "build", str(corpus), "-o", str(tmp_path / "x.arpa")]
    )
    assert result.exit_code == 1
    assert "no words" in result.output
    assert not (tmp_path / "x.arpa").exists()


def test_word_list_widens_the_lexicon_with_unk_scored_words(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\nthe cat ran\na dog sat\n")
    words = tmp_path / "words.txt"
    words.write_text("Zebra\nzebra's\ncat\nTHE\nice cream\n\n")
    out = tmp_path / "lm.arpa"
    result = CliRunner().invoke(
        build_cli(), ["lm", "build", str(corpus), "-o", str(out), "--words", str(words)]
    )
    assert result.exit_code == 0, result.output
    assert "+ 2 words from --words" in result.output
    lexicon = [line.split("\t")[0] for line in out.with_suffix(".lexicon").read_text().splitlines()]
    # normalised, only words the corpus lacks, no duplicates, no multi-word entries
    assert sorted(lexicon) == sorted(["the", "cat", "sat", "ran", "a", "dog", "zebra", "zebra's"])
    counts, sections = read_arpa(out)
    assert "zebra" not in sections[1]  # in the lexicon, not in the n-grams
    # Good-Turing: "ran", "a" and "dog" occur once in 9 tokens; that mass over 2 new words
    assert math.isclose(sections[1]["<unk>"], math.log10(3 / 9 / 2), abs_tol=1e-6)


def probability(sections, history, word):
    """P(word | history) from a read_arpa() model with back-off weights (exact, no KenLM)."""
    probs, backoffs = sections
    for start in range(len(history) + 1):
        context = history[start:]
        ngram = " ".join((*context, word))
        if ngram in probs[len(context) + 1]:
            weight = sum(backoffs.get(" ".join(history[s:]), 0.0) for s in range(start))
            return 10 ** (probs[len(context) + 1][ngram] + weight)
    raise AssertionError(f"{word} has no unigram")


def test_min_counts_shrink_the_model_and_keep_every_history_normalised(tmp_path):
    import random

    rng = random.Random(0)
    # Zipf-like text over 60 words: no history sees every word (kaldingram then has no
    # mass to back off with, cutoffs or not)
    words = [c + v for c in "bdfgklmnprst" for v in "aeiou"]
    weights = [1 / (rank + 1) for rank in range(len(words))]
    lines = [" ".join(rng.choices(words, weights, k=rng.randint(3, 9))) for _ in range(600)]
    full, cut, same = tmp_path / "full.arpa", tmp_path / "cut.arpa", tmp_path / "same.arpa"
    build_arpa(lines, full, order=3)
    stats = build_arpa(lines, cut, order=3, min_counts=(0, 3, 3))
    build_arpa(lines, same, order=3, min_counts=(0, 1, 1))  # cuts nothing: kaldingram's model
    assert same.read_text() == full.read_text()
    full_counts, _ = read_arpa(full)
    assert stats.ngrams[1] == full_counts[1]  # every word stays
    assert stats.ngrams[2] < full_counts[2] and stats.ngrams[3] < 0.7 * full_counts[3]
    backoffs = {}
    model = (read_arpa(cut, backoffs)[1], backoffs)
    vocabulary = [w for w in model[0][1] if w not in ("<s>", "<unk>")]  # </s> is predicted
    kept = [(g, p) for order in model[0].values() for g, p in order.items()]
    assert all(p > -99 for g, p in kept if g not in ("<s>", "<unk>"))  # none left at zero
    for history in [(), ("<s>",), ("ba",), ("<s>", "ba"), ("ba", "be"), ("ti", "tu"), ("su",)]:
        total = sum(probability(model, history, w) for w in vocabulary)
        assert math.isclose(total, 1.0, rel_tol=1e-4), (history, total)
    result = CliRunner().invoke(
        build_cli(), ["lm", "build", str(tmp_path / "x.txt"), "-o", str(cut), "--min-counts", "2,1"]
    )
    assert result.exit_code != 0


def test_merge_interpolates_two_models_and_stays_normalised(tmp_path):
    from seqpipe.speech.ngram_lm import mix_arpa

    mine, base, mixed = tmp_path / "mine.arpa", tmp_path / "base.arpa", tmp_path / "mixed.arpa"
    build_arpa(["nguyen takes metoprolol", "the dose of metoprolol", "nguyen is here"], mine)
    build_arpa(["the cat sat on the mat", "the dog is here", "a cat ran", "the dose"], base)
    stats = mix_arpa(mine, base, mixed, weight=0.3)
    models = {}
    for name, path in (("mine", mine), ("base", base), ("mixed", mixed)):
        backoffs = {}
        models[name] = (read_arpa(path, backoffs)[1], backoffs)
    assert stats.ngrams == {n: len(s) for n, s in models["mixed"][0].items()}

    def p(name, history, word):
        return probability(models[name], history, word) if word in models[name][0][1] else 0.0

    vocabulary = [w for w in models["mixed"][0][1] if w not in ("<s>", "<unk>")]
    assert {"nguyen", "metoprolol", "cat", "mat"} <= set(vocabulary)
    for history in [(), ("the",), ("<s>",), ("of",), ("nguyen",), ("the", "dose"), ("a", "cat")]:
        total = sum(probability(models["mixed"], history, w) for w in vocabulary)
        assert math.isclose(total, 1.0, rel_tol=1e-4), (history, total)
    # n-grams either model lists get exactly the interpolation of the two
    for history, word in [
        (("the",), "dose"),
        (("of",), "metoprolol"),
        ((), "cat"),
        (("the",), "cat"),
    ]:
        expected = 0.3 * p("mine", history, word) + 0.7 * p("base", history, word)
        assert math.isclose(probability(models["mixed"], history, word), expected, rel_tol=1e-5)
    lexicon = (tmp_path / "mixed.lexicon").read_text()
    assert "metoprolol\tm e t o p r o l o l" in lexicon and "\ncat\tc a t" in lexicon


def test_cli_merge_and_its_bad_inputs(tmp_path):
    base = tmp_path / "base.arpa"
    build_arpa(["the cat sat on the mat", "a dog ran"], base)
    (tmp_path / "mine.txt").write_text("call doctor nguyen\n")
    out = tmp_path / "mixed.arpa"
    args = ["lm", "build", str(tmp_path / "mine.txt"), "-o", str(out)]
    result = CliRunner().invoke(build_cli(), [*args, "--merge", str(base), "--merge-weight", "0.5"])
    assert result.exit_code == 0, result.output
    assert "merged with" in result.output
    unigrams = read_arpa(out)[1][1]
    assert {"nguyen", "cat"} <= set(unigrams)
    broken = tmp_path / "broken.arpa"
    broken.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\tcat\n-x\tdog\n\n\\end\\\n")
    result = CliRunner().invoke(build_cli(), [*args, "--merge", str(broken)])
    assert result.exit_code != 0 and f"{broken}:6:" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(build_cli(), [*args, "--merge", "no-such.arpa"])
    assert result.exit_code != 0 and "no-such.arpa: language model file not found" in result.output
