"""Rescore a CTC bundle's final beam with exact CTC likelihoods from several "members".

The beam search keeps one approximate acoustic score per hypothesis. Here each distinct
word sequence in the final beam is scored again, exactly (``ctc_loss``), by each member:
the bundle at another spectrum warp (``--warps``) or another bundle (``--with``). Members
are combined per *hypothesis*, not per frame, so they need not put their CTC spikes on
the same frames (averaging frame posteriors fails for that reason, docs/speech-log.md).
Prints the WER of the beam's own choice, of the best hypothesis in it (the oracle), then
of every rescoring option:

    lm_weight * lm_score + word_score * words + mean over members of log P_ctc(text | audio)

    python experiments/rescore.py en-small data/en-small/valid_unseen_voices.jsonl \\
        --warps 0.92 1.0 1.08 --lm-weight 1.5 2.0 2.5 --word-score -1 -0.5 0

Measured on en-small: docs/speech-log.md. The single-member case (the bundle at warp 1.0)
is what ``ctc_beam``'s ``rescore`` option ships.
"""

from __future__ import annotations

import argparse
import itertools

import jiwer
import numpy as np
import torch
import torch.nn.functional as F
from vtln import posteriors

from seqpipe.pipeline import Pipeline


def nbest(decoder, emissions: torch.Tensor, limit: int) -> list[tuple[list[str], float, float]]:
    """The final beam's distinct word sequences, best first: (words, beam score, lm score)."""
    search = decoder._new_search()
    emissions = torch.log_softmax(emissions.float(), -1).contiguous()
    results = search.decode(emissions.data_ptr(), *emissions.shape)
    words, seen, out = decoder._resources.words, set(), []
    for r in results:
        text = tuple(words.get_entry(w) for w in r.words if w >= 0)
        if text not in seen:
            seen.add(text)
            out.append((list(text), float(r.score), float(r.lmScore)))
        if len(out) == limit:
            break
    return out


def ctc_loglik(decoder, log_probs: torch.Tensor, hyps: list[list[str]]) -> np.ndarray:
    """log P_ctc(hypothesis | audio) for each hypothesis, under one member's [T, V] posteriors."""
    targets = [torch.tensor(decoder._spell(h) or [], dtype=torch.long) for h in hyps]
    lengths = torch.tensor([len(t) for t in targets])
    flat = torch.cat(targets) if len(targets) else torch.zeros(0, dtype=torch.long)
    T = log_probs.shape[0]
    lp = torch.log_softmax(log_probs.float(), -1)[:, None].expand(T, len(hyps), -1)
    loss = F.ctc_loss(
        lp, flat, torch.full((len(hyps),), T), lengths, blank=decoder.blank, reduction="none"
    )
    return -loss.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("manifest", help="a VALIDATION manifest")
    parser.add_argument("--warps", type=float, nargs="+", default=[1.0])
    parser.add_argument("--with", dest="others", nargs="*", default=[], help="more bundles")
    parser.add_argument("--nbest", type=int, default=32)
    parser.add_argument("--lm-weight", type=float, nargs="+", default=[2.0])
    parser.add_argument("--word-score", type=float, nargs="+", default=[-1.0])
    args = parser.parse_args()
    pipeline = Pipeline.load(args.bundle, device=torch.device("cpu")).eval()
    decoder = pipeline.decoder
    decoder._shared()
    examples = pipeline.task.load_data(args.manifest, train=False)
    refs = [e["text"] for e in examples]
    members = [posteriors(pipeline, examples, a) for a in args.warps]
    for other in args.others:
        member = Pipeline.load(other, device=torch.device("cpu")).eval()
        members.append(posteriors(member, examples, 1.0))
    plain = posteriors(pipeline, examples, 1.0)
    beams = [nbest(decoder, u, args.nbest) for u in plain]
    print(f"distinct hypotheses per utterance: mean {np.mean([len(b) for b in beams]):.1f}")
    texts = [[" ".join(h[0]) for h in beam] for beam in beams]
    print(f"beam's own best: WER {jiwer.wer(refs, [t[0] for t in texts]):.4f}")
    oracle = [
        min(t, key=lambda h, r=r: jiwer.wer(r, h) if r else len(h))
        for t, r in zip(texts, refs, strict=True)
    ]
    print(f"oracle in the {args.nbest}-best: WER {jiwer.wer(refs, oracle):.4f}")
    lm_scores = [np.array([h[2] for h in beam]) for beam in beams]
    n_words = [np.array([len(h[0]) for h in beam]) for beam in beams]
    am = [
        np.mean([ctc_loglik(decoder, m[i], [h[0] for h in beam]) for m in members], axis=0)
        for i, beam in enumerate(beams)
    ]
    print("lm_weight word_score     wer")
    for lw, ws in itertools.product(args.lm_weight, args.word_score):
        picks = [
            t[int(np.argmax(a + lw * lm + ws * n))]
            for t, a, lm, n in zip(texts, am, lm_scores, n_words, strict=True)
        ]
        print(f"{lw:9.2f} {ws:10.2f}  {jiwer.wer(refs, picks):.4f}")


if __name__ == "__main__":
    main()
