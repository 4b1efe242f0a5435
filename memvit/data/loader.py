# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA in stream order, the one way training and evaluation load it (PySlowFast's ``construct_loader``):
the split's sampler (:func:`stream_sampler`) and the DataLoader over it (:func:`stream_loader`),
or both at once for a split (:func:`build_loader`).

Every batch row is one video stream, one keyframe per iteration, so the model's memory follows
each stream across iterations (:class:`memvit.data.streams.StreamBatchSampler`).

**Which worker reads what.** A DataLoader hands whole batches to its workers in turn, so with ``N``
workers each one reads every ``N``-th second of every stream. That suits frame folders (any frame
is one file away) but not video files, where a worker would decode every stream's video through
the seconds it skips. Datasets that decode forward (``AVA.VIDEO_DIR``: ``dataset.decodes_forward``)
are read with the rows dealt out instead (:class:`StreamRowLoader`): worker ``w`` reads rows
``w, w + N, ...`` of every batch, so it follows its own streams second after second and decodes
each video once; the main process puts each batch back together in row order. The samples are
the same either way (every draw comes from the sample's key, not from the worker)."""

from __future__ import annotations

import signal
from typing import Any

import torch


def stream_sampler(cfg: Any, dataset: Any, split: str, *, batch_size: int | None = None, num_replicas: int = 1,
                   rank: int = 0) -> Any:
    """The stream order of ``split`` for one process. ``"train"``: the videos shuffled every epoch
    (seed ``RNG_SEED``), streams that wrap around so every row has a keyframe in every iteration,
    ``batch_size`` streams (default ``TRAIN.BATCH_SIZE``) in each of ``TRAIN.STREAM_GROUPS`` groups
    that take turns. Any other split: in order, no keyframe twice, ``TEST.BATCH_SIZE`` streams (or
    ``batch_size``)."""
    from .streams import StreamBatchSampler

    train = split == "train"
    batch = batch_size or (cfg.TRAIN.BATCH_SIZE if train else cfg.TEST.BATCH_SIZE)
    return StreamBatchSampler(dataset.keyframe_ids(), batch, num_replicas=num_replicas, rank=rank,
                              shuffle=train, wrap=train, seed=cfg.RNG_SEED,
                              groups=cfg.TRAIN.STREAM_GROUPS if train else 1)


def stream_loader(cfg: Any, dataset: Any, sampler: Any, *, device: torch.device | str = "cpu",
                  epoch: int = 0) -> torch.utils.data.DataLoader | StreamRowLoader:
    """The DataLoader over ``dataset`` in the order of ``sampler``: ``DATA_LOADER.NUM_WORKERS``
    workers, batches by :func:`memvit.data.ava.ava_collate`, memory pinned for a CUDA ``device``
    (``DATA_LOADER.PIN_MEMORY``).

    The workers' base seed comes from a generator of its own, seeded ``RNG_SEED + epoch``, never
    from the global one dropout uses: a resumed run draws exactly what the uninterrupted one drew,
    and an evaluation inside training leaves the training's random state alone. The workers leave
    SIGTERM to the main process, which checkpoints (training) and shuts them down."""
    from .ava import ava_collate

    workers = cfg.DATA_LOADER.NUM_WORKERS
    pin = cfg.DATA_LOADER.PIN_MEMORY and torch.device(device).type == "cuda"
    generator = torch.Generator().manual_seed(cfg.RNG_SEED + epoch)
    if getattr(dataset, "decodes_forward", False):
        rows = -(-sampler.batch_size // max(1, workers))  # row j on worker j % workers, in every group
        dataset.source.serve_streams(rows * sampler.groups)
        if workers > 1:
            return StreamRowLoader(dataset, sampler, workers=workers, pin_memory=pin, generator=generator)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=ava_collate, num_workers=workers, generator=generator,
        pin_memory=pin, worker_init_fn=_ignore_sigterm)


class _RowsOfWorker(torch.utils.data.IterableDataset):
    """In DataLoader worker ``w`` of ``N``: for every batch, the samples of its rows ``w, w + N, ...``
    (an empty list where it has none), so every worker yields one item per batch."""

    def __init__(self, dataset: Any, batches: list[list[Any]]) -> None:
        self.dataset, self.batches = dataset, batches

    def __iter__(self) -> Any:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for batch in self.batches:
            yield [self.dataset[key] for key in batch[worker::workers]]


class StreamRowLoader:
    """Batches of stream rows with each row's stream kept on one DataLoader worker (see the module
    docstring); iterates like the DataLoader it wraps, one :func:`memvit.data.ava.ava_collate` batch
    per iteration of ``sampler``."""

    def __init__(self, dataset: Any, sampler: Any, *, workers: int, pin_memory: bool = False,
                 generator: torch.Generator | None = None) -> None:
        self.dataset, self.sampler, self.workers = dataset, sampler, workers
        self.pin_memory, self.generator = pin_memory, generator

    def __len__(self) -> int:
        return len(self.sampler) - self.sampler.start_iteration

    def __iter__(self) -> Any:
        from .ava import ava_collate

        batches = list(self.sampler)  # consumes a resume point, as a DataLoader's iteration does
        loader = torch.utils.data.DataLoader(
            _RowsOfWorker(self.dataset, batches), batch_size=None, collate_fn=_as_is, num_workers=self.workers,
            pin_memory=self.pin_memory, generator=self.generator, worker_init_fn=_ignore_sigterm)
        parts = iter(loader)
        for batch in batches:
            rows: list[Any] = [None] * len(batch)
            for worker in range(self.workers):  # DataLoader returns the workers' items in turn
                rows[worker::self.workers] = next(parts)
            yield ava_collate(rows)


def _as_is(item: Any) -> Any:
    return item


def build_loader(cfg: Any, split: str, *, num_replicas: int = 1, rank: int = 0, device: torch.device | str = "cpu",
                 batch_size: int | None = None) -> torch.utils.data.DataLoader:
    """The AVA dataset of ``split`` (:func:`memvit.data.ava.build_ava_dataset`) in stream order, for
    one process of ``num_replicas``: :func:`stream_sampler` and :func:`stream_loader` at epoch 0."""
    from .ava import build_ava_dataset

    dataset = build_ava_dataset(cfg, split)
    sampler = stream_sampler(cfg, dataset, split, batch_size=batch_size, num_replicas=num_replicas, rank=rank)
    return stream_loader(cfg, dataset, sampler, device=device)


def _ignore_sigterm(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM to the main process."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


__all__ = ["StreamRowLoader", "build_loader", "stream_loader", "stream_sampler"]
