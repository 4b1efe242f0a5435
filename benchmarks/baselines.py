# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Baselines the kernel op is measured against, all taking the op's own inputs.

* ``eager``: the data flow of the reference MeMViT attention: logits over the concatenated
  keys, then the decomposed relative positions added slice by slice (one broadcast add per
  axis per segment into a view of the logits), softmax, ``@ v`` plus the residual.
* ``sdpa_mask``: the per-query tables expanded into a materialised ``(B, H, Nq, Nk)`` bias,
  then ``F.scaled_dot_product_attention(attn_mask=bias)``.
* ``augqk_sdpa``: the augmented-QK identity on stock SDPA: ``[scale*q | tables]`` against
  ``[k | one-hot bins]`` with scale 1 (exact bias gradients come out of dq). It is the op's own
  ``implementation="sdpa"`` (:func:`memvit_ext.reference.sdpa_attention`), what CUDA tensors use
  by default until the fused kernels are validated; the baseline calls it, minus the op's checks.
* ``flex_keys``: FlexAttention (``torch.nn.attention.flex_attention``, compiled) with the
  decomposed relative-position bias as a ``score_mod`` gathering the same per-query tables, the
  memory clips concatenated as extra keys (``flex`` is its old name).
* ``flex_mask``: the same, plus the memory's key validity as a ``mask_mod`` (a ``BlockMask``
  built per call from a ``(batch, keys)`` bool mask): the form of a model that masks memory
  clips of another video (memvit's ``isolation="mask"``); compare it with the op given the same
  mask as ``attn_mask``.

Every baseline starts from q, k/v per segment and the rel-pos tables, so every row of a
benchmark measures "inputs -> output" (and "grad -> all input grads"). The FlexAttention ones
take ``compiled=False`` for flex's eager form (tests on CPU: no compile, forward only there).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from memvit_ext import KVSegment, RelPos, query_rel_bias
from memvit_ext.reference import residual_of, sdpa_attention
from memvit_ext.rel_pos import (
    key_bin_onehot,
    memory_temporal_index,
    spatial_distance_index,
    temporal_distance_index,
)


def eager(q: Tensor, q_thw: Sequence[int], segments: Sequence[KVSegment], rel_pos: RelPos | None,
          scale: float | None = None, q_has_cls: bool = True) -> Tensor:
    """Materialised logits with the bias added per segment and axis, as the reference does."""
    B, H, Nq, d = q.shape
    scale = d ** -0.5 if scale is None else scale
    qt, qh, qw = q_thw
    c = int(q_has_cls)
    k = torch.cat([s.k for s in segments], dim=2)
    v = torch.cat([s.v for s in segments], dim=2)
    attn = (q @ k.transpose(-2, -1)) * scale
    if rel_pos is not None:
        r_q = q[:, :, c:].reshape(B, H, qt, qh, qw, d)
        memory, n_mem = segments[:-1], len(segments) - 1
        slots = sum(s.thw[0] for s in memory)
        start, first_slot = 0, 0
        for i, seg in enumerate(segments):
            is_mem = i < n_mem
            kt, kh, kw = seg.thw
            table_h, table_w, table_t = ((rel_pos.mem_h, rel_pos.mem_w, rel_pos.mem_t) if is_mem
                                         else (rel_pos.h, rel_pos.w, rel_pos.t))
            lo, hi = start + int(seg.has_cls), start + seg.k.shape[2]
            view = attn[:, :, c:, lo:hi].view(B, H, qt, qh, qw, kt, kh, kw)
            if table_h is not None:
                Rh = table_h[spatial_distance_index(qh, kh, q.device)]
                rel_h = torch.einsum("bythwc,hkc->bythwk", r_q, Rh)
                view = view + rel_h[:, :, :, :, :, None, :, None]
            if table_w is not None:
                Rw = table_w[spatial_distance_index(qw, kw, q.device)]
                rel_w = torch.einsum("bythwc,wkc->bythwk", r_q, Rw)
                view = view + rel_w[:, :, :, :, :, None, None, :]
            if table_t is not None:
                index = (memory_temporal_index(qt, first_slot, kt, slots, rel_pos.mem_t_stride, q.device) if is_mem
                         else temporal_distance_index(qt, kt, q.device))
                rel_t = torch.einsum("bythwc,tkc->bythwk", r_q, table_t[index])
                view = view + rel_t[:, :, :, :, :, :, None, None]
            attn[:, :, c:, lo:hi] = view.reshape(B, H, qt * qh * qw, kt * kh * kw)
            start = hi
            if is_mem:
                first_slot += kt
    attn = attn.softmax(dim=-1)
    return attn @ v + residual_of(q, q_has_cls)


def _bins(q, q_thw, segments, rel_pos, q_has_cls):
    tables, offsets = query_rel_bias(q, q_thw, q_has_cls, segments, rel_pos)
    kv_thw = [x for s in segments for x in s.thw]
    kv_cls = [int(s.has_cls) for s in segments]
    return tables, offsets, kv_thw, kv_cls


def sdpa_mask(q: Tensor, q_thw: Sequence[int], segments: Sequence[KVSegment], rel_pos: RelPos | None,
              scale: float | None = None, q_has_cls: bool = True) -> Tensor:
    """SDPA with the bias materialised (last dim padded to a multiple of 8 for the GPU kernels)."""
    tables, offsets, kv_thw, kv_cls = _bins(q, q_thw, segments, rel_pos, q_has_cls)
    k = torch.cat([s.k for s in segments], dim=2)
    v = torch.cat([s.v for s in segments], dim=2)
    mask = None
    if tables is not None:
        onehot = key_bin_onehot(kv_thw, kv_cls, offsets, tables.shape[-1], q.device, tables.dtype)
        n = k.shape[2]
        padded = (n + 7) // 8 * 8
        onehot = F.pad(onehot, (0, 0, 0, padded - n))
        mask = (tables @ onehot.T).to(q.dtype)[..., :n]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out + residual_of(q, q_has_cls)


def augqk_sdpa(q: Tensor, q_thw: Sequence[int], segments: Sequence[KVSegment], rel_pos: RelPos | None,
               scale: float | None = None, q_has_cls: bool = True) -> Tensor:
    """The augmented-QK identity on stock SDPA (scale folded into q, tables appended): the op's "sdpa" path."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    tables, offsets, kv_thw, kv_cls = _bins(q, q_thw, segments, rel_pos, q_has_cls)
    return sdpa_attention(q, [s.k for s in segments], [s.v for s in segments], tables, kv_thw, kv_cls, offsets,
                          float(scale), True, q_has_cls)


_FLEX_CACHE: dict = {}


def flex_available() -> bool:
    """Whether this torch has FlexAttention (torch >= 2.5)."""
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def _flex_attention(compiled: bool):
    from torch.nn.attention.flex_attention import flex_attention

    if not compiled:
        return flex_attention
    if "flex" not in _FLEX_CACHE:  # one wrapper; dynamo caches one graph per shape (dynamic=False)
        _FLEX_CACHE["flex"] = torch.compile(flex_attention, dynamic=False)
    return _FLEX_CACHE["flex"]


def _flex_bias(q: Tensor, q_thw: Sequence[int], segments: Sequence[KVSegment], rel_pos: RelPos | None,
               q_has_cls: bool):
    """The score_mod of the decomposed bias (None without rel_pos): the per-query tables with a zero
    column appended, and per key the three columns it reads (the zero column for cls keys and absent axes)."""
    tables, offsets, kv_thw, kv_cls = _bins(q, q_thw, segments, rel_pos, q_has_cls)
    if tables is None:
        return None
    n_bins = tables.shape[-1]
    n_keys = sum(s.k.shape[2] for s in segments)
    bins = torch.full((n_keys, 3), n_bins, dtype=torch.int32, device=q.device)
    start = 0
    for s in range(len(segments)):
        t, h, w = kv_thw[3 * s: 3 * s + 3]
        n, c = t * h * w, kv_cls[s]
        token = torch.arange(n, device=q.device)
        for axis, coord in enumerate((token // (h * w), token // w % h, token % w)):
            if offsets[3 * s + axis] >= 0:
                bins[start + c: start + c + n, axis] = (offsets[3 * s + axis] + coord).to(torch.int32)
        start += c + n
    padded = F.pad(tables, (0, 1))  # the zero column

    def score_mod(score, b, h, q_idx, kv_idx):
        return (score + padded[b, h, q_idx, bins[kv_idx, 0]] + padded[b, h, q_idx, bins[kv_idx, 1]]
                + padded[b, h, q_idx, bins[kv_idx, 2]])
    return score_mod


def flex_keys(q: Tensor, q_thw: Sequence[int], segments: Sequence[KVSegment], rel_pos: RelPos | None,
              scale: float | None = None, q_has_cls: bool = True, compiled: bool = True) -> Tensor:
    """FlexAttention, memory as extra keys: the segments concatenated, the bias as a score_mod."""
    k = torch.cat([s.k for s in segments], dim=2)
    v = torch.cat([s.v for s in segments], dim=2)
    out = _flex_attention(compiled)(q, k, v, score_mod=_flex_bias(q, q_thw, segments, rel_pos, q_has_cls),
                                    scale=scale)
    return out + residual_of(q, q_has_cls)


flex = flex_keys  # the name the CPU benchmark (benchmarks/cases.py) and RESULTS.md use


def flex_mask(q: Tensor, q_thw: Sequence[int], segments: Sequence[KVSegment], rel_pos: RelPos | None,
              scale: float | None = None, q_has_cls: bool = True, key_mask: Tensor | None = None,
              compiled: bool = True) -> Tensor:
    """FlexAttention, memory as a mask: ``key_mask`` ``(batch, keys)`` bool (True = attend; None: all
    keys) as a mask_mod, its BlockMask built per call (the mask changes with every batch of videos),
    blocks with no valid key skipped; the bias as in :func:`flex_keys`.

    Equals the op with ``attn_mask=key_mask[:, None, None, :]`` (every row must keep a key)."""
    from torch.nn.attention.flex_attention import create_block_mask

    k = torch.cat([s.k for s in segments], dim=2)
    v = torch.cat([s.v for s in segments], dim=2)
    B, n_q, n_k = q.shape[0], q.shape[2], k.shape[2]
    if key_mask is None:
        key_mask = torch.ones(B, n_k, dtype=torch.bool, device=q.device)
    if key_mask.shape != (B, n_k) or key_mask.dtype != torch.bool:
        raise ValueError(f"key_mask must be a bool tensor of shape (batch={B}, keys={n_k}); "
                         f"got {key_mask.dtype} {tuple(key_mask.shape)}")

    def mask_mod(b, h, q_idx, kv_idx):
        return key_mask[b, kv_idx]

    block_mask = create_block_mask(mask_mod, B, None, n_q, n_k, device=str(q.device))
    out = _flex_attention(compiled)(q, k, v, score_mod=_flex_bias(q, q_thw, segments, rel_pos, q_has_cls),
                                    block_mask=block_mask, scale=scale)
    return out + residual_of(q, q_has_cls)
