"""Grid-search a ``notes`` bundle's decoder (note_peaks) options on VALIDATION manifests.

    OMP_NUM_THREADS=1 python scripts/tune_note_decoder.py runs/melody/model.safetensors \
        data/notes/ssvd_dev.jsonl data/notes/mirdata_dev.jsonl \
        --onset-threshold 0.2 0.3 0.4 0.5 --voiced-threshold 0.3 0.5 --min-gap 2 3 5

The network runs once per recording; each grid point only decodes its posteriors again.
The mean onset F1 over all recordings decides. Tune on dev data only (never SSVD's test
half, never vocadito); the chosen values go into the recipe's ``decoder:`` section and
the bundle (``scripts/make_bundle.py --set``), and the test sets are scored once, after.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from seqpipe.decoders.notes import NotePeaks
from seqpipe.pipeline import Pipeline
from seqpipe.tasks.notes import score_notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--onset-threshold", type=float, nargs="+", default=[0.4])
    parser.add_argument("--voiced-threshold", type=float, nargs="+", default=[0.5])
    parser.add_argument("--min-gap", type=int, nargs="+", default=[3])
    parser.add_argument("--min-note-seconds", type=float, nargs="+", default=[0.05])
    parser.add_argument("--voiced-onsets", type=int, nargs="+", default=[1])
    parser.add_argument("--refine-pitch", type=int, nargs="+", default=[1])
    args = parser.parse_args()

    pipeline = Pipeline.load(args.bundle).eval()
    task = pipeline.task
    cached = []
    with torch.no_grad():
        for manifest in args.manifests:
            for ex in task.load_data(manifest, train=False):
                x = torch.from_numpy(ex.feats.astype(np.float32))[None]
                y, _ = pipeline.model(x, torch.tensor([x.shape[1]]))
                onset, voiced = torch.sigmoid(y[0, :, 0]).numpy(), torch.sigmoid(y[0, :, 1]).numpy()
                logp = torch.log_softmax(y[0, :, 2:], -1).numpy()
                cached.append((onset, voiced, logp, ex.feats.astype(np.float32), ex.notes))
    print(f"{len(cached)} recordings")
    grid = itertools.product(args.onset_threshold, args.voiced_threshold, args.min_gap,
                             args.min_note_seconds, args.voiced_onsets, args.refine_pitch)  # fmt: skip
    layout = {k: v for k, v in pipeline.wiring.items() if k.startswith("spectrum_")}
    results = []
    for onset_t, voiced_t, gap, shortest, voiced_onsets, refine in grid:
        decoder = NotePeaks(onset_t, voiced_t, gap, shortest, bool(voiced_onsets),
                            refine_pitch=bool(refine), **layout)  # fmt: skip
        scores = [
            score_notes(ref, decoder.decode(o, v, lp, task.frame_seconds, task.min_pitch,
                                            spectrum if decoder.refine_pitch else None))
            for o, v, lp, spectrum, ref in cached
        ]  # fmt: skip
        mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        results.append((mean["onset_f1"], onset_t, voiced_t, gap, shortest, voiced_onsets, refine))
        print(f"onset {onset_t} voiced {voiced_t} gap {gap} shortest {shortest} voiced_onsets "
              f"{voiced_onsets} refine {refine}: onset F1 {mean['onset_f1']:.4f} (P {mean['onset_precision']:.3f} "
              f"R {mean['onset_recall']:.3f}) offsets {mean['offset_f1']:.4f}", flush=True)  # fmt: skip
    best = max(results, key=lambda r: r[0])
    print(f"best: onset_threshold {best[1]} voiced_threshold {best[2]} min_gap {best[3]} "
          f"min_note_seconds {best[4]} voiced_onsets {bool(best[5])} refine_pitch {bool(best[6])}: "
          f"onset F1 {best[0]:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
