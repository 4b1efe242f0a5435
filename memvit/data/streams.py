# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Stream order for memory models: each batch row walks videos keyframe after keyframe.

MeMViT attends to the clips a batch row saw in earlier iterations, so consecutive keyframes
of a video must reach the *same row* in *consecutive* batches. The reference lays its batches
out this way (PyTorchVideo's samplers and PyTorch's DistributedSampler cannot): the keyframe
list (videos in an order shuffled per epoch, seconds ascending) is cut into
``S = world_size * batch_size`` contiguous streams; iteration ``k`` gives stream ``s`` its
``k``-th keyframe; rank ``r`` owns streams ``r, r + W, r + 2W, ...`` as its rows (the
reference's ``DistributedSampler(shuffle=False)`` over its re-mapped indices, written out).

Consecutive batches of that layout show the same few videos for as long as a stream stays in
one video (a video's seconds, batch after batch): on a small set the gradient steps are far from
independent, and a model trained from scratch learns slowly. ``groups > 1`` (ours,
``TRAIN.STREAM_GROUPS``) cuts ``groups`` times as many streams and lets groups of ``S`` of them
take turns, one group per iteration; every stream still walks its seconds in order, one per turn
of its group, and each group keeps its own memory (:class:`memvit.models.memory.GroupMemories`).

:class:`StreamBatchSampler` is a batch sampler for a map-style dataset: it yields, per
iteration, a list of :class:`StreamKey` (keyframe index, epoch, stream), so every augmentation
draw can be derived from the key (per video and epoch) and any number of DataLoader workers
gives the same batches. It has ``set_epoch`` like ``DistributedSampler`` and a
``state_dict``/``load_state_dict`` to resume mid-epoch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple


class StreamKey(NamedTuple):
    """What a dataset receives for one batch row: keyframe ``index``, ``epoch``, ``stream`` id."""

    index: int
    epoch: int
    stream: int


def stream_order(videos: Sequence[int], epoch: int, seed: int, shuffle: bool) -> list[int]:
    """The video order of an epoch: shuffled with ``Random(seed + epoch)`` (the reference reseeds
    with the epoch), or as given."""
    order = list(dict.fromkeys(videos))
    if shuffle:
        random.Random(seed + epoch).shuffle(order)
    return order


class StreamBatchSampler:
    """Batches of stream rows over keyframes ``(video, sec)`` for one rank.

    Args:
        keyframes: ``(video, sec)`` of every keyframe (any hashable video id), in dataset order;
            the sampler yields indices into this list.
        batch_size: rows per batch on this rank (PySlowFast: the per-GPU batch).
        num_replicas, rank: the DDP world (default: one process).
        shuffle: shuffle the video order every epoch (training); seconds stay ascending.
        wrap: the reference's layout for training: ``ceil(N / S)`` keyframes per stream, the
            last stream wrapping around to the start, so every row has a keyframe in every
            iteration (a few keyframes are seen twice per epoch). ``False`` (evaluation): no
            keyframe twice; streams hold ``floor`` or ``ceil`` of ``N / S`` keyframes, the shorter
            ones last, so only the batch's last rows run dry (the model's memory keeps using
            the first rows of a shrinking batch).
        seed: base of the per-epoch shuffle.
        groups: groups of ``batch_size * num_replicas`` streams that take turns, one per
            iteration (ours; 1: the reference's layout); training layout (``wrap``) only.
    """

    def __init__(self, keyframes: Sequence[tuple[Any, int]], batch_size: int, *, num_replicas: int = 1,
                 rank: int = 0, shuffle: bool = False, wrap: bool = True, seed: int = 0, groups: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if groups < 1 or (groups > 1 and not wrap):
            raise ValueError(f"groups must be >= 1, and 1 without wrap (evaluation); got {groups}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        if not keyframes:
            raise ValueError("no keyframes: nothing to sample (check the box files and the frame lists)")
        self.keyframes = [(video, int(sec)) for video, sec in keyframes]
        self.batch_size, self.num_replicas, self.rank = batch_size, num_replicas, rank
        self.shuffle, self.wrap, self.seed, self.groups = shuffle, wrap, seed, groups
        self.epoch = 0
        self.start_iteration = 0  # set by load_state_dict: the next __iter__ resumes there
        self.streams = batch_size * num_replicas * groups
        by_video: dict[Any, list[int]] = {}
        for index, (video, _) in enumerate(self.keyframes):
            by_video.setdefault(video, []).append(index)
        self._by_video = {video: sorted(indices, key=lambda i: self.keyframes[i][1])
                          for video, indices in by_video.items()}

    # ------------------------------------------------------------------ layout
    def epoch_keyframes(self, epoch: int) -> list[int]:
        """The keyframe indices of an epoch in stream order (videos in epoch order, seconds up)."""
        videos = stream_order(list(self._by_video), epoch, self.seed, self.shuffle)
        return [i for video in videos for i in self._by_video[video]]

    def stream_lengths(self) -> list[int]:
        """Keyframes per global stream (all equal with ``wrap``)."""
        n, s = len(self.keyframes), self.streams
        if self.wrap:
            return [math.ceil(n / s)] * s
        return [n // s + (1 if stream < n % s else 0) for stream in range(s)]

    def __len__(self) -> int:
        """Iterations per epoch (this rank's rows run out no earlier than the last one)."""
        return max(self.stream_lengths()) * self.groups

    def batches(self, epoch: int) -> list[list[StreamKey]]:
        """Every batch of an epoch for this rank. Iteration ``k`` is step ``k // G`` of group
        ``g = k % G``; its row ``j`` is global stream ``g * B * W + rank + W * j``."""
        order = self.epoch_keyframes(epoch)
        n, lengths = len(order), self.stream_lengths()
        starts = [sum(lengths[:s]) for s in range(self.streams)] if not self.wrap else \
            [s * lengths[0] for s in range(self.streams)]
        per_group = self.batch_size * self.num_replicas
        out = []
        for k in range(len(self)):
            group, step = k % self.groups, k // self.groups
            rows = [group * per_group + self.rank + self.num_replicas * j for j in range(self.batch_size)]
            batch = [StreamKey(order[(starts[s] + step) % n], epoch, s) for s in rows if step < lengths[s]]
            if batch:
                out.append(batch)
        return out

    # ------------------------------------------------------------------ sampler protocol
    def set_epoch(self, epoch: int) -> None:
        """Use the video order of ``epoch`` (call before every epoch, as with DistributedSampler)."""
        if epoch != self.epoch:
            self.start_iteration = 0
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[StreamKey]]:
        start, self.start_iteration = self.start_iteration, 0
        yield from self.batches(self.epoch)[start:]

    def state_dict(self, iterations_done: int) -> dict[str, int]:
        """Where the stream stands after ``iterations_done`` batches of the current epoch."""
        return {"epoch": self.epoch, "iteration": int(iterations_done), "streams": self.streams,
                "keyframes": len(self.keyframes)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: the next ``__iter__`` starts at the saved iteration of the saved epoch."""
        if state["streams"] != self.streams or state["keyframes"] != len(self.keyframes):
            raise ValueError(f"cannot resume: the saved stream layout has {state['streams']} streams over "
                             f"{state['keyframes']} keyframes, this one {self.streams} over {len(self.keyframes)} "
                             "(same data, batch size, stream groups and world size are needed)")
        self.epoch = int(state["epoch"])
        self.start_iteration = int(state["iteration"])
