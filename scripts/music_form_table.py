"""The melody table of docs/music.md: Markov chain, bundles and copy biases, held-out tunes.

    python scripts/music_form_table.py data/folk/test.jsonl runs/folk-base/model.safetensors folk \
        --repeat 0 3 --melodies 100 --json runs/form-table.json

For each bundle: NLL per note on DATA and the best Markov chain (``seqpipe evaluate``'s
numbers); then, for each ``--repeat`` (the sampler's copy bias, 0 = none), ``--melodies``
16-bar melodies generated with the bundle's own sampler otherwise, scored against DATA's
tunes cut to 16 bars (``music.report.melody_metrics``). The Markov row samples the best
chain (meters drawn from the training tunes), the held-out row is DATA's own figures and
the training row the training-tune ceiling. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random

import torch

from seqpipe.music import report
from seqpipe.music.metrics import STRUCTURE, NgramIndex, crop

COLUMNS = [
    ("NLL/note", "nll_per_note", "{:.3f}"),
    ("vs Markov", "vs_markov_pct", "{:.1f} %"),
    *[(f"{s} overlap", f"gen_{s}_overlap", "{:.3f}") for s in report.SLUGS.values()],
    ("mean overlap", "gen_overlap_mean", "{:.3f}"),
    ("self-repeat (median notes)", "gen_self_repeat_median", "{:.1f}"),
    ("repeated bars", "gen_repeated_bars_pct", "{:.1f} %"),
    ("notes/bar", "gen_notes_per_bar", "{:.2f}"),
    ("pitch classes/bar", "gen_pitch_classes_per_bar", "{:.2f}"),
    ("in key", "gen_in_key_pct", "{:.1f} %"),
    ("16-note copies", "gen_copy16_pct", "{:.0f} %"),
]


def score(pipeline, held_out, nll: float, melodies: int, repeat: float, temperature=None,
          top_p=None) -> dict:  # fmt: skip
    from seqpipe.decoders.sampling import Sampler

    base = pipeline.decoder
    pipeline.decoder = Sampler(
        temperature or base.temperature, base.top_k, top_p or base.top_p, repeat=repeat
    )
    try:
        return report.melody_metrics(pipeline, held_out, nll, sample_melodies=melodies)
    finally:
        pipeline.decoder = base


def markov_row(pipeline, held_out, melodies: int) -> tuple[dict, dict]:
    """(the best chain's generated melodies scored, the ceiling and held-out figures)."""
    training, chains, index = report._training(pipeline, None)
    nll = {k: c.nll_per_note(held_out) for k, c in chains.items()}
    best = min(nll, key=nll.get)
    rng = random.Random(0)
    generated = []
    for _ in range(melodies):
        meter = rng.choice(training).time_signature
        bar = meter[0] * 96 // meter[1]
        generated.append(chains[best].sample(16 * bar, rng, meter))
    reference = [crop(m, 16) for m in held_out]
    row = {"nll_per_note": nll[best], "vs_markov_pct": 0.0}
    row |= report._similarity("gen", reference, generated)
    row |= report._similarity(
        "train", reference, [crop(m, 16) for m in training[:: len(training) // melodies][:melodies]]
    )
    row["gen_in_key_pct"] = report._in_key_pct(generated)
    for slug, (name, summary) in report.FORM.items():
        row[f"gen_{slug}"] = float(summary(map(STRUCTURE[name], generated)))
    copies = [NgramIndex.longest_match(index, m) for m in generated]
    row["gen_copy16_pct"] = 100 * sum(c >= report.COPY_NOTES for c in copies) / len(copies)
    return row, {"markov_order": best}


def main() -> None:
    from seqpipe.pipeline import Pipeline
    from seqpipe.training.evaluation import evaluate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--repeat", type=float, nargs="+", default=[0.0])
    parser.add_argument("--melodies", type=int, default=100)
    parser.add_argument("--temperature", type=float, nargs="+", default=[None])
    parser.add_argument("--top-p", type=float, nargs="+", default=[None])
    parser.add_argument("--no-markov", action="store_true", help="skip the Markov row")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, dict] = {}
    for i, bundle in enumerate(args.bundles):
        pipeline = Pipeline.load(bundle, "cpu").eval()
        pipeline.task.sample_melodies = 0
        examples = pipeline.task.load_data(args.data, train=False)
        metrics = evaluate(pipeline, examples, batch_size=16)
        enc = pipeline.features
        held_out = [enc.decode(e.tokens) for e in examples]
        if i == 0 and not args.no_markov:
            markov, extra = markov_row(pipeline, held_out, args.melodies)
            rows[f"Markov order {extra['markov_order']} (sampled)"] = markov
        for repeat, temperature, top_p in itertools.product(
            args.repeat, args.temperature, args.top_p
        ):
            row = {k: metrics[k] for k in ("nll_per_note", "vs_markov_pct")}
            nll = metrics["nll_per_note"]
            row |= score(pipeline, held_out, nll, args.melodies, repeat, temperature, top_p)
            name = f"{bundle}, repeat {repeat:g}"
            name += f", temperature {temperature:g}" if temperature else ""
            name += f", top-p {top_p:g}" if top_p else ""
            rows[name] = row
            print(name, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    last = rows[next(iter(rows))]
    held = {k.replace("heldout_", "gen_"): v for k, v in row.items() if k.startswith("heldout_")}
    rows["held-out tunes (first 16 bars)"] = held
    rows["training tunes (ceiling)"] = {
        k.replace("train_", "gen_"): v for k, v in last.items() if k.startswith("train_")
    }
    lines = ["| | " + " | ".join(c[0] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in rows.items():
        cells = [fmt.format(row[key]) if key in row else "" for _, key, fmt in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
