"""Length-bucketed batches: examples of similar length share a batch, so little is padding.

Each epoch the examples are shuffled, cut into pools of ``pool`` batches, each pool is
sorted by length and cut into batches, and the batches are shuffled again. The order
is a pure function of ``(seed, epoch)``, which is what makes mid-epoch resume exact.

Under DistributedDataParallel every rank computes the same batch list and takes every
``world_size``-th batch (the list is padded by repeating batches so all ranks run the
same number of steps, which DDP needs to avoid a hang).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


class BucketBatchSampler:
    """Yields lists of example indices; use as a DataLoader ``batch_sampler``."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool: int = 50,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = max(1, pool)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0  # batches of this epoch already done (resume mid-epoch)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def epoch_batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch, in order (including those already done)."""
        n = len(self.lengths)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=generator).tolist()
        else:
            generator = None
            order = list(range(n))
        size = self.batch_size * self.pool
        batches: list[list[int]] = []
        for begin in range(0, n, size):
            chunk = sorted(order[begin : begin + size], key=lambda i: -self.lengths[i])
            batches.extend(
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            )
        if generator is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        if self.world_size > 1 and batches:
            padded = -len(batches) % self.world_size
            batches = batches + [batches[i % len(batches)] for i in range(padded)]
            batches = batches[self.rank :: self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches()[self.start :]
        self.start = 0
        yield from batches

    def __len__(self) -> int:
        return len(self.epoch_batches())
