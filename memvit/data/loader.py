# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA in stream order, the one way training and evaluation load it (PySlowFast's ``construct_loader``):
the split's sampler (:func:`stream_sampler`) and the DataLoader over it (:func:`stream_loader`),
or both at once for a split (:func:`build_loader`).

Every batch row is one video stream, one keyframe per iteration, so the model's memory follows
each stream across iterations (:class:`memvit.data.streams.StreamBatchSampler`)."""

from __future__ import annotations

import signal
from typing import Any

import torch


def stream_sampler(cfg: Any, dataset: Any, split: str, *, batch_size: int | None = None, num_replicas: int = 1,
                   rank: int = 0) -> Any:
    """The stream order of ``split`` for one process. ``"train"``: the videos shuffled every epoch
    (seed ``RNG_SEED``), streams that wrap around so every row has a keyframe in every iteration,
    ``batch_size`` streams (default ``TRAIN.BATCH_SIZE``). Any other split: in order, no keyframe
    twice, ``TEST.BATCH_SIZE`` streams (or ``batch_size``)."""
    from .streams import StreamBatchSampler

    train = split == "train"
    batch = batch_size or (cfg.TRAIN.BATCH_SIZE if train else cfg.TEST.BATCH_SIZE)
    return StreamBatchSampler(dataset.keyframe_ids(), batch, num_replicas=num_replicas, rank=rank,
                              shuffle=train, wrap=train, seed=cfg.RNG_SEED)


def stream_loader(cfg: Any, dataset: Any, sampler: Any, *, device: torch.device | str = "cpu",
                  epoch: int = 0) -> torch.utils.data.DataLoader:
    """The DataLoader over ``dataset`` in the order of ``sampler``: ``DATA_LOADER.NUM_WORKERS``
    workers, batches by :func:`memvit.data.ava.ava_collate`, memory pinned for a CUDA ``device``
    (``DATA_LOADER.PIN_MEMORY``).

    The workers' base seed comes from a generator of its own, seeded ``RNG_SEED + epoch``, never
    from the global one dropout uses: a resumed run draws exactly what the uninterrupted one drew,
    and an evaluation inside training leaves the training's random state alone. The workers leave
    SIGTERM to the main process, which checkpoints (training) and shuts them down."""
    from .ava import ava_collate

    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=ava_collate, num_workers=cfg.DATA_LOADER.NUM_WORKERS,
        generator=torch.Generator().manual_seed(cfg.RNG_SEED + epoch),
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.device(device).type == "cuda",
        worker_init_fn=_ignore_sigterm)


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


__all__ = ["build_loader", "stream_loader", "stream_sampler"]
