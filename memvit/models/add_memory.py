# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``add_memory``: make a PyTorchVideo MViT attend to a memory of earlier clips.

PyTorchVideo's MViT (``create_multiscale_vision_transformers``, ``hub.mvit_base_16x4``) is
MViT v1: absolute position embeddings, no relative positions, no residual pooling, q/k/v
projected before pooling (``pool_first=False``). :class:`FusedMultiScaleAttention` is its
attention on ``memvit_ext``'s op, keeping every original parameter under the same name; it is
what :func:`memvit.fuse_attention` swaps in (no memory) and, as
:class:`MemoryMultiScaleAttention` with a learnable compression, what :func:`add_memory` swaps
in. :func:`add_memory` returns a :class:`MemoryAugmentedMViT` whose forward takes
``video_ids`` like :class:`memvit.models.MeMViT`. The memory itself is
:mod:`memvit.models.memory`'s, as in MeMViT.

What is cached (a difference from MeMViT, whose pool-first layers cache un-projected inputs and
re-project them every step): the pooled, normalised, **projected** keys and values, detached.
With empty memory the wrapped model computes exactly what the original computes.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from pytorchvideo.layers.attention import MultiScaleAttention, _attention_pool
from torch import Tensor, nn

from memvit_ext import KVSegment, memory_pooling_attention

from .attention import MemoryAttention, merge_heads, split_heads
from .memory import MemoryBackend, MemoryBackendStep, MemoryState, memory_key_values, memory_step


class _StepSlot:
    """Hands the current :class:`MemoryStep` to attention modules that a PyTorchVideo block
    calls as ``attn(x, thw)``; set and cleared around each forward by the wrapper."""

    step: MemoryBackendStep | None = None


def pytorchvideo_refusal(attn: nn.Module) -> str | None:
    """Why :class:`FusedMultiScaleAttention` cannot stand in for ``attn`` (None when it can)."""
    if type(attn) is not MultiScaleAttention:
        return (f"{type(attn).__qualname__} subclasses PyTorchVideo's MultiScaleAttention; its forward may "
                "differ from the one the fused module reproduces")
    return None


class FusedMultiScaleAttention(MemoryAttention):
    """A PyTorchVideo ``MultiScaleAttention`` whose attention runs on ``memvit_ext``'s op.

    The forward is PyTorchVideo's (project, pool, attend, ``proj``; pool-first or not, any
    pooling module) with ``softmax(scale q k^T) v`` computed by the op (no relative positions,
    no residual). Every child keeps its name, so state dicts load either way. With a ``slot``
    (:class:`MemoryMultiScaleAttention`) the cached clips' keys/values are placed before the
    current clip's; without one there is no memory.
    """

    def __init__(self, attn: MultiScaleAttention, slot: _StepSlot | None = None, memory_name: str = "") -> None:
        super().__init__(memory_name, attend_memory=slot is not None)
        for name, child in attn.named_children():
            self.add_module(name, child)
        self.num_heads = attn.num_heads
        self.scale = attn.scale
        self.has_cls_embed = attn.has_cls_embed
        self.pool_first = attn.pool_first
        self.dropout_rate = attn.dropout_rate
        self._slot = slot

    def _pool(self, name: str, x: Tensor, thw: Sequence[int]) -> tuple[Tensor, list[int]]:
        return _attention_pool(x, getattr(self, f"pool_{name}", None), list(thw), has_cls_embed=self.has_cls_embed,
                               norm=getattr(self, f"norm_{name}", None))

    def forward(self, x: Tensor, thw_shape: list[int]) -> tuple[Tensor, list[int]]:
        H = self.num_heads
        if self.pool_first:
            heads = split_heads(x, H)
            q, q_thw = self._pool("q", heads, thw_shape)
            k, kv_thw = self._pool("k", heads, thw_shape)
            v, _ = self._pool("v", heads, thw_shape)
            q, k, v = (split_heads(proj(merge_heads(t)), H) for proj, t in ((self.q, q), (self.k, k), (self.v, v)))
        else:
            q, q_thw = self._pool("q", split_heads(self.q(x), H), thw_shape)
            k, kv_thw = self._pool("k", split_heads(self.k(x), H), thw_shape)
            v, _ = self._pool("v", split_heads(self.v(x), H), thw_shape)
        step = self._slot.step if self._slot is not None else None
        if step is None:  # no memory: the current clip is the only segment
            segments, mask = [KVSegment(k, v, tuple(int(n) for n in kv_thw), self.has_cls_embed)], None
        else:
            k, v = merge_heads(k), merge_heads(v)
            gathered = self.read_write_memory(step, k, v, kv_thw, self.has_cls_embed)
            segments, mask = memory_key_values(gathered, k, v, kv_thw, self.has_cls_embed,
                                               to_heads_k=lambda t: split_heads(t, H),
                                               to_heads_v=lambda t: split_heads(t, H))
        out = memory_pooling_attention(q, tuple(q_thw), segments, q_has_cls=self.has_cls_embed, rel_pos=None,
                                       scale=self.scale, residual=False, attn_mask=mask,
                                       implementation=self.implementation)
        out = self.proj(merge_heads(out))
        if self.dropout_rate > 0.0:
            out = self.proj_drop(out)
        return out, q_thw


class MemoryMultiScaleAttention(FusedMultiScaleAttention):
    """A PyTorchVideo ``MultiScaleAttention`` with memory (same parameters + ``compress_*``).

    :class:`FusedMultiScaleAttention` reading and writing the memory step that the wrapper
    hands over through ``slot``, with MeMViT's learnable compression of cached clips.
    """

    def __init__(self, attn: MultiScaleAttention, slot: _StepSlot, memory_name: str,
                 compress_kernel: Sequence[int] | None = (7, 3, 3), compress_stride: Sequence[int] = (4, 2, 2),
                 norm_eps: float = 1e-6) -> None:
        super().__init__(attn, slot, memory_name)
        self.build_compression(attn.q.in_features, compress_kernel, compress_stride, norm_eps)


class MemoryAugmentedMViT(nn.Module):
    """A PyTorchVideo MViT (``self.mvit``) whose attention layers attend to memory.

    ``forward(x, video_ids=None, memory=None)``: as :meth:`memvit.models.MeMViT.forward`
    (without boxes); ``self.memory`` is the :class:`MemoryState`.
    """

    def __init__(self, mvit: nn.Module, memory: MemoryState, slot: _StepSlot) -> None:
        super().__init__()
        self.mvit = mvit
        self.memory = memory
        self._slot = slot

    def forward(self, x: Tensor, video_ids: Sequence[Hashable] | Tensor | None = None,
                memory: MemoryBackend | None = None) -> Tensor:
        state = memory if memory is not None else self.memory
        with memory_step(state, video_ids, x.shape[0], x.device) as step:
            self._slot.step = step
            try:
                return self.mvit(x)
            finally:
                self._slot.step = None


def add_memory(model: nn.Module, *, layers: Sequence[int] | None = None, attn_max_len: int = 3,
               sampler: str = "all", compress_kernel: Sequence[int] | None = (7, 3, 3),
               compress_stride: Sequence[int] = (4, 2, 2), isolation: str = "zero") -> MemoryAugmentedMViT:
    """Turn a PyTorchVideo MViT into a memory-augmented one, keeping its weights.

    Args:
        model: a model built by ``create_multiscale_vision_transformers`` (e.g.
            ``pytorchvideo.models.hub.mvit_base_16x4()``); modified in place and wrapped.
        layers: indices (in forward order) of the ``MultiScaleAttention`` modules that get
            memory; default the even-indexed ones, as MeMViT.
        attn_max_len, sampler, isolation: as :class:`MemoryState` (default: the previous
            ``attn_max_len - 1`` clips, so the compression is trained).
        compress_kernel, compress_stride: the new, randomly initialised compression of
            cached clips (``None``: cache them uncompressed).

    The wrapped model returns what the original returns when the memory is empty (first clip
    of a video, or ``video_ids=None``); its ``state_dict`` keys are the original's under
    ``mvit.`` plus the compression parameters.
    """
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, MultiScaleAttention)]
    if not found:
        raise ValueError("no pytorchvideo MultiScaleAttention found: add_memory expects a PyTorchVideo MViT")
    chosen = range(0, len(found), 2) if layers is None else layers
    slot = _StepSlot()
    names = []
    for index in chosen:
        name, attn = found[index]
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        wrapped = MemoryMultiScaleAttention(attn, slot, name, compress_kernel, compress_stride)
        wrapped.to(device=attn.q.weight.device, dtype=attn.q.weight.dtype)  # the new compression
        setattr(parent, child, wrapped)
        names.append(name)
    return MemoryAugmentedMViT(model, MemoryState(names, attn_max_len, sampler, isolation), slot)
