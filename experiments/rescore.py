"""Rescore a CTC bundle's final beam with exact CTC likelihoods from several "members".

The beam search keeps one approximate acoustic score per hypothesis. Here each distinct
word sequence in the final beam is scored again, exactly (``ctc_loss``), by each member:
the bundle at another spectrum warp (``--warps``) or another bundle (``--with``; with
``--union`` the candidates include those bundles' own final beams too). Members
are combined per *hypothesis*, not per frame, so they need not put their CTC spikes on
the same frames (averaging frame posteriors fails for that reason, docs/lab/speech-log.md).
Prints the WER of the beam's own choice, of the best hypothesis in it (the oracle), then
of every rescoring option:

    lm_weight * lm_score + word_score * words + mean over members of log P_ctc(text | audio)

(``--combine posterior``: the last term is instead the log of the members' mean posterior
over the candidates, each member's likelihoods normalised over them first.)

    python experiments/rescore.py en-small data/en-small/valid_unseen_voices.jsonl \\
        --warps 0.92 1.0 1.08 --lm-weight 1.5 2.0 2.5 --word-score -1 -0.5 0
    python experiments/rescore.py runs/B/model.safetensors data/digits/loso_test_george.jsonl \\
        --with runs/L/ctc.safetensors --union --combine posterior --lm-weight 0 --word-score 0

Measured on en-small: docs/lab/speech-log.md. The single-member case (the bundle at warp 1.0)
is what ``ctc_beam``'s ``rescore`` option ships.
"""

from __future__ import annotations

import argparse
import itertools

import jiwer
import numpy as np
import torch
from common import posteriors

from seqpipe.decoders.ctc_beam import ctc_log_likelihoods
from seqpipe.pipeline import Pipeline


def final_beams(decoder, utterances: list[torch.Tensor], nbest: int) -> list[list]:
    """Each utterance's final beam as up to ``nbest`` distinct (words, lm score), best first:
    the pieces ``ctc_beam``'s ``rescore`` option uses."""
    decoder.set_options(rescore=nbest)
    decoder._shared()
    return [decoder.distinct_words(decoder._search(u)) for u in utterances]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("manifest", help="a VALIDATION manifest")
    parser.add_argument("--warps", type=float, nargs="+", default=[1.0])
    parser.add_argument("--with", dest="others", nargs="*", default=[], help="more bundles")
    parser.add_argument("--nbest", type=int, default=32)
    parser.add_argument(
        "--combine",
        choices=["loglik", "posterior"],
        default="loglik",
        help="members' mean log-likelihood, or the log of their mean posterior over the "
        "candidates (each member's likelihoods normalised first: the sum rule)",
    )
    parser.add_argument(
        "--union", action="store_true", help="also rescore the --with bundles' own final beams"
    )
    parser.add_argument("--lm-weight", type=float, nargs="+", default=[2.0])
    parser.add_argument("--word-score", type=float, nargs="+", default=[-1.0])
    args = parser.parse_args()
    pipeline = Pipeline.load(args.bundle, device=torch.device("cpu")).eval()
    decoder = pipeline.decoder
    examples = pipeline.task.load_data(args.manifest, train=False)
    refs = [e["text"] for e in examples]
    # posteriors() gives log-probs already; each member's [T, V] per utterance
    members = [posteriors(pipeline, examples, a) for a in args.warps]
    others = [Pipeline.load(o, device=torch.device("cpu")).eval() for o in args.others]
    members += [posteriors(member, examples, 1.0) for member in others]
    members = [[u.float().contiguous() for u in m] for m in members]
    # the unwarped bundle's own, which the beam search reads (computed once)
    plain = members[args.warps.index(1.0)] if 1.0 in args.warps else [
        u.float().contiguous() for u in posteriors(pipeline, examples, 1.0)
    ]  # fmt: skip
    beams = final_beams(decoder, plain, args.nbest)
    if args.union:  # each --with bundle's own final beam joins the candidates
        for j, member in enumerate(others, start=len(args.warps)):
            extras = final_beams(member.decoder, members[j], args.nbest)
            for beam, extra in zip(beams, extras, strict=True):
                seen = {tuple(words) for words, _ in beam}
                beam += [(w, lm) for w, lm in extra if tuple(w) not in seen]
    print(f"distinct hypotheses per utterance: mean {np.mean([len(b) for b in beams]):.1f}")
    texts = [[" ".join(words) for words, _ in beam] for beam in beams]
    print(f"beam's own best: WER {jiwer.wer(refs, [t[0] for t in texts]):.4f}")
    oracle = [
        min(t, key=lambda h, r=r: jiwer.wer(r, h) if r else len(h))
        for t, r in zip(texts, refs, strict=True)
    ]
    print(f"oracle among the candidates: WER {jiwer.wer(refs, oracle):.4f}")
    lm_scores = [np.array([lm for _, lm in beam]) for beam in beams]
    n_words = [np.array([len(words) for words, _ in beam]) for beam in beams]
    am = []  # per utterance: the members' combined exact log-likelihood of each hypothesis
    for i, beam in enumerate(beams):
        spelled = [decoder._spell(words) for words, _ in beam]
        scores = [ctc_log_likelihoods([m[i]] * len(beam), spelled, decoder.blank) for m in members]
        scores = torch.stack(scores)  # [members, hypotheses]
        if args.combine == "posterior":
            am.append((scores.log_softmax(1).logsumexp(0) - np.log(len(members))).numpy())
        else:
            am.append(scores.mean(0).numpy())
    print("lm_weight word_score     wer")
    for lw, ws in itertools.product(args.lm_weight, args.word_score):
        picks = [
            t[int(np.argmax(a + lw * lm + ws * n))]
            for t, a, lm, n in zip(texts, am, lm_scores, n_words, strict=True)
        ]
        print(f"{lw:9.2f} {ws:10.2f}  {jiwer.wer(refs, picks):.4f}")


if __name__ == "__main__":
    main()
