"""``speech``: speech-to-text from JSONL manifests, CTC (+ attention) loss, WER/CER.

Examples are manifest entries; audio is read in ``collate`` (so in DataLoader workers
and never all in memory) and features run inside the pipeline on the model's device:
``pipeline.features(waves, lengths)``. Targets are the characters of
:func:`seqpipe.text.normalize`'d text, the same normalisation used for scoring.

Models: any CTC model ``forward(x, lengths) -> (logits, out_lengths)`` (``ctc_rnn``), or
one whose ``joint`` is true and whose ``forward(x, lengths, targets, joint=True)`` returns
``(attention logits, CTC logits, CTC lengths)`` (``las``; ``ctc_rnn`` with a speller), trained on ``ctc_weight * CTC + (1 - ctc_weight) * attention cross-entropy``;
its attention targets end with the blank id as end token.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from seqpipe.errors import SeqpipeError
from seqpipe.tasks.base import Task
from seqpipe.text import BLANK, VOCAB, encode, normalize
from seqpipe.types import PositiveFloat, Probability


class SpeechTask(Task):
    """Speech recognition with a character vocabulary (index 0 = CTC blank)."""

    model_shapes = ("many-to-many",)

    primary_metric = "wer"
    higher_is_better = False

    def __init__(
        self,
        ctc_weight: Probability = 0.3,
        max_duration: PositiveFloat = 30.0,
        min_duration: float = 0.05,
    ):
        self.ctc_weight = ctc_weight
        self.max_duration = max_duration
        self.min_duration = min_duration
        self.vocab = list(VOCAB)
        self.blank = 0
        self.sample_rate = 16000

    def wire(self, features: Any) -> dict[str, Any]:
        self.sample_rate = int(getattr(features, "sample_rate", self.sample_rate))
        V = len(self.vocab)
        return {
            "input_size": features.output_size,
            "output_size": V,
            "vocab_size": V,
            "vocab": self.vocab,
            "blank": self.blank,
        }

    # -- data ----------------------------------------------------------------------

    def load_data(self, source: Any, *, train: bool) -> Sequence[dict[str, Any]]:
        """One manifest path or a list of them; training drops too-long/too-short/empty utterances."""
        from seqpipe.data.manifest import read_manifest

        sources = source if isinstance(source, list | tuple) else [source]
        entries = []
        for path in sources:
            for entry in read_manifest(path):
                entry["text"] = normalize(entry["text"])
                if train and (
                    not entry["text"]
                    or not self.min_duration
                    <= float(entry.get("duration", 1.0))
                    <= self.max_duration
                ):
                    continue
                entries.append(entry)
        if not entries:
            raise SeqpipeError(f"{', '.join(map(str, sources))}: no usable utterances")
        return entries

    def length(self, example: dict[str, Any]) -> int:
        return max(1, int(float(example.get("duration", 1.0)) * 100))

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from seqpipe.audio import load_audio

        waves = [torch.from_numpy(load_audio(e["audio"], self.sample_rate)) for e in examples]
        targets = [torch.tensor(encode(e["text"]), dtype=torch.long) for e in examples]
        lengths = torch.tensor([len(w) for w in waves])
        target_lengths = torch.tensor([len(t) for t in targets])
        return {
            "waves": torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
            "lengths": lengths,
            "targets": torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=-1)
            if max(target_lengths) > 0
            else torch.full((len(examples), 1), -1),
            "target_lengths": target_lengths,
            "audio": [str(e["audio"]) for e in examples],  # so a report can name the file
        }

    # -- loss ----------------------------------------------------------------------

    def loss(self, pipeline, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        feats, feat_lengths = pipeline.features(batch["waves"], batch["lengths"])
        targets, target_lengths = batch["targets"], batch["target_lengths"]
        model = pipeline.model
        if getattr(model, "joint", False):
            with_eos = _append_eos(targets, target_lengths, self.blank)
            # through forward (not model.forward_joint): DDP only syncs what forward computed
            att_logits, ctc_logits, ctc_lengths = model(feats, feat_lengths, with_eos, joint=True)
            ce = F.cross_entropy(att_logits.float().transpose(1, 2), with_eos, ignore_index=-1)
            ctc = self._ctc(ctc_logits, ctc_lengths, targets, target_lengths)
            loss = self.ctc_weight * ctc + (1 - self.ctc_weight) * ce
        else:
            logits, out_lengths = model(feats, feat_lengths)
            loss = self._ctc(logits, out_lengths, targets, target_lengths)
        return loss, int(targets.shape[0])

    def _ctc(self, logits, lengths, targets, target_lengths) -> torch.Tensor:
        log_probs = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # [T, B, V]
        lengths = torch.as_tensor(lengths, device=log_probs.device).clamp(max=log_probs.shape[0])
        return F.ctc_loss(
            log_probs,
            targets.clamp(min=0),
            lengths,
            target_lengths.to(log_probs.device),
            blank=self.blank,
            reduction="mean",
            zero_infinity=True,  # an utterance too short for its text must not poison the batch
        )

    # -- metrics -------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, pipeline, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """WER/CER (jiwer) with the pipeline's decoder, or greedy CTC when it has none."""
        import jiwer

        from seqpipe.decoders.ctc_greedy import CTCGreedy

        decoder = pipeline.decoder if hasattr(pipeline.decoder, "decode_batch") else None
        decoder = decoder or CTCGreedy(self.vocab, self.blank)
        refs, hyps, files, losses, count, seconds, busy = [], [], [], 0.0, 0, 0.0, 0.0
        for batch in batches:
            loss, n = self.loss(pipeline, batch)
            losses += float(loss) * n
            count += n
            start = time.perf_counter()
            feats, feat_lengths = pipeline.features(batch["waves"], batch["lengths"])
            out = decoder.decode_batch(pipeline.model, feats, feat_lengths)
            busy += time.perf_counter() - start
            seconds += float(batch["lengths"].sum()) / self.sample_rate
            hyps += [h.text for h in out.hypotheses]
            files += batch.get("audio") or [""] * len(out.hypotheses)  # in-memory: no file
            for target, n_chars in zip(
                batch["targets"].cpu(), batch["target_lengths"].cpu(), strict=True
            ):
                refs.append("".join(self.vocab[i] for i in target[: int(n_chars)].tolist()))
        kept = [i for i, r in enumerate(refs) if r.strip()]
        if not kept:
            raise SeqpipeError("evaluation data has no utterance with a non-empty transcript")
        refs, hyps, files = ([x[i] for i in kept] for x in (refs, hyps, files))
        errors = [jiwer.wer(r, h) * len(r.split()) for r, h in zip(refs, hyps, strict=True)]
        worst = sorted(range(len(refs)), key=lambda i: -errors[i])[:5]
        self.worst = [(int(errors[i]), files[i], refs[i], hyps[i]) for i in worst if errors[i] > 0]
        return {
            "wer": float(jiwer.wer(refs, hyps)),
            "cer": float(jiwer.cer(refs, hyps)),
            "loss": losses / max(1, count),
            "rtf": busy / max(seconds, 1e-9),  # features + model + decoder, not file reading
        }

    def report(self, metrics: dict[str, float]) -> str | None:
        """The worst utterances of the last :meth:`evaluate`, for ``seqpipe evaluate``."""
        if not getattr(self, "worst", None):
            return None
        rows = "\n".join(
            f"| {e} | {Path(f).name} | {r} | {h or '(nothing)'} |" for e, f, r, h in self.worst
        )
        head = "| word errors | file | reference | hypothesis |\n|---|---|---|---|"
        return f"**Worst utterances**\n\n{head}\n{rows}"

    def bundle_info(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "vocabulary": self.vocab, "blank": self.blank,
                "blank_symbol": BLANK, "text_normalization": "seqpipe.text.normalize"}  # fmt: skip


def _append_eos(targets: torch.Tensor, lengths: torch.Tensor, eos: int) -> torch.Tensor:
    """[B,U] padded with -1 -> [B,U+1] with ``eos`` after each sequence's last token."""
    out = F.pad(targets, (0, 1), value=-1)
    out[torch.arange(out.shape[0], device=out.device), lengths.to(out.device)] = eos
    return out
