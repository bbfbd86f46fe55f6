"""``classify``: many-to-one sequence classification of audio (spoken digits, commands...).

Data is a JSONL manifest, one ``{"audio": path, "label": ...}`` per line (relative
paths are resolved against the manifest's folder; the label is one of ``labels`` or
its index). The features module turns padded waveforms into frames on the device and
the ``classifier`` model maps them to one logit vector per example.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from seqpipe.errors import SeqpipeError
from seqpipe.tasks.base import Task
from seqpipe.types import PositiveFloat, PositiveInt


class Classify(Task):
    """Cross-entropy training; accuracy (primary) and mean loss on evaluation."""

    model_shapes = ("many-to-one",)

    primary_metric = "accuracy"
    higher_is_better = True

    def __init__(
        self,
        labels: list[str],
        sample_rate: PositiveInt = 16000,
        label_key: str = "label",
        max_seconds: PositiveFloat | None = None,
    ):
        if len(labels) < 2 or len(set(map(str, labels))) != len(labels):
            raise SeqpipeError(
                f"task.labels: expected at least two distinct labels, got {labels!r}"
            )
        self.labels = [str(label) for label in labels]
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.sample_rate = sample_rate
        self.label_key = label_key
        self.max_samples = int(max_seconds * sample_rate) if max_seconds else None

    def wire(self, features: Any) -> dict[str, Any]:
        return {"input_size": features.output_size, "output_size": len(self.labels)}

    def load_data(self, source: Any, *, train: bool) -> list[dict[str, Any]]:
        """Read the manifest and the audio it lists (eagerly: classification sets are small)."""
        from seqpipe.audio import load_audio
        from seqpipe.data.manifest import read_manifest

        path = Path(source)
        examples = []
        for number, entry in enumerate(read_manifest(path, required=("audio", self.label_key)), 1):
            wave = load_audio(entry["audio"], self.sample_rate)
            if self.max_samples:
                wave = wave[: self.max_samples]
            label = self.label_id(entry[self.label_key], f"{path}: entry {number}")
            examples.append({"audio": torch.from_numpy(wave), "label": label})
        if not examples:
            raise SeqpipeError(f"{path}: manifest lists no examples")
        return examples

    def label_id(self, label: Any, where: str) -> int:
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(self.labels):
            return label
        if str(label) in self.index:
            return self.index[str(label)]
        raise SeqpipeError(f"{where}: label {label!r} is not one of task.labels {self.labels}")

    def length(self, example: dict[str, Any]) -> int:
        return int(example["audio"].shape[0])

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(x["audio"]) for x in examples])
        audio = torch.zeros(len(examples), int(lengths.max()))
        for row, x in enumerate(examples):
            audio[row, : len(x["audio"])] = x["audio"]
        labels = torch.tensor([x["label"] for x in examples])
        return {"audio": audio, "lengths": lengths, "labels": labels}

    def logits(self, pipeline, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feats, frames = pipeline.features(batch["audio"], batch["lengths"])
        return pipeline.model(feats, frames)

    def loss(self, pipeline, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        logits = self.logits(pipeline, batch)
        return F.cross_entropy(logits.float(), batch["labels"]), len(batch["labels"])

    def evaluate(self, pipeline, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        correct = total = 0
        loss_sum = 0.0
        for batch in batches:
            logits = self.logits(pipeline, batch).float()
            loss_sum += float(F.cross_entropy(logits, batch["labels"], reduction="sum"))
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
            total += len(batch["labels"])
        return {"accuracy": correct / max(1, total), "loss": loss_sum / max(1, total)}

    def bundle_info(self) -> dict[str, Any]:
        return {"labels": self.labels, "sample_rate": self.sample_rate}
