# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""MeMViT's memory, held as explicit state outside the modules.

A model owns one :class:`MemoryState` (``model.memory``; it is not part of ``state_dict``).
The state holds, per memory layer, the cached clips (:class:`MemoryEntry`: pooled, normalised,
*un-projected* K and V inputs, detached) and, per cached clip, the video id of every batch row.

This module is the one home of the memory protocol; every memory model (MeMViT, and
PyTorchVideo's MViT through ``add_memory``) runs it the same way:

* a forward is one *step*: ``with memory_step(state, video_ids, batch, device) as step:``
  (:meth:`MemoryState.begin_step` chooses the attended clips and applies the video-boundary
  rule; the step is finished, or aborted and the memory restored if the forward raises);
* each memory layer calls :meth:`MemoryStep.update` once (cache the current clip, compress the
  previous one, gather the selected memory), then :func:`memory_key_values` turns
  ``[memory clips..., current clip]`` into the op's key/value segments and key mask.

That contract is named :class:`MemoryBackend` (``begin_step``) and :class:`MemoryBackendStep`
(``update``/``finish``/``abort``). Three back-ends implement it: :class:`MemoryState` here, and
the fixed slot cache of the ONNX step and its probe in :mod:`memvit.models.slot_memory`.

The rules reproduce the reference (facebookresearch/MeMViT):

* Sampler ``gapN``: with ``L`` cached clips, every N-th clip counting back from N steps ago,
  at most ``attn_max_len - 1`` of them (``gap2``: t-2, t-4); ``all``: every cached clip. The
  cache keeps ``keep_max_len - 1`` clips (``(attn_max_len - 1) * N`` for gapN).
* Compression is pipelined: the previous step's raw clip is compressed during the current
  step (so the compression gets a gradient only when that clip, t-1, is attended, which the
  gap samplers never do) and stored compressed and detached.
* Video boundaries (``isolation="zero"``, the reference): cached rows of another video are
  zeroed and still attended when the cached batch is larger than one; with a cached batch of
  one the clips of another video are dropped. ``isolation="mask"`` instead keeps the memory
  and excludes other-video clips from attention with a mask (the fix: zeroed inputs become
  the k/v projection biases, which still receive attention weight).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import Tensor

from memvit_ext import KVSegment

ISOLATION_MODES = ("zero", "mask")


def parse_sampler(sampler: str) -> int | None:
    """The gap of a ``gapN`` sampler, or None for ``all``."""
    if sampler == "all":
        return None
    match = re.fullmatch(r"gap([1-9][0-9]*)", sampler)
    if match is None:
        raise ValueError(f"memory sampler must be 'all' or 'gapN' (N >= 1); got {sampler!r}")
    return int(match.group(1))


def keep_max_len(attn_max_len: int, sampler: str) -> int:
    """Cache capacity of the reference: the cache holds ``keep_max_len - 1`` earlier clips."""
    gap = parse_sampler(sampler)
    return attn_max_len if gap is None else (attn_max_len - 1) * gap + 1


def sample_memory(num_cached: int, sampler: str) -> list[int]:
    """Indices (0 = oldest) of the cached clips the current clip attends to."""
    gap = parse_sampler(sampler)
    if gap is None:
        return list(range(num_cached))
    used = num_cached // gap
    return list(range(num_cached - gap * used, num_cached, gap))


@dataclass(frozen=True)
class MemoryEntry:
    """One cached clip of one layer: ``k``/``v`` are ``(B, tokens, channels)``, detached."""

    k: Tensor
    v: Tensor
    thw: tuple[int, int, int]
    has_cls: bool
    compressed: bool = False
    valid: Tensor | None = None  # (B, tokens) bool: real keys (box slots); None = all real

    def rows(self, index: Tensor) -> MemoryEntry:
        return replace(self, k=self.k[index], v=self.v[index],
                       valid=None if self.valid is None else self.valid[index])

    def to(self, dtype: torch.dtype) -> MemoryEntry:
        """The clip in another floating dtype (memory is read in the current step's dtype)."""
        if self.k.dtype == dtype:
            return self
        return replace(self, k=self.k.to(dtype), v=self.v.to(dtype))


@dataclass
class MemorySnapshot:
    """A copy of a :class:`MemoryState`'s cache that can be stored, sliced by rows and restored."""

    video_ids: list[tuple[Hashable, ...]]
    layers: dict[str, list[MemoryEntry]]

    def select_rows(self, rows: Sequence[int]) -> MemorySnapshot:
        """The memory of some batch rows (e.g. to carry one video stream elsewhere)."""
        rows = [int(r) for r in rows]
        layers = {}
        for name, entries in self.layers.items():
            layers[name] = [e.rows(torch.tensor(rows, device=e.k.device)) for e in entries]
        return MemorySnapshot([tuple(ids[r] for r in rows) for ids in self.video_ids], layers)

    @staticmethod
    def concat_rows(snapshots: Sequence[MemorySnapshot]) -> MemorySnapshot:
        """Stack the memories of several streams into one batch (same cache length and grids)."""
        if not snapshots:
            raise ValueError("concat_rows needs at least one snapshot")
        lengths = {len(s.video_ids) for s in snapshots}
        names = {tuple(sorted(s.layers)) for s in snapshots}
        if len(lengths) != 1 or len(names) != 1:
            raise ValueError("snapshots must have the same number of cached clips and the same layers; "
                             f"got lengths {sorted(lengths)}")
        ids = [sum((s.video_ids[t] for s in snapshots), ()) for t in range(lengths.pop())]
        layers = {}
        for name in snapshots[0].layers:
            merged = []
            for parts in zip(*(s.layers[name] for s in snapshots)):
                if len({(p.thw, p.compressed, p.has_cls) for p in parts}) != 1:
                    raise ValueError(f"layer {name}: cached clips of different grids cannot share a batch")
                valid = None
                if any(p.valid is not None for p in parts):
                    valid = torch.cat([p.valid if p.valid is not None else
                                       torch.ones(p.k.shape[:2], dtype=torch.bool, device=p.k.device)
                                       for p in parts])
                merged.append(replace(parts[0], k=torch.cat([p.k for p in parts]),
                                      v=torch.cat([p.v for p in parts]), valid=valid))
            layers[name] = merged
        return MemorySnapshot(ids, layers)

    def state_dict(self) -> dict[str, Any]:
        """Plain containers and CPU tensors (what ``torch.load(weights_only=True)`` reads back):
        the memory a checkpoint stores so that training resumes exactly."""
        def entry(e: MemoryEntry) -> dict[str, Any]:
            return {"k": e.k.detach().cpu(), "v": e.v.detach().cpu(), "thw": list(e.thw), "has_cls": e.has_cls,
                    "compressed": e.compressed, "valid": None if e.valid is None else e.valid.cpu()}

        return {"video_ids": [list(ids) for ids in self.video_ids],
                "layers": {name: [entry(e) for e in entries] for name, entries in self.layers.items()}}

    @staticmethod
    def from_state_dict(state: dict[str, Any], device: torch.device | str = "cpu") -> MemorySnapshot:
        """The inverse of :meth:`state_dict`, on ``device``."""
        def entry(d: dict[str, Any]) -> MemoryEntry:
            valid = None if d["valid"] is None else d["valid"].to(device)
            return MemoryEntry(d["k"].to(device), d["v"].to(device), tuple(int(x) for x in d["thw"]),
                               bool(d["has_cls"]), bool(d["compressed"]), valid)

        return MemorySnapshot([tuple(ids) for ids in state["video_ids"]],
                              {name: [entry(d) for d in entries] for name, entries in state["layers"].items()})


@dataclass
class LayerMemory:
    """The cached clips of one layer, oldest first."""

    entries: list[MemoryEntry] = field(default_factory=list)


class MemoryState:
    """The memory of a model: per-layer caches plus the video id of every cached row.

    Args:
        layer_names: the layers that cache memory (in forward order).
        attn_max_len: current clip + at most ``attn_max_len - 1`` memory clips (3 in MeMViT).
        sampler: ``"gapN"`` or ``"all"`` (see :func:`sample_memory`).
        isolation: ``"zero"`` (the reference: other-video memory zeroed and still attended
            when the cached batch is > 1) or ``"mask"`` (excluded from attention).
    """

    def __init__(self, layer_names: Sequence[str], attn_max_len: int = 3, sampler: str = "gap2",
                 isolation: str = "zero") -> None:
        if attn_max_len < 1:
            raise ValueError(f"attn_max_len must be >= 1; got {attn_max_len}")
        if isolation not in ISOLATION_MODES:
            raise ValueError(f"memory isolation must be one of {ISOLATION_MODES}; got {isolation!r}")
        self.attn_max_len = attn_max_len
        self.sampler = sampler
        self.keep_max_len = keep_max_len(attn_max_len, sampler)
        self.isolation = isolation
        self.layer_names = list(layer_names)
        self.video_ids: list[tuple[Hashable, ...]] = []
        self.layers: dict[str, LayerMemory] = {name: LayerMemory() for name in self.layer_names}

    @property
    def num_cached(self) -> int:
        """Number of cached clips (steps) per layer."""
        return len(self.video_ids)

    def __repr__(self) -> str:
        return (f"MemoryState(cached={self.num_cached}, batch={len(self.video_ids[0]) if self.video_ids else 0}, "
                f"sampler={self.sampler!r}, attn_max_len={self.attn_max_len}, isolation={self.isolation!r})")

    def empty_copy(self) -> MemoryState:
        """A new, empty memory with the same layers and rules (e.g. one per group of streams)."""
        return MemoryState(self.layer_names, self.attn_max_len, self.sampler, self.isolation)

    def reset(self) -> None:
        """Forget every cached clip (start of an epoch, of an evaluation, or of new streams)."""
        self.video_ids = []
        for layer in self.layers.values():
            layer.entries = []

    def get_state(self, rows: Sequence[int] | None = None) -> MemorySnapshot:
        """A snapshot of the cache (all rows, or only ``rows``) to restore with :meth:`set_state`."""
        snapshot = MemorySnapshot(list(self.video_ids),
                                  {name: list(layer.entries) for name, layer in self.layers.items()})
        return snapshot if rows is None else snapshot.select_rows(rows)

    def set_state(self, snapshot: MemorySnapshot) -> None:
        """Replace the cache by a snapshot (of this model's layers)."""
        if set(snapshot.layers) != set(self.layers):
            raise ValueError("the snapshot's layers differ from this memory's: "
                             f"missing {sorted(set(self.layers) - set(snapshot.layers))}, "
                             f"unexpected {sorted(set(snapshot.layers) - set(self.layers))}")
        for name, entries in snapshot.layers.items():
            if len(entries) != len(snapshot.video_ids):
                raise ValueError(f"layer {name} holds {len(entries)} clips but the snapshot has "
                                 f"{len(snapshot.video_ids)} steps of video ids")
        self.video_ids = list(snapshot.video_ids)
        for name, entries in snapshot.layers.items():
            self.layers[name].entries = list(entries)

    def begin_step(self, video_ids: Sequence[Hashable], device: torch.device) -> MemoryStep:
        """Start a forward: choose the attended clips and apply the video-boundary rule."""
        current = tuple(video_ids)
        for name, layer in self.layers.items():
            if len(layer.entries) != len(self.video_ids):
                raise RuntimeError(f"memory layer {name} holds {len(layer.entries)} clips but {len(self.video_ids)} "
                                   "steps were recorded (an earlier forward failed?); call memory.reset()")
        if self.video_ids and len(self.video_ids[0]) < len(current):
            raise ValueError(f"the batch grew from {len(self.video_ids[0])} to {len(current)} rows while memory "
                             "is cached; call memory.reset() or carry memory per stream with get_state/set_state")
        saved = self.get_state()
        selection = sample_memory(len(self.video_ids), self.sampler)
        same_video = [[ids[i] == current[i] for i in range(len(current))] for ids in self.video_ids]
        kept = [t for t, same in enumerate(same_video) if all(same)]
        if self.isolation == "zero":
            for t, same in enumerate(same_video):
                other = [i for i, s in enumerate(same) if not s]
                if other:
                    self._zero_rows(t, other)
        if self.video_ids and len(self.video_ids[0]) == 1:
            # A cached batch of one: clips of another video are dropped and the selection re-indexed.
            new_index = {old: new for new, old in enumerate(kept)}
            self.video_ids = [self.video_ids[t] for t in kept]
            for layer in self.layers.values():
                layer.entries = [layer.entries[t] for t in kept]
            selection = [new_index[t] for t in selection if t in new_index]
            same_video = [same_video[t] for t in kept]
        row_ok: dict[int, Tensor] = {}
        if self.isolation == "mask":
            for t in selection:
                if not all(same_video[t]):
                    row_ok[t] = torch.tensor(same_video[t], dtype=torch.bool, device=device)
        return MemoryStep(self, current, selection, row_ok, saved)

    def _zero_rows(self, t: int, rows: list[int]) -> None:
        for layer in self.layers.values():
            entry = layer.entries[t]
            index = torch.tensor(rows, device=entry.k.device)
            layer.entries[t] = replace(entry, k=entry.k.index_fill(0, index, 0.0),
                                       v=entry.v.index_fill(0, index, 0.0))


class GroupMemories:
    """The memories of groups of streams that take turns on one model (``TRAIN.STREAM_GROUPS``,
    :class:`memvit.data.streams.StreamBatchSampler`): the model's memory holds the group that
    runs; the others wait as snapshots, so each group attends to its own earlier clips only."""

    def __init__(self, memory: MemoryState) -> None:
        self.memory = memory
        self.running: tuple[int, ...] | None = None
        self.waiting: dict[tuple[int, ...], MemorySnapshot] = {}

    def switch(self, group: Sequence[int]) -> None:
        """Make ``group`` (its stream ids) the running one: park the running group's memory and
        restore ``group``'s (empty the first time it runs)."""
        group = tuple(int(s) for s in group)
        if group == self.running:
            return
        if self.running is not None:
            self.waiting[self.running] = self.memory.get_state()
        snapshot = self.waiting.pop(group, None)
        if snapshot is None:
            self.memory.reset()
        else:
            self.memory.set_state(snapshot)
        self.running = group

    def reset(self) -> None:
        """Forget every group's memory (a new epoch)."""
        self.running, self.waiting = None, {}
        self.memory.reset()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint stores to resume exactly: the running group and every parked memory
        (:meth:`MemorySnapshot.state_dict`); the running memory itself is the model's."""
        return {"running": None if self.running is None else list(self.running),
                "waiting": [[list(group), snapshot.state_dict()] for group, snapshot in self.waiting.items()]}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """The inverse of :meth:`state_dict` (the running group's memory is set on the model separately)."""
        self.running = None if state["running"] is None else tuple(state["running"])
        self.waiting = {tuple(group): MemorySnapshot.from_state_dict(snapshot, device)
                        for group, snapshot in state["waiting"]}


@dataclass
class GatheredMemory:
    """What one layer attends to besides the current clip: selected clips, oldest first."""

    entries: list[MemoryEntry]
    row_ok: list[Tensor | None]  # per entry: (B,) bool rows of the same video (mask isolation)


class MemoryBackendStep(Protocol):
    """One forward's view of a memory back-end: what every memory layer calls.

    Implemented by :class:`MemoryStep` (the growing cache), :class:`~memvit.models.SlotStep`
    (the fixed slots of the ONNX step) and :class:`~memvit.models.SlotSpecRecorder` (records
    the stored form of each layer's clip)."""

    def update(self, name: str, k: Tensor, v: Tensor, thw: Sequence[int], has_cls: bool, attend: bool,
               compress: Callable[[MemoryEntry], MemoryEntry] | None = None,
               valid: Tensor | None = None) -> GatheredMemory:
        """Cache this layer's current clip and return the memory clips it attends."""
        ...

    def finish(self) -> None:
        """The forward ran every memory layer: commit the step."""
        ...

    def abort(self) -> None:
        """The forward raised: leave the memory as it was before the step."""
        ...


class MemoryBackend(Protocol):
    """What a model takes as ``memory=``: something that starts one step per forward.

    :class:`MemoryState` (training, evaluation, streaming), :class:`~memvit.models.SlotMemory`
    (the exported ONNX step) and :class:`~memvit.models.SlotSpecRecorder` (one probing forward)."""

    def begin_step(self, video_ids: Sequence[Hashable], device: torch.device) -> MemoryBackendStep:
        """Start a forward over a batch whose row ``i`` shows video ``video_ids[i]``."""
        ...


class MemoryStep:
    """One forward's view of the memory (from :meth:`MemoryState.begin_step`)."""

    def __init__(self, state: MemoryState, video_ids: tuple[Hashable, ...], selection: list[int],
                 row_ok: dict[int, Tensor], saved: MemorySnapshot) -> None:
        self.state = state
        self.video_ids = video_ids
        self.selection = selection
        self._row_ok = row_ok
        self._saved = saved

    def update(self, name: str, k: Tensor, v: Tensor, thw: Sequence[int], has_cls: bool, attend: bool,
               compress: Callable[[MemoryEntry], MemoryEntry] | None = None,
               valid: Tensor | None = None) -> GatheredMemory:
        """Cache this layer's current clip, compress the previous one, gather the attended clips.

        ``k``/``v`` are the un-projected inputs ``(B, tokens, channels)``; ``attend=False`` for
        layers that cache but attend no memory. The previous clip's compressed version keeps its
        graph for this step only (the stored copy is detached).
        """
        entries = self.state.layers[name].entries
        # Clips cached under another precision (e.g. bf16 autocast, then an fp32 step) are read
        # in this step's compute dtype: the compression conv and the projections need it.
        entries[:] = [e.to(k.dtype) for e in entries]
        entries.append(MemoryEntry(k.detach(), v.detach(), tuple(int(x) for x in thw), has_cls,
                                   valid=None if valid is None else valid.detach()))
        fresh: MemoryEntry | None = None
        if len(entries) > 1 and compress is not None and not entries[-2].compressed:
            fresh = compress(entries[-2])
            entries[-2] = replace(fresh, k=fresh.k.detach(), v=fresh.v.detach())
        gathered, row_ok = [], []
        if attend:
            batch = k.shape[0]
            previous = len(entries) - 2
            for t in self.selection:
                entry = fresh if (t == previous and fresh is not None) else entries[t]
                if entry.k.shape[0] != batch:  # a smaller last batch uses the first rows
                    entry = entry.rows(torch.arange(batch, device=entry.k.device))
                gathered.append(entry)
                row_ok.append(self._row_ok.get(t))
        if len(entries) == self.state.keep_max_len:
            del entries[0]
        return GatheredMemory(gathered, row_ok)

    def finish(self) -> None:
        """Record the step's video ids (call after every memory layer ran)."""
        state = self.state
        state.video_ids.append(self.video_ids)
        if len(state.video_ids) == state.keep_max_len:
            del state.video_ids[0]
        for name, layer in state.layers.items():
            if len(layer.entries) != len(state.video_ids):
                self.abort()
                raise RuntimeError(f"memory layer {name} did not run in this step; memory restored")

    def abort(self) -> None:
        """Restore the memory as it was before the step (the forward raised)."""
        self.state.set_state(self._saved)


@contextmanager
def memory_step(state: MemoryBackend | None, video_ids: Sequence[Hashable] | Tensor | None,
                batch: int, device: torch.device) -> Iterator[MemoryBackendStep | None]:
    """One forward of a memory model: ``with memory_step(...) as step: out = run(step)``.

    Yields ``None`` (memory neither read nor written) without a state or without ``video_ids``.
    The step is finished when the body returns and aborted (memory restored) when it raises.
    """
    if state is None or video_ids is None:
        yield None
        return
    ids = tuple(video_ids.tolist()) if isinstance(video_ids, Tensor) else tuple(video_ids)
    if len(ids) != batch:
        raise ValueError(f"video_ids has {len(ids)} ids for a batch of {batch} clips (one id per row)")
    step = state.begin_step(ids, device)
    try:
        yield step
    except BaseException:
        step.abort()
        raise
    step.finish()


def memory_key_values(memory: GatheredMemory, k: Tensor, v: Tensor, thw: Sequence[int], has_cls: bool, *,
                      to_heads_k: Callable[[Tensor], Tensor], to_heads_v: Callable[[Tensor], Tensor],
                      valid: Tensor | None = None,
                      mask_padding: bool = False) -> tuple[list[KVSegment], Tensor | None]:
    """The op's inputs for ``[attended memory clips..., current clip]``: segments and key mask.

    ``k``/``v`` are the current clip's cached form ``(B, tokens, C)`` on grid ``thw``;
    ``to_heads_k``/``to_heads_v`` map ``(B, N, C)`` to ``(B, heads, N, head_dim)`` (projection,
    head split, dropout) and run once on the concatenation of all clips. The mask (True =
    attend) excludes other-video clips under ``isolation="mask"`` and, with ``mask_padding``,
    the padded slots marked False in ``valid`` (current clip) and in the cached clips.
    """
    entries = memory.entries
    sizes = [e.k.shape[1] for e in entries] + [k.shape[1]]
    keys = to_heads_k(torch.cat([e.k for e in entries] + [k], dim=1) if entries else k)
    values = to_heads_v(torch.cat([e.v for e in entries] + [v], dim=1) if entries else v)
    grids = [e.thw for e in entries] + [tuple(int(x) for x in thw)]
    cls = [e.has_cls for e in entries] + [has_cls]
    segments = [KVSegment(ks, vs, g, c) for ks, vs, g, c in
                zip(keys.split(sizes, dim=2), values.split(sizes, dim=2), grids, cls)]
    valids = [e.valid for e in entries] + [valid] if mask_padding else [None] * len(sizes)
    mask = _key_mask(sizes, memory.row_ok + [None], valids, k.shape[0], k.device)
    return segments, mask


def _key_mask(sizes: Sequence[int], row_ok: Sequence[Tensor | None], valid: Sequence[Tensor | None],
              batch: int, device: torch.device) -> Tensor | None:
    """``(B, 1, 1, keys)`` bool mask (True = attend) from per-segment row and token validity."""
    if all(ok is None and val is None for ok, val in zip(row_ok, valid)):
        return None
    cols = []
    for n, ok, val in zip(sizes, row_ok, valid):
        m = torch.ones(batch, n, dtype=torch.bool, device=device)
        if ok is not None:
            m = m & ok[:, None]
        if val is not None:
            m = m & val
        cols.append(m)
    mask = torch.cat(cols, dim=1)
    # A row with no key left attends to every key (only happens for padded box slots).
    mask = mask | ~mask.any(dim=1, keepdim=True)
    return mask[:, None, None, :]
