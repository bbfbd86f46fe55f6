"""``attention_beam``: beam search for encoder-decoder speech models (``las``, ``seq2seq``).

The model contract (``seqpipe/models/seq2seq.py``): ``state = encode(x, lengths)``,
``logits, state = decode_step(token[B], state)`` from ``token = model.sos_id``,
``reorder_state(state, index)`` and ``state["weights"]`` (the attention over encoder
frames). All B utterances x K beams advance together as one batch of B*K rows, so each
step is one O(1) decoder call whatever the beam. The end token is the task's blank
(``eos`` overrides it). Scores are length-normalised (``score / len ** length_penalty``)
so short hypotheses do not win by default.

Word times come from the model's CTC head when it has one (forced alignment in
:mod:`seqpipe.speech.alignment`), else from where the attention peaked for each token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqpipe.decoders.hypothesis import DecodeOutput, Hypothesis, TokenText
from seqpipe.types import NonNegativeFloat, PositiveFloat, PositiveInt


class AttentionBeam:
    def __init__(
        self,
        vocab: Sequence[str],
        blank: int = 0,
        beam_size: PositiveInt = 8,
        length_penalty: NonNegativeFloat = 1.0,
        max_ratio: PositiveFloat = 1.5,
        eos: int | None = None,
    ):
        self.text = TokenText(vocab, blank)
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.max_ratio = max_ratio  # output tokens per encoder frame, at most
        self.eos = blank if eos is None else eos

    @torch.inference_mode()
    def decode_batch(
        self, model: torch.nn.Module, feats: torch.Tensor, feat_lengths: torch.Tensor
    ) -> DecodeOutput:
        state = model.encode(feats, feat_lengths)
        mask = state["mask"]
        B = mask.shape[0]
        enc_lengths = state.get("lengths", mask.sum(1)).cpu().long()
        log_probs = None
        if hasattr(model, "ctc_head"):
            log_probs = torch.log_softmax(model.ctc_head(state["memory"]).float(), -1).cpu()
        longest = int(torch.argmax(feat_lengths))
        ratio = float(feat_lengths[longest]) / max(1, int(enc_lengths[longest]))
        hyps = self.search(model, state, B, enc_lengths, mask.device)
        return DecodeOutput(hyps, log_probs, enc_lengths if log_probs is not None else None, ratio)

    def search(self, model, state, B: int, enc_lengths: torch.Tensor, device) -> list[Hypothesis]:
        K, eos = self.beam_size, self.eos
        rows = torch.arange(B, device=device).repeat_interleave(K)
        state = model.reorder_state(state, rows)
        scores = torch.full((B, K), float("-inf"), device=device)
        scores[:, 0] = 0.0  # one live beam per utterance at the start
        token = torch.full((B * K,), model.sos_id, dtype=torch.long, device=device)
        finished = torch.zeros(B, K, dtype=torch.bool, device=device)
        history: list[torch.Tensor] = []  # per step: token [B,K], frame [B,K], logp [B,K]
        limit = (enc_lengths.to(device) * self.max_ratio).long() + 1  # per utterance
        for step in range(int(limit.max()) + 1):
            logits, state = model.decode_step(token, state)
            logp = torch.log_softmax(logits.float(), dim=-1).view(B, K, -1)
            V = logp.shape[-1]
            # a finished beam only extends with eos, at no cost, so it keeps its score
            done_row = torch.full((V,), float("-inf"), device=device)
            done_row[eos] = 0.0
            stop = finished | (step >= limit)[:, None]  # too long: must end now
            logp = torch.where(stop[..., None], done_row, logp)
            total = (scores[..., None] + logp).view(B, K * V)
            scores, flat = total.topk(K, dim=1)
            beam, tok = flat // V, flat % V
            frames = state["weights"].view(B, K, -1).argmax(-1).gather(1, beam)
            step_logp = logp.view(B, K * V).gather(1, flat)
            history = [h.gather(2, beam[None].expand(3, -1, -1)) for h in history]
            history.append(torch.stack([tok.float(), frames.float(), step_logp]))
            finished = finished.gather(1, beam) | (tok == eos)
            state = model.reorder_state(
                state, (beam + torch.arange(B, device=device)[:, None] * K).flatten()
            )
            token = tok.flatten()
            if bool(finished.all()):
                break
        steps = torch.stack(history, dim=-1).cpu() if history else torch.zeros(3, B, K, 0)
        lengths = (steps[0] != eos).sum(-1).clamp(min=1).float()  # tokens before eos
        normed = scores.cpu() / lengths**self.length_penalty
        best = normed.argmax(1)
        hyps = []
        for b in range(B):
            k = int(best[b])
            tokens, frames, logps = steps[0, b, k].long(), steps[1, b, k].long(), steps[2, b, k]
            n = int((tokens != eos).cumprod(0).sum())  # up to the first eos
            frames = frames[:n].clamp(max=max(0, int(enc_lengths[b]) - 1))
            hyps.append(
                Hypothesis(
                    text=self.text.text(tokens[:n].tolist()),
                    tokens=tokens[:n].tolist(),
                    score=float(normed[b, k]),
                    frames=frames.tolist(),
                    confidences=logps[:n].exp().tolist(),
                )
            )
        return hyps
