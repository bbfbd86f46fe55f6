"""What ``seqpipe evaluate`` reports for melodies beyond the loss, as flat float metrics.

* ``markov{k}_nll_per_note``: order-k Markov chains (k = 2, 3, 4) fitted on the bundle's
  training data (``data.train`` in its config), read through the model's encoding so both
  see the same notes; ``vs_markov_pct``: how much lower the model's NLL per note is than
  the best chain's (positive = better).
* ``gen_*``: ``sample_melodies`` melodies generated with the model's decoder, compared to
  the held-out ones (Yang & Lerch 2018 KL and overlap per feature), the share of notes in
  the best-fitting key, and the longest note n-gram shared with any training tune.
  ``heldout_*`` gives the same statistics for the held-out tunes, as the reference.

Fitted chains and n-gram indexes are cached per training file, so evaluating every
epoch pays for them once.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from seqpipe.midi import Melody

ORDERS = (2, 3, 4)
SLUGS = {
    "pitch-class histogram": "pitch_class",
    "pitch range": "pitch_range",
    "interval histogram": "interval",
    "note-length histogram": "note_length",
}
_cache: dict[tuple, tuple] = {}


def _training(pipeline, train: str | None):
    """(training melodies as the encoding sees them, fitted chains, n-gram index) or None."""
    from seqpipe.data.melodies import load_melodies
    from seqpipe.music.markov import MarkovBaseline
    from seqpipe.music.metrics import NgramIndex

    if train is None:  # "" = no baseline
        train = (pipeline.config.get("data") or {}).get("train")
    if not train or not Path(train).exists():
        return None
    enc = pipeline.features
    key = (str(Path(train).resolve()), Path(train).stat().st_mtime, tuple(enc.vocab))
    if key not in _cache:
        melodies = [enc.decode(enc.encode(m)) for m in load_melodies(train)]
        chains = {k: MarkovBaseline(k).fit(melodies) for k in ORDERS}
        _cache.clear()
        _cache[key] = (melodies, chains, NgramIndex(melodies))
    return _cache[key]


def _in_key_pct(melodies: list[Melody]) -> float:
    from seqpipe.theory import in_key_fraction

    scores = [in_key_fraction([n.pitch for n in m.notes]) for m in melodies if m.notes]
    return 100 * statistics.mean(scores) if scores else 0.0


def melody_metrics(
    pipeline,
    held_out: list[Melody],
    model_nll_per_note: float,
    *,
    train: str | None = None,
    sample_melodies: int = 64,
    bars: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    from seqpipe.music.generator import generate_melodies
    from seqpipe.music.metrics import similarity
    from seqpipe.music.request import Request

    out: dict[str, float] = {}
    fitted = _training(pipeline, train)
    if fitted is not None:
        _, chains, _ = fitted
        for k, chain in chains.items():
            out[f"markov{k}_nll_per_note"] = chain.nll_per_note(held_out)
        best = min(out[f"markov{k}_nll_per_note"] for k in ORDERS)
        out["vs_markov_pct"] = 100 * (1 - model_nll_per_note / best)
    if sample_melodies:
        generated = generate_melodies(pipeline, Request(n=sample_melodies, bars=bars, seed=seed))
        generated = [m for m in generated if len(m.notes) > 1]
        if len(generated) > 1 and len(held_out) > 1:
            for name, (kl, overlap) in similarity(held_out, generated).items():
                out[f"gen_{SLUGS[name]}_kl"] = kl
                out[f"gen_{SLUGS[name]}_overlap"] = overlap
        out["gen_in_key_pct"] = _in_key_pct(generated)
        out["heldout_in_key_pct"] = _in_key_pct(held_out)
        if fitted is not None and generated:
            index = fitted[2]
            gen = [index.longest_match(m) for m in generated]
            ref = [index.longest_match(m) for m in held_out]
            out["gen_copy_longest_max"] = float(max(gen))
            out["gen_copy_longest_median"] = float(statistics.median(gen))
            out["heldout_copy_longest_median"] = float(statistics.median(ref))
    return out


def markdown(metrics: dict[str, float]) -> str:
    """The metrics as the tables quoted in docs/music.md."""
    lines = ["| model | NLL per note (nats) |", "|---|---|"]
    lines.append(f"| seqpipe model | {metrics['nll_per_note']:.3f} |")
    for k in ORDERS:
        if f"markov{k}_nll_per_note" in metrics:
            lines.append(f"| Markov order {k} | {metrics[f'markov{k}_nll_per_note']:.3f} |")
    if "vs_markov_pct" in metrics:
        lines += [
            "",
            f"Model vs best Markov chain: {metrics['vs_markov_pct']:.1f}% lower NLL per note.",
        ]
    if "gen_pitch_class_kl" in metrics:
        lines += ["", "| feature | KL | overlap |", "|---|---|---|"]
        for name, slug in SLUGS.items():
            lines.append(
                f"| {name} | {metrics[f'gen_{slug}_kl']:.3f} | {metrics[f'gen_{slug}_overlap']:.3f} |"
            )
    lines += ["", "| statistic | generated | held-out |", "|---|---|---|"]
    lines.append(
        f"| notes in best-fitting key (%) | {metrics.get('gen_in_key_pct', 0):.1f} | {metrics.get('heldout_in_key_pct', 0):.1f} |"
    )
    if "gen_copy_longest_max" in metrics:
        lines.append(
            f"| longest n-gram shared with training (median) | {metrics['gen_copy_longest_median']:.0f} | {metrics['heldout_copy_longest_median']:.0f} |"
        )
        lines.append(
            f"| longest n-gram shared with training (max) | {metrics['gen_copy_longest_max']:.0f} | |"
        )
    return "\n".join(lines)
