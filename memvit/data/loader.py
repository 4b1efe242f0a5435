# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA in stream order, the one way training and evaluation load it (PySlowFast's ``construct_loader``):
the split's sampler (:func:`stream_sampler`) and the DataLoader over it (:func:`stream_loader`),
or both at once for a split (:func:`build_loader`).

Every batch row is one video stream, one keyframe per iteration, so the model's memory follows
each stream across iterations (:class:`memvit.data.streams.StreamBatchSampler`).

**Which worker reads what.** A DataLoader hands whole batches to its workers in turn, so with ``N``
workers each one reads every ``N``-th batch. That suits frame folders (any frame is one file away)
but not video files, where a worker must follow a stream second after second, or it decodes every
stream's video through the seconds it skips. Datasets that decode forward (``AVA.VIDEO_DIR``:
``dataset.decodes_forward``) therefore keep each stream on one worker:

* with ``TRAIN.STREAM_GROUPS`` a multiple of ``N``, iteration ``k`` is a batch of group ``k % G``
  and goes to worker ``k % N``: every group, and so every stream, stays on one worker, and whole
  batches are dealt out as for frame folders (collated in the worker, nothing to merge);
* otherwise the rows are dealt out (:class:`StreamRowLoader`): worker ``w`` reads rows
  ``w, w + N, ...`` of every batch and collates them; the main process interleaves the workers'
  parts back into row order (one copy of the clips).

The samples are the same either way (every draw comes from the sample's key, not from the worker)."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import signal
from typing import Any

import torch

logger = logging.getLogger(__name__)


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
        whole_batches = workers <= 1 or sampler.groups % workers == 0  # group g on worker g % workers
        if whole_batches:  # a worker serves its groups' rows
            rows, groups = sampler.batch_size, -(-sampler.groups // max(1, workers))
        else:  # row j on worker j % workers, in every group
            rows, groups = -(-sampler.batch_size // workers), sampler.groups
        dataset.source.serve_streams(rows * groups)
        if not whole_batches:
            return StreamRowLoader(dataset, sampler, workers=workers, pin_memory=pin, generator=generator)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=ava_collate, num_workers=workers, generator=generator,
        pin_memory=pin, worker_init_fn=_ignore_sigterm)


class _RowsOfWorker(torch.utils.data.IterableDataset):
    """In DataLoader worker ``w`` of ``N``: for every batch, its rows ``w, w + N, ...`` collated
    (None where it has none), so every worker yields one item per batch."""

    def __init__(self, dataset: Any, batches: list[list[Any]]) -> None:
        self.dataset, self.batches = dataset, batches

    def __iter__(self) -> Any:
        from .ava import ava_collate

        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for batch in self.batches:
            rows = batch[worker::workers]
            yield ava_collate([self.dataset[key] for key in rows]) if rows else None


class StreamRowLoader:
    """Batches of stream rows with each row's stream kept on one DataLoader worker (see the module
    docstring); iterates like the DataLoader it wraps, one :func:`memvit.data.ava.ava_collate` batch
    per iteration of ``sampler``.

    Each worker collates its rows and sends them as one part. Sent row by row (four tensors a row,
    each its own shared-memory block) and collated again here, the same clips cost about twice the
    CPU of whole batches."""

    def __init__(self, dataset: Any, sampler: Any, *, workers: int, pin_memory: bool = False,
                 generator: torch.Generator | None = None) -> None:
        self.dataset, self.sampler, self.workers = dataset, sampler, workers
        self.pin_memory, self.generator = pin_memory, generator

    def __len__(self) -> int:
        return len(self.sampler) - self.sampler.start_iteration

    def __iter__(self) -> Any:
        batches = list(self.sampler)  # consumes a resume point, as a DataLoader's iteration does
        loader = torch.utils.data.DataLoader(
            _RowsOfWorker(self.dataset, batches), batch_size=None, collate_fn=_as_is, num_workers=self.workers,
            generator=self.generator, worker_init_fn=_ignore_sigterm)
        parts = iter(loader)
        for batch in batches:  # the DataLoader returns the workers' items in turn
            yield interleave_rows([next(parts) for _ in range(self.workers)], len(batch), pin_memory=self.pin_memory)


def interleave_rows(parts: list[dict[str, Any] | None], size: int, *, pin_memory: bool = False) -> dict[str, Any]:
    """The batch of ``size`` rows whose rows ``w, w + N, ...`` are the rows of ``parts[w]`` (N parts, each an
    :func:`memvit.data.ava.ava_collate` batch or None): what ``ava_collate`` gives for all rows at once, but
    with the data problems in part order."""
    from .ava import check_clip_sizes

    workers = len(parts)
    given = [(w, part) for w, part in enumerate(parts) if part is not None]
    check_clip_sizes({(size, *part["video"].shape[1:]) for _, part in given})
    first = given[0][1]["video"]
    video = torch.empty((size, *first.shape[1:]), dtype=first.dtype, pin_memory=pin_memory)
    for w, part in given:
        video[w::workers] = part["video"]
    # the boxes of a part's row r belong to row w + r * N; ava_collate orders boxes by row, then as a sample has them
    rows = torch.cat([part["boxes"][:, 0] * workers + w for w, part in given])
    order = torch.sort(rows, stable=True).indices
    boxes = torch.cat([part["boxes"] for _, part in given])[order]
    boxes[:, 0] = rows[order]
    box_keys = [key for _, part in given for key in part["box_keys"]]
    batch = {"video": video, "boxes": boxes,
             "labels": torch.cat([part["labels"] for _, part in given])[order],
             "ori_boxes": torch.cat([part["ori_boxes"] for _, part in given])[order],
             "box_keys": [box_keys[i] for i in order.tolist()],
             "problems": [problem for _, part in given for problem in part["problems"]]}
    for name in ("video_ids", "secs", "streams"):
        values: list[Any] = [None] * size
        for w, part in given:
            values[w::workers] = part[name]
        batch[name] = values
    return batch


def _as_is(item: Any) -> Any:
    return item


def build_loader(cfg: Any, split: str, *, num_replicas: int = 1, rank: int = 0, device: torch.device | str = "cpu",
                 batch_size: int | None = None) -> torch.utils.data.DataLoader:
    """The AVA dataset of ``split`` (:func:`memvit.data.ava.build_ava_dataset`) in stream order, for
    one process of ``num_replicas``: :func:`stream_sampler` and :func:`stream_loader` at epoch 0."""
    from .ava import build_ava_dataset

    dataset = build_ava_dataset(cfg, split)
    if split != "train":
        batch_size = batch_for_clip_sizes(dataset, batch_size or cfg.TEST.BATCH_SIZE)
    sampler = stream_sampler(cfg, dataset, split, batch_size=batch_size, num_replicas=num_replicas, rank=rank)
    return stream_loader(cfg, dataset, sampler, device=device)


def batch_for_clip_sizes(dataset: Any, batch: int) -> int:
    """``batch``, or 1 where the split's clips come in more than one size (full-frame test clips of videos
    with other aspect ratios, say from two cameras): such clips cannot share a batch, and finding that out
    in the middle of an evaluation, after training, would lose it. One stream per process is how the
    reference tests (it asserts NUM_GPUS == TEST.BATCH_SIZE); the log says so at the evaluation's start."""
    if batch <= 1 or dataset.transform.mode != "test":  # val clips are centre crops: one size
        return batch
    videos_of: dict[tuple[int, int], list[str]] = {}
    for video in sorted({keyframe.video for keyframe in dataset.keyframes}):
        frame = dataset.source.frame_size(video)
        if frame is not None:
            videos_of.setdefault(dataset.transform.full_frame_size(*frame), []).append(video)
    if len(videos_of) <= 1:
        return batch
    sizes = ", ".join(f"{h}x{w} ({len(videos)} videos, e.g. {videos[0]})"
                      for (h, w), videos in sorted(videos_of.items()))
    logger.warning("evaluation: the clips of this split come in %d sizes (%s); clips of different sizes cannot "
                   "share a batch, so TEST.BATCH_SIZE %d is taken as 1 here: one stream per process, as the "
                   "reference tests (it runs TEST.BATCH_SIZE processes); with fewer processes the split is cut "
                   "into fewer streams than the reference's", len(videos_of), sizes, batch)
    return 1


def _ignore_sigterm(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM to the main process (see :func:`_kill_workers_at_exit`)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _kill_workers_at_exit() -> None:
    """Daemonic children die with the main process: multiprocessing sends them SIGTERM at exit, then waits.
    Our workers ignore SIGTERM, so a worker still running at exit, as after an error raised in a worker (its
    traceback keeps the loader alive), made a failed run wait forever instead of exiting; they are killed
    first (torch's SIGCHLD check, which would report the kill as a second error, is reset). Registered after
    multiprocessing's own exit function, so it runs before it."""
    workers = [process for process in multiprocessing.active_children() if process.daemon]
    if workers:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for process in workers:
        process.kill()


atexit.register(_kill_workers_at_exit)


__all__ = ["StreamRowLoader", "batch_for_clip_sizes", "build_loader", "interleave_rows", "stream_loader",
           "stream_sampler"]
