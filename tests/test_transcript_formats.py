"""Transcript formats without a model: subtitle layout, tsv, confidences, hotword lists
and the LM copy hotwords make."""

import json
import math

from seqpipe.decoders.arpa import arpa_unigrams, read_lexicon
from seqpipe.speech.alignment import Word
from seqpipe.speech.formats import Layout, Segment, Transcript
from seqpipe.speech.hotwords import BASE_LOG10, boosted_lm, hotword_list


def words_at(text: str, start: float = 0.0, step: float = 0.4, pause_after: int = -1):
    out, t = [], start
    for i, w in enumerate(text.split()):
        out.append(Word(w, t, t + 0.3, 0.8))
        t += step + (1.0 if i == pause_after else 0.0)
    return out


def transcript(words) -> Transcript:
    text = " ".join(w.word for w in words)
    return Transcript("a.wav", words[-1].end + 1, [Segment(0.0, words[-1].end, text, words)])


TEXT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"


def test_cues_respect_line_width_and_count_and_never_split_a_word():
    t = transcript(words_at(TEXT, step=0.3))
    for width, count in [(20, 1), (20, 2), (42, 2), (12, 3)]:
        cues = t.cues(Layout(max_line_width=width, max_line_count=count, max_seconds=60))
        lines = [line for _, _, text in cues for line in text.split("\n")]
        assert all(len(line) <= width for line in lines)
        assert all(len(text.split("\n")) <= count for _, _, text in cues)
        assert " ".join(lines).split() == TEXT.split()  # every word whole, in order


def test_a_cue_closes_at_a_pause():
    t = transcript(words_at("we stop here then go on", pause_after=2))
    texts = [text for _, _, text in t.cues(Layout(max_line_width=80, pause_seconds=0.5))]
    assert texts == ["we stop here", "then go on"]


def test_srt_lines_and_tsv_rows_follow_the_layout_and_segments():
    t = transcript(words_at(TEXT, step=0.3))
    srt = t.render("srt", Layout(max_line_width=30, max_line_count=2))
    blocks = [b.splitlines() for b in srt.strip().split("\n\n")]
    assert all(1 <= len(b) - 2 <= 2 for b in blocks)  # index, times, 1-2 text lines
    assert all(len(line) <= 30 for b in blocks for line in b[2:])
    header, row = t.render("tsv").splitlines()
    assert header.split("\t") == ["start", "end", "text", "confidence"]
    assert row.split("\t") == ["0", str(round(t.segments[0].end * 1000)), TEXT, "0.800"]


def test_unknown_confidences_are_null_in_json_and_left_out_of_means():
    words = words_at("a b")
    words[0].confidence = math.nan
    data = json.loads(transcript(words).render("json"))
    first, second = data["segments"][0]["words"]
    assert first["probability"] is None and first["confidence"] is None
    assert data["segments"][0]["confidence"] == data["confidence"] == second["probability"]


def test_hotword_list_reads_flag_and_file_normalised_once(tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("Velmora\nDR Who, 42\n")
    assert hotword_list("Nguyen, seqpipe,velmora", str(words)) == [
        "nguyen", "seqpipe", "velmora", "dr", "who", "forty", "two",
    ]  # fmt: skip


def test_boosted_lm_adds_new_words_and_raises_known_ones(tmp_path):
    lm = tmp_path / "lm.arpa"
    lm.write_text(
        "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1.0\t<unk>\n-99\t<s>\t-0.5\n"
        "-0.5\t</s>\n-6.0\tcat\t-0.2\n\n\\2-grams:\n-0.3\t<s> cat\n\n\\end\\\n"
    )
    out_lm, out_lexicon = boosted_lm(lm, None, ["cat", "zorbak"], tmp_path, boost=1.5)
    text = out_lm.read_text()
    assert "ngram 1=5\n" in text and "ngram 2=1\n" in text
    assert list(arpa_unigrams(out_lm)) == ["<unk>", "<s>", "</s>", "cat", "zorbak"]
    assert f"{BASE_LOG10 + 1.5:.7f}\tcat\t-0.2\n" in text  # raised, back-off kept
    assert "-0.3\t<s> cat\n" in text  # the rest untouched
    assert dict(read_lexicon(out_lexicon))["zorbak"] == list("zorbak")
