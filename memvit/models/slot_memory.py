# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The memory protocol with a fixed structure: the slot cache of the exported ONNX step.

:class:`~memvit.models.memory.MemoryState` keeps a Python list that grows clip by clip; a traced
graph needs every step to look alike, so here every cache slot is always present and which slots
hold a clip is data (:class:`SlotMemory`). :class:`SlotSpecRecorder` runs one forward to learn each
layer's stored clip (:class:`SlotSpec`). Both are memory back-ends
(:class:`~memvit.models.memory.MemoryBackend`): a model takes them as ``memory=`` like a
``MemoryState``; :mod:`memvit.streaming.onnx_step` builds the graph from them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .memory import GatheredMemory, MemoryEntry, keep_max_len, sample_memory


@dataclass(frozen=True)
class SlotSpec:
    """The stored form of one layer's cached clip: its grid and ``(tokens, channels)`` of k and v."""

    thw: tuple[int, int, int]
    has_cls: bool
    compressed: bool
    tokens: int
    channels: int
    has_token_mask: bool  # the layer caches key validity (the box block's slots)


class SlotMemory:
    """The memory protocol with a fixed structure, for a graph that a runtime can loop (ONNX export).

    :class:`MemoryState` keeps a Python list that grows from empty to ``keep_max_len - 1`` clips and
    compresses a clip one step late; a traced graph needs every step to look alike. Here every
    cache slot is always present and which slots hold a clip is data:

    * ``slots[layer]``: ``(B, M, 2, N, C)``, ``M = keep_max_len - 1`` clips oldest first, ``[k, v]``
      in stored form. A clip is compressed in the step that produces it (the same function of
      the same detached tensors that :class:`MemoryState` applies one step later).
    * ``valid``: ``(B, M)`` bool, the slots that hold a clip of the row's stream.
    * ``token_mask[layer]``: ``(B, M, N)`` bool, for layers that cache key validity (box slots).

    A step attends the slots the sampler picks from a full cache (``gap2``: t-4 and t-2),
    masking invalid ones out of attention. That equals :class:`MemoryState` with a batch of one,
    which drops the clips it does not have: memory temporal positions are anchored to the
    newest memory slot, and the invalid slots are always the oldest. Use it as a model's
    ``memory=``; after the forward, :attr:`next_slots`, :attr:`next_valid` and
    :attr:`next_token_mask` hold the memory for the next step.
    """

    def __init__(self, specs: dict[str, SlotSpec], sampler: str, attn_max_len: int, slots: dict[str, Tensor],
                 valid: Tensor, token_mask: dict[str, Tensor] | None = None) -> None:
        self.specs = specs
        self.num_slots = keep_max_len(attn_max_len, sampler) - 1
        self.attended = sample_memory(self.num_slots, sampler)
        self.slots, self.valid, self.token_mask = slots, valid, dict(token_mask or {})
        self.next_slots: dict[str, Tensor] = {}
        self.next_token_mask: dict[str, Tensor] = {}
        self.next_valid: Tensor | None = None

    @staticmethod
    def empty(specs: dict[str, SlotSpec], sampler: str, attn_max_len: int, batch: int,
              dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> SlotMemory:
        """No clip cached: every slot zero and invalid (the start of a stream)."""
        m = keep_max_len(attn_max_len, sampler) - 1
        slots = {name: torch.zeros(batch, m, 2, s.tokens, s.channels, dtype=dtype, device=device)
                 for name, s in specs.items()}
        masks = {name: torch.zeros(batch, m, s.tokens, dtype=torch.bool, device=device)
                 for name, s in specs.items() if s.has_token_mask}
        valid = torch.zeros(batch, m, dtype=torch.bool, device=device)
        return SlotMemory(specs, sampler, attn_max_len, slots, valid, masks)

    def begin_step(self, video_ids: Sequence[Hashable], device: torch.device) -> SlotStep:
        if self.num_slots < 1:
            raise ValueError("the slot layout needs a memory of at least one clip (attn_max_len >= 2)")
        return SlotStep(self)


class SlotStep:
    """One forward over a :class:`SlotMemory` (the counterpart of :class:`MemoryStep`)."""

    def __init__(self, memory: SlotMemory) -> None:
        self.memory = memory

    def update(self, name: str, k: Tensor, v: Tensor, thw: Sequence[int], has_cls: bool, attend: bool,
               compress: Callable[[MemoryEntry], MemoryEntry] | None = None,
               valid: Tensor | None = None) -> GatheredMemory:
        """Store this clip (compressed now) in the newest slot, gather the attended slots."""
        mem = self.memory
        spec = mem.specs[name]
        current = MemoryEntry(k, v, tuple(int(x) for x in thw), has_cls, valid=valid)
        stored = compress(current) if compress is not None else current
        slots = mem.slots[name]
        mem.next_slots[name] = torch.cat([slots[:, 1:], torch.stack([stored.k, stored.v], dim=1)[:, None]], dim=1)
        mask = mem.token_mask.get(name)
        if spec.has_token_mask:
            if mask is None or valid is None:
                raise ValueError(f"layer {name} caches key validity: give its token_mask and the step's valid")
            mem.next_token_mask[name] = torch.cat([mask[:, 1:], valid[:, None]], dim=1)
        gathered, row_ok = [], []
        if attend:
            for s in mem.attended:
                gathered.append(MemoryEntry(slots[:, s, 0], slots[:, s, 1], spec.thw, spec.has_cls, spec.compressed,
                                            valid=None if mask is None else mask[:, s]))
                row_ok.append(mem.valid[:, s])
        return GatheredMemory(gathered, row_ok)

    def finish(self) -> None:
        valid = self.memory.valid
        self.memory.next_valid = torch.cat([valid[:, 1:], torch.ones_like(valid[:, :1])], dim=1)

    def abort(self) -> None:
        """Nothing to restore: the inputs are never modified."""


class SlotSpecRecorder:
    """Used as a model's ``memory=`` for one forward: records every memory layer's :class:`SlotSpec`
    (the stored form of the clip, compression included) and attends no memory."""

    def __init__(self) -> None:
        self.specs: dict[str, SlotSpec] = {}

    def begin_step(self, video_ids: Sequence[Hashable], device: torch.device) -> SlotSpecRecorder:
        return self

    def update(self, name: str, k: Tensor, v: Tensor, thw: Sequence[int], has_cls: bool, attend: bool,
               compress: Callable[[MemoryEntry], MemoryEntry] | None = None,
               valid: Tensor | None = None) -> GatheredMemory:
        entry = MemoryEntry(k, v, tuple(int(x) for x in thw), has_cls)
        stored = compress(entry) if compress is not None else entry
        self.specs[name] = SlotSpec(stored.thw, has_cls, compress is not None, int(stored.k.shape[1]),
                                    int(stored.k.shape[2]), valid is not None)
        return GatheredMemory([], [])

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


__all__ = ["SlotMemory", "SlotSpec", "SlotSpecRecorder", "SlotStep"]
