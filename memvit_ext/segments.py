# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The op's inputs, as named structures: key/value segments and relative-position tables."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class KVSegment(NamedTuple):
    """Keys and values of one clip, after pooling and projection.

    ``k`` and ``v`` are ``(B, heads, N, head_dim)`` with ``N = t*h*w + has_cls``; tokens are in
    (t, h, w) raster order (w fastest) behind an optional leading cls token.
    """

    k: Tensor
    v: Tensor
    thw: tuple[int, int, int]
    has_cls: bool = True


class RelPos(NamedTuple):
    """Decomposed relative-position tables (MViTv2 / MeMViT), each ``(rows, head_dim)``.

    ``h``, ``w``, ``t`` serve the current clip (the last segment); ``mem_h``, ``mem_w``,
    ``mem_t`` serve every memory segment. Any table may be ``None`` (that axis adds nothing).

    Sizes: spatial tables have exactly ``2*max(q, k) - 1`` rows for the q/k grid sides they
    serve (use :func:`memvit_ext.resize_rel_pos` to interpolate a table to that length); ``t``
    has ``2*max(q_t, k_t) - 1`` rows; ``mem_t`` has at least
    ``q_t + mem_t_stride * (total memory time slots - 1)`` rows.

    ``mem_t_stride`` is the temporal stride of the memory grid (MeMViT's compression stride, 4):
    memory time slots are counted along the concatenated memory time axis (oldest first) and
    the index of query time ``i`` and memory slot ``j`` is ``i - s*j + s*(slots - 1)``.

    ``reference_nonsquare`` reproduces the MViTv2/MeMViT reference rule for grids wider than
    tall (``2*max(q_w, k_w) > 2*max(q_h, k_h)``): there the w distances use the h resolution
    ratios and offset, are clamped into the range of the h distances, and the w tables must
    have the h length. With ``False`` every axis uses its own ratios (the geometric rule).
    """

    h: Tensor | None = None
    w: Tensor | None = None
    t: Tensor | None = None
    mem_h: Tensor | None = None
    mem_w: Tensor | None = None
    mem_t: Tensor | None = None
    mem_t_stride: int = 1
    reference_nonsquare: bool = False

    def tables(self) -> tuple[Tensor | None, ...]:
        """The six tables in the op's order: h, w, t, mem_h, mem_w, mem_t."""
        return (self.h, self.w, self.t, self.mem_h, self.mem_w, self.mem_t)

    def is_empty(self) -> bool:
        return all(table is None for table in self.tables())
