"""The text of en-small's word LM, with every dev sentence and the dev readers' books kept out.

    python scripts/make_lm_text.py --books MIRROR --commit a0b16d35 --out data/lm  # ~20 min
    seqpipe lm build data/lm/books.txt data/lm/fortunes.txt data/lm/transcripts.txt \\
        -o data/lm/en-small.arpa --min-counts 0,4,4 --words /usr/share/dict/american-english

Three texts, one normalised sentence (3-60 words) per line:

- books.txt: Project Gutenberg books (public domain in the USA) from a mirror of
  github:rcdm-uga/Gutenberg_Text (``--books``: its bare git folder, read at ``--commit``):
  licence boilerplate stripped, abbreviations read out as LibriSpeech's readers say them
  (Mr. -> mister), split at sentence ends, a deterministic ``--rate`` share of the
  sentences (by hash; repeated long sentences, one book under two titles, once).
  Left out: the books the dev readers read (matched by title and Project Gutenberg
  number), authors public domain in the USA only, index and "complete works" files,
  and files that are not English.
- fortunes.txt: the text of the LM before it (make_data.py en-small's training and long
  sentences, seed 0; needs Debian's fortunes).
- transcripts.txt: the real training transcripts (data/real/*_train.jsonl), written
  ``--transcript-weight`` times (AN4's commands and spellings are rare in books).

Every sentence that contains a dev sentence or shares five words in a row with one is
dropped (data/real/libri_dev.jsonl, an4_dev.jsonl; AN4's one-word commands only by the
five-word rule, or every sentence with "no" or "go" would go).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from seqpipe.data.manifest import read_manifest
from seqpipe.data.synth import sentence_corpus, without_overlap
from seqpipe.text import normalize

DEV = ["data/real/libri_dev.jsonl", "data/real/an4_dev.jsonl"]
TRAIN = ["data/real/libri_train.jsonl", "data/real/an4_train.jsonl"]

# LibriSpeech's dev readers' books (Project Gutenberg 14851 Uncle Silas, 135 Les
# Miserables, 599 Vanity Fair, 33556 The Fortunes of Glencore, and 1734 The Secret
# Places of the Heart, reader 6848's other book)
DEV_BOOKS = re.compile(
    r"uncle silas|mis[eé]rables|vanity fair|glencore|secret places of the heart", re.I
)
DEV_BOOK_IDS = {"14851", "135", "599", "33556", "1734"}
# public domain in the USA only (died after 1953), as Project Gutenberg marks them
US_ONLY_AUTHORS = {
    "Christie, Agatha", "Tolkien, J. R. R. (John Ronald Reuel)", "Hesse, Hermann",
    "Russell, Bertrand", "Wodehouse, P. G. (Pelham Grenville)", "Bunin, Ivan Alekseevich",
    "Emshwiller, Ed", "Kelley, Leo P.", "Haslett, Elmer", "Orban, Paul",
    "Hoskins, Gayle Porter", "Smith, Geoffrey Bache", "Wrenn, Charles L. (Charles Lewis)",
    "Goldfrap, John Henry", "Lockhart, Caroline", "Townsend, F. H. (Frederick Henry)",
    "Kafka, Franz", "Joyce, James", "Shaw, Bernard", "Montgomery, L. M. (Lucy Maud)",
    "Burroughs, Edgar Rice",
}  # fmt: skip
NOT_A_BOOK = re.compile(r"^index of|complete works|works of .* in \d+ volumes", re.I)
SPOKEN = [
    (re.compile(rf"\b{short}\.", re.I), long)
    for short, long in [
        ("Mrs", "missus"), ("Mr", "mister"), ("Dr", "doctor"), ("Messrs", "messieurs"),
        ("St", "saint"), ("Capt", "captain"), ("Col", "colonel"), ("Gen", "general"),
        ("Prof", "professor"), ("Rev", "reverend"), ("Hon", "honourable"), ("Sr", "senior"),
        ("Jr", "junior"), ("Lieut", "lieutenant"), ("Sgt", "sergeant"), ("Gov", "governor"),
        ("No", "number"), ("vs", "versus"), ("viz", "namely"), (r"i\.e", "that is"),
        (r"e\.g", "for example"), ("etc", "et cetera"),
    ]
]  # fmt: skip
COMMON_WORDS = {"the", "and", "of", "to", "a", "in", "that", "he", "was", "it", "i", "his"}
START = re.compile(r"^\*{3} ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
END = re.compile(
    r"^\*{3} ?END OF (THE|THIS) PROJECT GUTENBERG|^End of (the )?Project Gutenberg", re.M | re.I
)
CREDITS = re.compile(
    r"\A\s*(Produced|Transcribed|E-text prepared|Etext prepared)[^\n]*(\n[^\n]+)*", re.I
)


def texts(manifests: list[str]) -> list[str]:
    return [normalize(entry["text"]) for path in manifests for entry in read_manifest(path)]


def dev_sentences() -> list[str]:
    return [s for s in texts(DEV) if len(s.split()) >= 2]


def book_sentences(body: str) -> Iterator[str]:
    """A book's text (boilerplate gone) -> normalised sentences of 3-60 words."""
    for paragraph in re.split(r"\n\s*\n", body):
        paragraph = " ".join(paragraph.split())
        if not paragraph or paragraph.upper() == paragraph:  # headings
            continue
        if len(paragraph) < 80 and re.match(
            r"^(chapter|book|part|volume|section|act|scene)\b", paragraph, re.I
        ):
            continue
        paragraph = re.sub(r"\[[^\]]*\]", " ", paragraph).replace("_", " ")  # [Illustration]
        for pattern, spoken in SPOKEN:
            paragraph = pattern.sub(spoken, paragraph)
        for raw in re.split(r"(?<=[.!?;])[\"'\u201d\u2019)]*\s+|\s+--\s+|\u2014\u2014", paragraph):
            sentence = normalize(raw)
            if 3 <= len(sentence.split()) <= 60:
                yield sentence


def book_files(mirror: str, commit: str) -> list[tuple[str, str]]:
    """(path, blob) of each book to read: one per author and title, US-only authors out."""
    listing = subprocess.run(
        ["git", "-C", mirror, "ls-tree", "-r", "-z", commit], capture_output=True, check=True
    ).stdout.decode()
    files, seen = [], set()
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        blob = meta.split()[2]
        if not path.endswith(".txt") or "/" not in path:
            continue
        author, title = path.split("/", 1)
        key = (author.strip(), unicodedata.normalize("NFC", title).lower().strip())
        if key[0] in US_ONLY_AUTHORS or blob in seen or key in seen:
            continue
        if DEV_BOOKS.search(title) or NOT_A_BOOK.search(title.rsplit("/", 1)[-1]):
            continue
        seen.update((blob, key))
        files.append((path, blob))
    return files


def books(mirror: str, commit: str, rate: float) -> Iterator[str]:
    """The sampled sentences of every usable book, in the mirror's order."""
    cat = subprocess.Popen(
        ["git", "-C", mirror, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    seen: set[bytes] = set()
    for _, blob in book_files(mirror, commit):
        cat.stdin.write(blob.encode() + b"\n")
        cat.stdin.flush()
        header = cat.stdout.readline().split()
        if header[1] == b"missing":
            continue
        text = cat.stdout.read(int(header[2])).decode("utf-8", errors="replace")
        cat.stdout.read(1)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        start = START.search(text)
        if not start:
            continue
        head, body = text[: start.start()], text[start.end() :]
        end = END.search(body)
        body = CREDITS.sub("", body[: end.start()] if end else body)
        language = re.search(r"^Language:\s*(\S+)", head, re.M)
        numbers = re.findall(r"\[(?:E-?Book|Etext) #(\d+)\]", head, re.I)
        if (language and language.group(1).lower() != "english") or DEV_BOOKS.search(head):
            continue
        if numbers and numbers[0] in DEV_BOOK_IDS:
            continue
        sentences = list(book_sentences(body))
        sample = [w for s in sentences[:2000] for w in s.split()]
        if not sample or sum(w in COMMON_WORDS for w in sample) / len(sample) < 0.12:
            continue  # not English after all
        for sentence in sentences:
            digest = hashlib.md5((sentence + "\n").encode()).digest()
            if sentence.count(" ") >= 7:  # a long sentence twice: one book under two titles
                if digest in seen:
                    continue
                seen.add(digest)
            if int.from_bytes(digest[:8], "big") / 2**64 < rate:
                yield sentence
    cat.stdin.close()
    cat.wait()


def fortunes(seed: int = 0) -> list[str]:
    """make_data.py en-small's LM text: training sentences and long ones, never test/valid."""
    prose = sentence_corpus(max_words=60)
    short = [s for s in prose if len(s.split()) <= 16]
    random.Random(seed).shuffle(short)
    held, train = short[:500], short[500:]
    return train + without_overlap([s for s in prose if len(s.split()) > 16], held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", required=True, help="bare git mirror of Gutenberg_Text")
    parser.add_argument("--commit", default="a0b16d35a9851168ce9ac649851c17b7ab08d48e")
    parser.add_argument("--rate", type=float, default=0.10, help="share of book sentences kept")
    parser.add_argument("--transcript-weight", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("data/lm"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dev = dev_sentences()
    parts = {
        "transcripts.txt": without_overlap(texts(TRAIN), dev, n=5) * args.transcript_weight,
        "fortunes.txt": without_overlap(fortunes(), dev, n=5),
        "books.txt": without_overlap(books(args.books, args.commit, args.rate), dev, n=5),
    }
    for name, sentences in parts.items():
        (args.out / name).write_text("\n".join(sentences) + "\n")
        words = sum(len(s.split()) for s in sentences)
        print(f"{args.out / name}: {len(sentences):,} sentences, {words:,} words")


if __name__ == "__main__":
    main()
