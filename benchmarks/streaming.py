"""Live transcription against the offline model on the same files: WER, and how long after a
word is spoken it becomes final.

    nice python benchmarks/streaming.py /work/main/data/real/an4_dev.jsonl
    nice python benchmarks/streaming.py data/real/libri_dev.jsonl --model en-small \\
        --chunk 0.2 0.4 --lookahead 0.2 0.3 0.5 --settle 0 0.1 --json sweep.json

Each file is streamed as a live source would send it: blocks of 0.1 s, then ``--tail``
seconds of silence (the speaker has stopped; a microphone keeps sending), through
:class:`seqpipe.speech.streaming.Streamer`. The compute of each block is timed, and the
stream is replayed in real time: block k arrives at (k + 1) x 0.1 s and is done at
max(arrival, previous done) + its compute, so a slow step delays the ones after it.

* **latency** of a word: the time it became final (the done time of the block whose
  update settled it) minus the end of that word in the offline transcript (CTC forced
  alignment by ``seqpipe transcribe``); words are paired by a longest-matching alignment
  of the two word sequences, so only words both say are timed. ``latency_audio`` leaves
  the compute out (the audio consumed when the word became final): what a machine
  fast enough, or less busy, would give;
* **WER** of the stream's final text and of the offline transcript (``seqpipe
  transcribe``: VAD chunks, the bundle's decoder) against the manifest's text, and
  ``seqpipe evaluate``'s figure is the whole-utterance one (no VAD);
* **RTF**: the stream's compute / audio, at ``--threads`` (default 1: a live stream
  runs beside other work).
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import statistics
import time

import numpy as np


def offline(transcriber, entries):
    from seqpipe.speech.files import Input

    inputs = [Input(e["audio"], str(i)) for i, e in enumerate(entries)]
    return [r.transcript for r in transcriber.run(inputs)]


def streamed(transcriber, samples, options, tail: float, block: float = 0.1):
    """(final words with the time each became final, compute seconds)."""
    from seqpipe.speech.streaming import Streamer

    rate = transcriber.sample_rate
    streamer = Streamer(transcriber, options)
    audio = np.concatenate([samples, np.zeros(int(tail * rate), np.float32)])
    step = int(block * rate)
    done, compute, words = 0.0, 0.0, []
    pieces = [audio[i : i + step] for i in range(0, len(audio), step)]
    for k, piece in enumerate([*pieces, None]):
        t0 = time.perf_counter()
        updates = streamer.feed(piece) if piece is not None else streamer.close()
        spent = time.perf_counter() - t0
        compute += spent
        arrival = min(len(audio), (k + 1) * step) / rate
        done = max(arrival, done) + spent
        words += [(w, done, u.time) for u in updates for w in u.settled]
    return words, compute


def latencies(stream_words, transcript) -> list[tuple[float, float]]:
    """(final time, audio consumed at that point) minus the offline end time, for each
    word both transcripts share."""
    ref = [(w.word, w.end) for s in transcript.segments for w in s.words]
    matcher = difflib.SequenceMatcher(None, [w for w, _ in ref], [w[0] for w in stream_words])
    out = []
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            _, done, audio = stream_words[block.b + i]
            end = ref[block.a + i][1]
            out.append((done - end, audio - end))
    return out


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--model", default="en-small")
    parser.add_argument("--chunk", type=float, nargs="+", default=[0.4])
    parser.add_argument("--lookahead", type=float, nargs="+", default=[0.5])
    parser.add_argument(
        "--settle",
        nargs="+",
        default=["agree"],
        help="'agree' (the paths within --margin of the best) or seconds the best path holds a word",
    )
    parser.add_argument(
        "--margin",
        type=float,
        nargs="+",
        default=[3.0],
        help="agreement: paths within this of the best must agree",
    )
    parser.add_argument("--endpoint", type=float, default=0.5)
    parser.add_argument("--tail", type=float, default=1.0, help="silence after each file (s)")
    parser.add_argument("--limit", type=int, help="the first N files of each manifest")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lm-weight", type=float, help="the beam search's (default: the bundle's)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    import jiwer
    import torch

    from seqpipe.audio import load_audio
    from seqpipe.data.manifest import read_manifest
    from seqpipe.speech.streaming import StreamOptions
    from seqpipe.speech.transcriber import Transcriber
    from seqpipe.text import normalize

    torch.set_num_threads(args.threads)
    transcriber = Transcriber(args.model, "cpu")
    if args.lm_weight is not None:  # (Transcriber takes lm_weight only with a beam size or LM)
        transcriber.decoder.set_options(lm_weight=args.lm_weight)
    rows = []
    for manifest in args.manifests:
        entries = read_manifest(manifest)[: args.limit]
        refs = [normalize(e["text"]) for e in entries]
        transcripts = offline(transcriber, entries)
        offline_wer = jiwer.wer(refs, [t.text for t in transcripts])
        audio = [load_audio(e["audio"], transcriber.sample_rate) for e in entries]
        seconds = sum(len(a) for a in audio) / transcriber.sample_rate
        print(
            f"{manifest}: {len(entries)} files, {seconds / 60:.1f} min; offline WER {offline_wer:.3f}"
        )
        grid = itertools.product(args.chunk, args.lookahead, args.settle, args.margin)
        for chunk, ahead, settle, margin in grid:
            settle = None if settle == "agree" else float(settle)
            options = StreamOptions(chunk, ahead, settle, margin, endpoint_seconds=args.endpoint)
            hyps, lat, compute = [], [], 0.0
            for samples, transcript in zip(audio, transcripts, strict=True):
                words, spent = streamed(transcriber, samples, options, args.tail)
                hyps.append(" ".join(w[0] for w in words))
                lat += latencies(words, transcript)
                compute += spent
            row = {
                "manifest": manifest,
                "chunk": chunk,
                "lookahead": ahead,
                "settle": "agree" if settle is None else settle,
                "margin": margin,
                "lm_weight": transcriber.decoder.options.get("lm_weight")
                if hasattr(transcriber.decoder, "options")
                else None,
                "wer_stream": round(jiwer.wer(refs, hyps), 4),
                "wer_offline": round(offline_wer, 4),
                "latency_median": median([d for d, _ in lat]),
                "latency_p90": round(float(np.percentile([d for d, _ in lat], 90)), 3),
                "latency_audio_median": median([a for _, a in lat]),
                "words_timed": len(lat),
                "rtf": round(compute / seconds, 4),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        from seqpipe.atomic import write_text

        write_text(args.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
