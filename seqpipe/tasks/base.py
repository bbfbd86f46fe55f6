"""What a task is: the data, the loss, the metrics, and how components are wired.

The trainer knows nothing about speech or music; it asks the task. A task plugin
subclasses :class:`Task` (or duck-types it) and registers through ``register_tasks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from seqpipe.pipeline import Pipeline


class Task:
    """Base class for tasks. Options arrive as typed keyword arguments from the config."""

    #: the metric used for early stopping / best checkpoint, and its direction
    primary_metric: str = "loss"
    higher_is_better: bool = False
    #: the model shapes this task can train (``registry.SHAPES``); the pipeline checks a
    #: model's declared shape against them when it is built. Empty: anything goes.
    model_shapes: tuple[str, ...] = ()

    def wire(self, features: Any) -> dict[str, Any]:
        """Sizes and vocabularies handed to the model and decoder constructors.

        For example ``{"input_size": features.output_size, "output_size": len(self.vocab)}``.
        Only the keys a constructor accepts are passed to it.
        """
        raise NotImplementedError

    def load_data(self, source: Any, *, train: bool) -> Sequence[Any]:
        """Return the examples of one data split (``source`` is the config's value for it)."""
        raise NotImplementedError

    def length(self, example: Any) -> int:
        """Length of one example in time steps, used for length-bucketed batching."""
        raise NotImplementedError

    def collate(self, examples: list[Any]) -> dict[str, torch.Tensor]:
        """Pad a list of examples into a batch (tensors, with a ``lengths`` entry)."""
        raise NotImplementedError

    def loss(self, pipeline: Pipeline, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Mean training loss over the batch and the number of items it averages over."""
        raise NotImplementedError

    def evaluate(
        self, pipeline: Pipeline, batches: Iterable[dict[str, torch.Tensor]]
    ) -> dict[str, float]:
        """Metrics on held-out batches (must include ``primary_metric``)."""
        raise NotImplementedError

    # -- optional: truncated backpropagation through time (``train.tbptt: N``) -----------
    #: set True and implement ``chunks`` + ``chunk_loss`` to let the trainer cut long
    #: sequences into windows of N steps; it carries ``state`` from one chunk to the next,
    #: detached (values kept, graph cut), and takes one optimiser step per chunk.
    supports_tbptt: bool = False

    def chunks(self, batch: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
        """Cut a batch into consecutive time windows of ``size`` steps (the last may be shorter)."""
        raise NotImplementedError

    def chunk_loss(
        self, pipeline: Pipeline, chunk: dict[str, torch.Tensor], state: Any
    ) -> tuple[torch.Tensor, int, Any]:
        """Like ``loss`` for one chunk, starting from ``state`` (None for the first chunk);
        returns the loss, its item count and the model's state at the chunk's end."""
        raise NotImplementedError

    def report(self, metrics: dict[str, float]) -> str | None:
        """Optional Markdown that ``seqpipe evaluate`` prints below its metrics table
        (e.g. model vs baseline tables); None prints nothing extra."""
        return None

    def bundle_info(self) -> dict[str, Any]:
        """Facts worth reading without building the pipeline (sample rate, vocabulary...)."""
        return {}
