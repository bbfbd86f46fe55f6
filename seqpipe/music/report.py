"""What ``seqpipe evaluate`` reports for melodies beyond the loss, as flat float metrics.

* ``markov{k}_nll_per_note``: order-k Markov chains (k = 2, 3, 4) fitted on the bundle's
  training data (``data.train`` in its config), read through the model's encoding so both
  see the same notes; ``vs_markov_pct``: how much lower the model's NLL per note is than
  the best chain's (positive = better).
* ``gen_*``: ``sample_melodies`` melodies generated with the model's decoder, compared to
  the held-out ones (Yang & Lerch 2018 KL and overlap per feature), the share of notes in
  the best-fitting key, and the longest note n-gram shared with any training tune.
  ``heldout_*`` gives the same statistics for the held-out tunes, as the reference.
  Held-out tunes are cut to the generated length (``bars``) for everything measured on
  melodies, so both sides span the same number of bars.
* ``train_*_kl`` / ``_overlap``: the ceiling, as many training tunes (evenly spread
  through the file, cut the same way) as melodies generated, against the held-out tunes;
  ``gen_overlap_mean`` / ``train_overlap_mean``: the mean over the four features.
* form (``music.metrics.STRUCTURE``): ``{gen,heldout}_self_repeat_median`` (longest
  phrase a melody repeats within itself, in notes), ``_repeated_bars_pct``,
  ``_notes_per_bar``, ``_pitch_classes_per_bar`` (means); ``gen_copy16_pct``: share of
  generated melodies that share 16 or more consecutive notes with a training tune.

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
FORM = {  # metric slug -> (STRUCTURE name, summary)
    "self_repeat_median": ("longest self-repeated phrase (notes)", statistics.median),
    "repeated_bars_pct": ("bars repeating an earlier bar (%)", statistics.mean),
    "notes_per_bar": ("notes per bar", statistics.mean),
    "pitch_classes_per_bar": ("pitch classes per bar", statistics.mean),
}
COPY_NOTES = 16  # a generated melody sharing this many notes with a training tune is a copy
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
    from seqpipe.music.metrics import STRUCTURE, crop
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
        reference = [crop(m, bars) for m in held_out]
        reference = [m for m in reference if len(m.notes) > 1]
        if len(generated) > 1 and len(reference) > 1:
            out |= _similarity("gen", reference, generated)
        if fitted is not None and len(reference) > 1:
            training = fitted[0][:: max(len(fitted[0]) // sample_melodies, 1)][:sample_melodies]
            out |= _similarity("train", reference, [crop(m, bars) for m in training])
        out["gen_in_key_pct"] = _in_key_pct(generated)
        out["heldout_in_key_pct"] = _in_key_pct(reference)
        for slug, (name, summary) in FORM.items():
            for side, melodies in (("gen", generated), ("heldout", reference)):
                if melodies:
                    out[f"{side}_{slug}"] = float(summary(map(STRUCTURE[name], melodies)))
        if fitted is not None and generated:
            index = fitted[2]
            gen = [index.longest_match(m) for m in generated]
            ref = [index.longest_match(m) for m in held_out]
            out["gen_copy_longest_max"] = float(max(gen))
            out["gen_copy_longest_median"] = float(statistics.median(gen))
            out["gen_copy16_pct"] = 100 * sum(g >= COPY_NOTES for g in gen) / len(gen)
            out["heldout_copy_longest_median"] = float(statistics.median(ref))
    return out


def _similarity(side: str, reference: list[Melody], other: list[Melody]) -> dict[str, float]:
    from seqpipe.music.metrics import similarity

    out = {}
    for name, (kl, overlap) in similarity(reference, other).items():
        out[f"{side}_{SLUGS[name]}_kl"] = kl
        out[f"{side}_{SLUGS[name]}_overlap"] = overlap
    out[f"{side}_overlap_mean"] = statistics.mean(
        out[f"{side}_{s}_overlap"] for s in SLUGS.values()
    )
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
        ceiling = "train_pitch_class_kl" in metrics
        head = "| feature | KL | overlap |" + (
            " training tunes KL | training tunes overlap |" if ceiling else ""
        )
        lines += ["", head, "|---|---|---|" + ("---|---|" if ceiling else "")]
        for name, slug in [*SLUGS.items(), ("mean", "")]:
            cells = []
            for side in ("gen", "train") if ceiling else ("gen",):
                if slug:
                    cells += [
                        f"{metrics[f'{side}_{slug}_kl']:.3f}",
                        f"{metrics[f'{side}_{slug}_overlap']:.3f}",
                    ]
                else:
                    cells += ["", f"{metrics[f'{side}_overlap_mean']:.3f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| statistic | generated | held-out |", "|---|---|---|"]
    lines.append(
        f"| notes in best-fitting key (%) | {metrics.get('gen_in_key_pct', 0):.1f} | {metrics.get('heldout_in_key_pct', 0):.1f} |"
    )
    for slug, (name, summary) in FORM.items():
        if f"gen_{slug}" in metrics:
            label = f"{name}, {'median' if summary is statistics.median else 'mean'}"
            lines.append(
                f"| {label} | {metrics[f'gen_{slug}']:.1f} | {metrics[f'heldout_{slug}']:.1f} |"
            )
    if "gen_copy_longest_max" in metrics:
        lines.append(
            f"| longest n-gram shared with training (median) | {metrics['gen_copy_longest_median']:.0f} | {metrics['heldout_copy_longest_median']:.0f} |"
        )
        lines.append(
            f"| longest n-gram shared with training (max) | {metrics['gen_copy_longest_max']:.0f} | |"
        )
        lines.append(
            f"| melodies sharing {COPY_NOTES}+ notes with a training tune (%) | {metrics['gen_copy16_pct']:.1f} | |"
        )
    return "\n".join(lines)
