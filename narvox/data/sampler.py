"""Duration-bucketed dynamic batching that shards across DDP ranks."""
from __future__ import annotations

import math
import random
from typing import Iterator, Sequence

from torch.utils.data import Sampler


def _dist_rank_world() -> tuple[int, int]:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances holding at most `max_seconds` of padded audio.

    Utterances are sorted by duration and cut into `num_buckets` equal-count buckets; each epoch
    shuffles inside buckets, packs batches greedily (cost = longest duration x batch size), then
    shuffles the batch order. Every rank builds the same batch list from the same seed and takes
    every `world_size`-th batch; the list is padded by repeating its first batches so that all
    ranks run the same number of steps (as DistributedSampler does). An utterance longer than
    `max_seconds` forms a batch of its own rather than being dropped.
    """

    def __init__(self, durations: Sequence[float], max_seconds: float, num_buckets: int = 8,
                 shuffle: bool = True, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None):
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        if not durations:
            raise ValueError("cannot batch an empty dataset")
        self.durations = list(durations)
        self.max_seconds = max_seconds
        self.num_buckets = max(1, min(num_buckets, len(durations)))
        self.shuffle = shuffle
        self.seed = seed
        default_rank, default_world = _dist_rank_world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world of size {self.world_size}")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _pack(self, indices: list[int]) -> list[list[int]]:
        batches, batch, longest = [], [], 0.0
        for i in indices:
            d = self.durations[i]
            if batch and max(longest, d) * (len(batch) + 1) > self.max_seconds:
                batches.append(batch)
                batch, longest = [], 0.0
            batch.append(i)
            longest = max(longest, d)
        if batch:
            batches.append(batch)
        return batches

    def all_batches(self) -> list[list[int]]:
        """The whole epoch's batches before sharding (identical on every rank)."""
        rng = random.Random(self.seed + self.epoch)
        order = sorted(range(len(self.durations)), key=lambda i: self.durations[i])
        size = math.ceil(len(order) / self.num_buckets)
        batches = []
        for b in range(0, len(order), size):
            bucket = order[b:b + size]
            if self.shuffle:
                rng.shuffle(bucket)
                bucket.sort(key=lambda i: self.durations[i])  # stable: equal lengths stay shuffled
            batches += self._pack(bucket)
        if self.shuffle:
            rng.shuffle(batches)
        shortfall = -len(batches) % self.world_size
        return batches + batches[:shortfall]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.all_batches()[self.rank::self.world_size]

    def __len__(self) -> int:
        return len(self.all_batches()) // self.world_size


def _seed_worker_rng(worker_id: int) -> None:
    """Each loader worker's dataset draws from its own stream (datasets keep theirs in `.rng`)."""
    import numpy as np
    import torch
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(torch.initial_seed() % 2**32)


def bucketed_loader(dataset, durations: Sequence[float], max_seconds: float, collate, shuffle: bool,
                    seed: int = 0, num_workers: int = 1):
    """A DataLoader of DurationBatchSampler batches over `dataset`. Built when Lightning asks for
    it, after DDP has started, so the sampler finds its rank and world size."""
    from torch.utils.data import DataLoader
    sampler = DurationBatchSampler(durations, max_seconds, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                      worker_init_fn=_seed_worker_rng if num_workers else None,
                      persistent_workers=num_workers > 0)
