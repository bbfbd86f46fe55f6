"""Render melodies to audio with free note labels and cache their features (the ``notes``
task's training data; deterministic from --seed). See seqpipe/data/melody_audio.py.

    OMP_NUM_THREADS=1 nice python scripts/make_note_data.py /work/corpora/folk/train.jsonl \
        --out /work/corpora/notes-i35/train --examples 3000 --seed 1       # ~25 min, one core
    python scripts/make_note_data.py /work/corpora/folk/valid.jsonl \
        --out /work/corpora/notes-i35/valid --examples 150 --seed 2
    python scripts/make_note_data.py /work/corpora/folk/test.jsonl --out examples-tmp \
        --examples 1 --held-out --wav           # a tune in an unseen instrument, as WAV + MIDI

Shards are written as they fill (``shard-00000.npz`` ...), so an interrupted run keeps
what it made; a second run with another --seed and --first adds more.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from seqpipe.data.melodies import load_melodies
from seqpipe.data.melody_audio import HELD_OUT_PROGRAMS, SAMPLE_RATE, render_batch, write_shard
from seqpipe.features.tonal import CQT
from seqpipe.music.render import DEFAULT_SOUNDFONT

# the front end the bundled `melody` model reads (configs/music/melody.yaml: features)
FEATURES = dict(
    sample_rate=SAMPLE_RATE, hop_length=256, n_bins=234, fmin_midi=35, bins_per_semitone=3
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("melodies", help="melody corpus (JSONL from 'seqpipe data melodies')")
    parser.add_argument("--out", required=True)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--shard", type=int, default=150, help="excerpts per shard")
    parser.add_argument("--first", type=int, default=0, help="number of the first shard")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voice-share", type=float, default=0.4)
    parser.add_argument(
        "--held-out", action="store_true", help="only the held-out programs, no voice"
    )
    parser.add_argument(
        "--wav",
        action="store_true",
        help="write WAV + MIDI per excerpt and a manifest (excerpts.jsonl), no shards",
    )
    parser.add_argument("--clean", action="store_true", help="no room, microphone or noise")
    parser.add_argument("--soundfont", default=DEFAULT_SOUNDFONT)
    args = parser.parse_args()

    melodies = load_melodies(args.melodies)
    rng = np.random.default_rng(args.seed)
    features = CQT(**FEATURES)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    programs = HELD_OUT_PROGRAMS if args.held_out else None
    if args.clean:
        import seqpipe.data.melody_audio as melody_audio

        melody_audio.finish = lambda audio, rng: audio  # as FluidSynth plays it
    voice = 0.0 if args.held_out else args.voice_share
    made, shard, pending, started = 0, args.first, [], time.time()
    while made < args.examples:
        batch = render_batch(melodies, rng, args.soundfont, count=min(15, args.examples - made),
                             voice_share=voice, random_share=0.0 if args.wav else 0.25,
                             programs=programs)  # fmt: skip
        made += len(batch)
        if args.wav:
            write_wavs(batch, out, made - len(batch))
            continue
        pending += batch
        while len(pending) >= args.shard or (made >= args.examples and pending):
            write_shard(out / f"shard-{shard:05d}.npz", pending[: args.shard], features)
            pending, shard = pending[args.shard :], shard + 1
            seconds = time.time() - started
            print(f"{made} excerpts, {shard - args.first} shards, {seconds:.0f} s", flush=True)


def write_wavs(batch, out: Path, first: int) -> None:
    import json

    import pretty_midi

    from seqpipe.audio import write_audio

    for i, excerpt in enumerate(batch, first):
        row = {
            "audio": f"excerpt-{i}.wav",
            "notes": excerpt.notes.tolist(),
            "origin": excerpt.source,
        }
        with open(out / "excerpts.jsonl", "a") as manifest:
            manifest.write(json.dumps(row) + "\n")
        write_audio(out / f"excerpt-{i}.wav", excerpt.audio, SAMPLE_RATE)
        pm = pretty_midi.PrettyMIDI()
        program = int(excerpt.source.split(":")[1]) if excerpt.source.startswith("gm:") else 0
        inst = pretty_midi.Instrument(program)
        inst.notes = [pretty_midi.Note(90, int(p), float(a), float(b)) for a, b, p in excerpt.notes]
        pm.instruments.append(inst)
        pm.write(str(out / f"excerpt-{i}.mid"))
        print(out / f"excerpt-{i}.wav", excerpt.source, len(excerpt.notes), "notes")


if __name__ == "__main__":
    main()
