# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Decomposed relative positions: distance indices and the per-query relative-position bias.

Names used throughout: the *tables* are the learned ``(rows, head_dim)`` parameters
(:class:`RelPos`); the *rel_bias* is the per-query tensor computed from them here; its columns
are *bins*, one per key coordinate of one axis of one segment.

MViTv2's relative-position bias of query ``i`` and key ``j`` is
``q_i . R_t[dt] + q_i . R_h[dh] + q_i . R_w[dw]`` (q projected, unscaled). Each term depends
on the query and on one coordinate of the key only, so for every query we compute the few
numbers ``q_i . R_a[d(i, k_a)]``, one per bin. The attention kernels add
``rel_bias[i, bin_t(j)] + rel_bias[i, bin_h(j)] + rel_bias[i, bin_w(j)]`` to each logit
instead of reading a materialised ``Nq x Nk`` bias.

This module is the one implementation of the distance rules and of the rel_bias; the kernels
receive the rel_bias and only decompose key indices into grid coordinates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .segments import KVSegment, RelPos

AXES = ("t", "h", "w")


def _stretched_distance(q_len: int, k_len: int, q_ratio: float, k_ratio: float, offset_len: int, device) -> Tensor:
    """float32 ``i*q_ratio - j*k_ratio + (offset_len - 1)*k_ratio`` for i < q_len, j < k_len."""
    dist = (
        torch.arange(q_len, device=device)[:, None] * q_ratio
        - torch.arange(k_len, device=device)[None, :] * k_ratio
    )
    dist += (offset_len - 1) * k_ratio
    return dist


def _ratios(q_len: int, k_len: int) -> tuple[float, float]:
    return max(k_len / q_len, 1.0), max(q_len / k_len, 1.0)


def spatial_distance_index(q_len: int, k_len: int, device=None) -> Tensor:
    """Table row of each (query, key) position pair along one spatial axis, shape (q_len, k_len).

    The coarser side's positions are stretched by the resolution ratio, then shifted to start
    at 0; the arithmetic is float32, truncated, as in MViTv2, so fractional ratios (non-square
    test inputs) give the reference's rows.
    """
    return _stretched_distance(q_len, k_len, *_ratios(q_len, k_len), k_len, device).long()


def reference_nonsquare_w_index(q_h: int, k_h: int, q_w: int, k_w: int, device=None) -> Tensor:
    """The reference's w rows for grids wider than tall: h ratios, h offset, clamped to h's range."""
    dist_h = _stretched_distance(q_h, k_h, *_ratios(q_h, k_h), k_h, device)
    dist_w = _stretched_distance(q_w, k_w, *_ratios(q_h, k_h), k_h, device)
    return dist_w.clamp(dist_h.min(), dist_h.max()).long()


def temporal_distance_index(q_len: int, k_len: int, device=None) -> Tensor:
    """``i - j + k_len - 1``: temporal rows of the current clip (no resolution scaling)."""
    queries, keys = torch.arange(q_len, device=device), torch.arange(k_len, device=device)
    return queries[:, None] - keys[None, :] + (k_len - 1)


def memory_temporal_index(q_len: int, first_slot: int, k_len: int, total_slots: int, stride: int,
                          device=None) -> Tensor:
    """Rows for memory time slots ``first_slot .. first_slot + k_len - 1`` of ``total_slots``.

    Slots are counted along the concatenated memory time axis (oldest clip first); the index
    ``i - stride*j + stride*(total_slots - 1)`` is anchored to the newest memory slot.
    """
    slots = torch.arange(first_slot, first_slot + k_len, device=device)
    return torch.arange(q_len, device=device)[:, None] - stride * slots[None, :] + stride * (total_slots - 1)


def spatial_table_rows(q_len: int, k_len: int) -> int:
    """Rows a spatial (or current-clip temporal) table needs for these grid sides: 2*max - 1."""
    return 2 * max(q_len, k_len) - 1


def memory_t_rows_needed(q_t: int, total_slots: int, stride: int) -> int:
    return q_t + stride * (total_slots - 1)


def resize_rel_pos(table: Tensor, rows: int) -> Tensor:
    """Linearly interpolate a ``(L, dim)`` table to ``rows`` rows (MViTv2's rule for new sizes)."""
    if table.shape[0] == rows:
        return table
    resized = F.interpolate(table.t().unsqueeze(0), size=rows, mode="linear")
    return resized.squeeze(0).t()


def uses_reference_nonsquare(rel_pos: RelPos, q_thw: Sequence[int], k_thw: Sequence[int]) -> bool:
    _, q_h, q_w = q_thw
    _, k_h, k_w = k_thw
    return rel_pos.reference_nonsquare and spatial_table_rows(q_w, k_w) > spatial_table_rows(q_h, k_h)


def expected_table_rows(
    rel_pos: RelPos, q_thw: Sequence[int], segments: Sequence[KVSegment]
) -> dict[str, tuple[int, bool]]:
    """For each present table: (rows, exact) it needs for these grids; exact=False means 'at least'.

    Raises ValueError when segments sharing one table would need different sizes.
    """
    need: dict[str, tuple[int, bool]] = {}
    q_t, q_h, q_w = q_thw
    memory, current = segments[:-1], segments[-1]
    total_slots = sum(seg.thw[0] for seg in memory)

    def put(name: str, rows: int, exact: bool) -> None:
        if getattr(rel_pos, name) is None:
            return
        if name in need and need[name] != (rows, exact):
            raise ValueError(
                f"rel_pos.{name} serves segments that need different table sizes "
                f"({need[name][0]} and {rows} rows); give memory segments one spatial grid"
            )
        need[name] = (rows, exact)

    for prefix, segs in (("", [current]), ("mem_", memory)):
        for seg in segs:
            k_t, k_h, k_w = seg.thw
            h_rows = spatial_table_rows(q_h, k_h)
            put(prefix + "h", h_rows, True)
            w_rows = h_rows if uses_reference_nonsquare(rel_pos, q_thw, seg.thw) else spatial_table_rows(q_w, k_w)
            put(prefix + "w", w_rows, True)
            if prefix:
                put("mem_t", memory_t_rows_needed(q_t, total_slots, rel_pos.mem_t_stride), False)
            else:
                put("t", spatial_table_rows(q_t, k_t), True)
    return need


def _axis_rows(rel_pos: RelPos, q_thw, seg: KVSegment, is_memory: bool, axis: int,
               first_slot: int, total_slots: int, device) -> tuple[Tensor | None, Tensor | None]:
    """(table, row index of shape (q_len, k_len)) for one axis of one segment."""
    q_t, q_h, q_w = q_thw
    k_t, k_h, k_w = seg.thw
    prefix = "mem_" if is_memory else ""
    table = getattr(rel_pos, prefix + AXES[axis])
    if table is None:
        return None, None
    if axis == 0:
        if is_memory:
            index = memory_temporal_index(q_t, first_slot, k_t, total_slots, rel_pos.mem_t_stride, device)
        else:
            index = temporal_distance_index(q_t, k_t, device)
    elif axis == 1:
        index = spatial_distance_index(q_h, k_h, device)
    elif uses_reference_nonsquare(rel_pos, q_thw, seg.thw):
        index = reference_nonsquare_w_index(q_h, k_h, q_w, k_w, device)
    else:
        index = spatial_distance_index(q_w, k_w, device)
    return table, index


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` whose gradient is a one-hot matrix product (deterministic).

    Indexing's own backward accumulates with atomics (nondeterministic on CPU and CUDA); the
    one-hot matrices are tiny (q_len * k_len x table rows).
    """
    return _GatherRows.apply(table, index)


class _GatherRows(torch.autograd.Function):
    """Rows of a table by index; backward ``onehot^T @ grad`` instead of an atomic scatter.

    A Function rather than the one-hot product in forward as well: indexing is exact and
    cheaper, and a traced model shows one node here (flop counters see no matrix product; the
    op's counter accounts for the bias products, see ``memvit.flops``).
    """

    @staticmethod
    def forward(ctx, table: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        ctx.rows = table.shape[0]
        return table[index]

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        onehot = F.one_hot(index.reshape(-1), ctx.rows).to(grad.dtype)
        return onehot.t() @ grad.reshape(onehot.shape[0], -1), None


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: float64 stays float64, everything else computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def query_rel_bias(
    q: Tensor,
    q_thw: Sequence[int],
    q_has_cls: bool,
    segments: Sequence[KVSegment],
    rel_pos: RelPos | None,
) -> tuple[Tensor | None, list[int]]:
    """The per-query relative-position bias ``(B, heads, Nq, bins)`` and the bin layout.

    Returns ``(rel_bias, bin_offsets)`` where ``bin_offsets[3*s + a]`` is the first column of
    segment ``s``'s axis ``a`` (t, h, w), or -1 when that axis has no table. Segments whose
    rows on an axis are the same (memory clips of one grid, for h and w) share their columns.
    The cls query row is all zeros (the cls query gets no relative-position bias).
    Differentiable in ``q`` and the tables; computed in float32 (float64 for float64 inputs).
    """
    offsets = [-1] * (3 * len(segments))
    if rel_pos is None or rel_pos.is_empty():
        return None, offsets
    # Plain ints: under JIT tracing grid sizes may arrive as 0-d tensors, which would alias.
    q_thw = tuple(int(x) for x in q_thw)
    segments = [seg._replace(thw=tuple(int(x) for x in seg.thw)) for seg in segments]
    memory_slots = sum(seg.thw[0] for seg in segments[:-1])
    dtype = compute_dtype(q.dtype)
    rows: list[Tensor | None] = [None, None, None]  # per axis: (q_len_axis, d, bins of the axis)
    n_bins = 0
    for axis in range(3):
        first_slot = 0
        parts, seen = [], {}
        for s, seg in enumerate(segments):
            is_memory = s < len(segments) - 1
            table, index = _axis_rows(rel_pos, q_thw, seg, is_memory, axis, first_slot, memory_slots, q.device)
            if is_memory:
                first_slot += seg.thw[0]
            if table is None:
                continue
            # Rows are a function of the table, the axis sizes and (for memory time) the slots.
            key = (id(table), seg.thw[axis], first_slot if axis == 0 and is_memory else -1)
            if key not in seen:
                seen[key] = n_bins
                n_bins += seg.thw[axis]
                parts.append(gather_rows(table, index).to(dtype))
            offsets[3 * s + axis] = seen[key]
        if parts:
            rows[axis] = torch.cat(parts, dim=1).transpose(1, 2)
    if n_bins == 0:
        return None, offsets
    return _QueryRelBias.apply(q, q_thw, q_has_cls, *rows), offsets


class _QueryRelBias(torch.autograd.Function):
    """``rel_bias[q, bins of axis a] = q . rows_a[coordinate of q on a]``: one batched product per axis.

    A Function with its own backward (the transposed products) so that autograd keeps only q
    and the small row tensors, not q-sized intermediates: the products are 2-3% of the
    attention's FLOPs but, through generic autograd, a quarter of its backward time.
    """

    @staticmethod
    def forward(ctx, q: Tensor, q_thw, q_has_cls: bool, *rows: Tensor | None) -> Tensor:
        ctx.q_thw, ctx.q_has_cls = q_thw, q_has_cls
        ctx.save_for_backward(q, *rows)
        grid = _query_grid(q, q_thw, q_has_cls)
        with _without_autocast(q):  # float32 as documented, under autocast too
            columns = [_axis_product(grid, R, axis) for axis, R in enumerate(rows) if R is not None]
        B, H, _, _ = q.shape
        out = torch.cat([c.reshape(B, H, -1, c.shape[-1]) for c in columns], dim=-1)
        return F.pad(out, (0, 0, 1, 0)) if q_has_cls else out

    @staticmethod
    def backward(ctx, d_rel_bias: Tensor):
        q, *rows = ctx.saved_tensors
        B, H, _, d = q.shape
        q_t, q_h, q_w = ctx.q_thw
        grid = _query_grid(q, ctx.q_thw, ctx.q_has_cls)
        d_grid = torch.zeros_like(grid)
        d_rel_bias = d_rel_bias[:, :, int(ctx.q_has_cls):].to(grid.dtype).reshape(B, H, q_t, q_h, q_w, -1)
        d_rows, column = [], 0
        for axis, R in enumerate(rows):
            if R is None:
                d_rows.append(None)
                continue
            dT = d_rel_bias[..., column:column + R.shape[2]]
            column += R.shape[2]
            with _without_autocast(q):
                d_grid += _axis_product(dT, R.transpose(1, 2), axis).reshape(d_grid.shape)
                d_rows.append(_axis_rows_grad(grid, dT, axis) if ctx.needs_input_grad[3 + axis] else None)
        d_q = F.pad(d_grid.reshape(B, H, -1, d), (0, 0, 1, 0)) if ctx.q_has_cls else d_grid.reshape(B, H, -1, d)
        return (d_q.to(q.dtype), None, None, *d_rows)


def _without_autocast(t: Tensor):
    """Autocast off for ``t``'s device (a no-op on devices without autocast, e.g. meta)."""
    if torch.amp.is_autocast_available(t.device.type):
        return torch.autocast(t.device.type, enabled=False)
    return contextlib.nullcontext()


def _axis_rows_grad(grid: Tensor, dT: Tensor, axis: int) -> Tensor:
    """Gradient of rows_a: for each coordinate, (queries at it)^T @ dT, summed; (q_len, c, k).

    Transposed views, no permuted copy of q (BLAS reads them as they lie).
    """
    B, H, q_t, q_h, q_w, c = grid.shape
    k = dT.shape[-1]
    if axis == 0:
        g = torch.matmul(grid.reshape(B, H, q_t, -1, c).transpose(-1, -2), dT.reshape(B, H, q_t, -1, k))
        return g.sum(dim=(0, 1))
    if axis == 1:
        return torch.matmul(grid.transpose(-1, -2), dT).sum(dim=(0, 1, 2))
    return torch.matmul(grid.reshape(-1, q_w, c).permute(1, 2, 0), dT.reshape(-1, q_w, k).transpose(0, 1))


def _query_grid(q: Tensor, q_thw, q_has_cls: bool) -> Tensor:
    B, H, _, d = q.shape
    return q[:, :, int(q_has_cls):, :].to(compute_dtype(q.dtype)).contiguous().reshape(B, H, *q_thw, d)


def _axis_product(grid: Tensor, R: Tensor, axis: int) -> Tensor:
    """``out[..., t, h, w, :] = grid[..., t, h, w, :] @ R[coordinate on axis]``, grid (B,H,T,H,W,c)."""
    B, H, q_t, q_h, q_w, c = grid.shape
    if axis == 0:  # the query's t is a batch dimension of the grid as it lies
        return torch.matmul(grid.reshape(B, H, q_t, -1, c), R)
    if axis == 1:  # so is its h, with (w, c) matrices
        return torch.matmul(grid, R)
    # w is the innermost token axis: batch over it through a strided view
    return torch.matmul(grid.reshape(-1, q_w, c).transpose(0, 1), R).transpose(0, 1)


def key_bin_onehot(kv_thw: Sequence[int], kv_cls: Sequence[int], bin_offsets: Sequence[int],
                   n_bins: int, device, dtype) -> Tensor:
    """``(Nk, bins)`` 0/1 matrix: key ``j`` has a 1 in each bin its coordinates select.

    ``rel_bias @ onehot.T`` is the full decomposed bias; cls keys have no bins.
    """
    blocks = []
    for s in range(len(kv_cls)):
        k_t, k_h, k_w = kv_thw[3 * s: 3 * s + 3]
        n = k_t * k_h * k_w
        token = torch.arange(n, device=device)
        coords = (token // (k_h * k_w), token // k_w % k_h, token % k_w)
        block = torch.zeros(n, n_bins, device=device, dtype=dtype)
        for axis in range(3):
            offset = bin_offsets[3 * s + axis]
            if offset >= 0:
                block[token, offset + coords[axis]] = 1
        if kv_cls[s]:
            block = F.pad(block, (0, 0, 1, 0))
        blocks.append(block)
    return torch.cat(blocks, dim=0)
