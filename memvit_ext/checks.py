# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Input validation of the public op: every error names the argument and the expected shape."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .rel_pos import expected_table_rows
from .segments import KVSegment, RelPos

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _check_grid(name: str, thw: Sequence[int]) -> tuple[int, int, int]:
    try:
        grid = tuple(int(x) for x in thw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three positive ints (t, h, w); got {thw!r}") from None
    if len(grid) != 3 or any(x <= 0 for x in grid) or any(int(x) != x for x in thw):
        raise ValueError(f"{name} must be three positive ints (t, h, w); got {thw!r}")
    return grid  # type: ignore[return-value]


def check_inputs(
    q: Tensor,
    q_thw: Sequence[int],
    segments: Sequence[KVSegment],
    q_has_cls: bool,
    rel_pos: RelPos | None,
    scale: float | None,
    attn_mask: Tensor | None,
) -> None:
    if not isinstance(q, Tensor) or q.dim() != 4:
        got = _shape(q) if isinstance(q, Tensor) else type(q).__name__
        raise ValueError(f"q must be a 4-D tensor (batch, heads, tokens, head_dim); got {got}")
    if q.dtype not in FLOAT_DTYPES:
        raise ValueError(f"q must be float16, bfloat16, float32 or float64; got {q.dtype}")
    B, H, Nq, d = q.shape
    q_grid = _check_grid("q_thw", q_thw)
    expected_nq = math.prod(q_grid) + int(bool(q_has_cls))
    if Nq != expected_nq:
        raise ValueError(
            f"q has {Nq} tokens but q_thw={q_grid} with q_has_cls={bool(q_has_cls)} needs {expected_nq}: "
            f"expected q of shape ({B}, {H}, {expected_nq}, {d})"
        )
    if isinstance(segments, KVSegment) or not isinstance(segments, Sequence) or len(segments) == 0:
        raise ValueError(
            "segments must be a non-empty sequence of KVSegment (memory clips oldest first, current clip last)")
    for i, seg in enumerate(segments):
        if not isinstance(seg, KVSegment):
            raise ValueError(f"segments[{i}] must be a KVSegment(k, v, thw, has_cls); got {type(seg).__name__}")
        grid = _check_grid(f"segments[{i}].thw", seg.thw)
        n = math.prod(grid) + int(bool(seg.has_cls))
        for name in ("k", "v"):
            t = getattr(seg, name)
            where = f"segments[{i}].{name}"
            if not isinstance(t, Tensor) or t.dim() != 4:
                got = _shape(t) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"{where} must be a 4-D tensor of shape ({B}, {H}, {n}, {d}); got {got}")
            if tuple(t.shape) != (B, H, n, d):
                raise ValueError(
                    f"{where} must have shape (batch={B}, heads={H}, tokens={n}, head_dim={d}) "
                    f"for thw={grid}, has_cls={bool(seg.has_cls)}; got {_shape(t)}"
                )
            if t.dtype != q.dtype:
                raise ValueError(f"{where} has dtype {t.dtype} but q has {q.dtype}; they must match")
            if t.device != q.device:
                raise ValueError(f"{where} is on {t.device} but q is on {q.device}; they must match")
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)):
        raise ValueError(f"scale must be a finite float or None; got {scale!r}")
    if rel_pos is not None:
        _check_rel_pos(rel_pos, q, q_grid, segments)
    if attn_mask is not None:
        n_keys = sum(seg.k.shape[2] for seg in segments)
        if not isinstance(attn_mask, Tensor):
            raise ValueError(f"attn_mask must be a tensor broadcastable to ({B}, {H}, {Nq}, {n_keys})")
        if attn_mask.dtype != torch.bool and not attn_mask.is_floating_point():
            raise ValueError(f"attn_mask must be bool or floating point; got {attn_mask.dtype}")
        if attn_mask.device != q.device:
            raise ValueError(f"attn_mask is on {attn_mask.device} but q is on {q.device}")
        try:
            torch.broadcast_shapes(tuple(attn_mask.shape), (B, H, Nq, n_keys))
            ok = attn_mask.dim() <= 4
        except RuntimeError:
            ok = False
        if not ok or torch.broadcast_shapes(tuple(attn_mask.shape), (B, H, Nq, n_keys)) != (B, H, Nq, n_keys):
            raise ValueError(
                f"attn_mask of shape {_shape(attn_mask)} does not broadcast to (batch={B}, heads={H}, "
                f"queries={Nq}, keys={n_keys})"
            )


def _check_rel_pos(rel_pos: RelPos, q: Tensor, q_grid, segments: Sequence[KVSegment]) -> None:
    if not isinstance(rel_pos, RelPos):
        raise ValueError(f"rel_pos must be a RelPos or None; got {type(rel_pos).__name__}")
    stride = rel_pos.mem_t_stride
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"rel_pos.mem_t_stride must be a positive int; got {stride!r}")
    d = q.shape[-1]
    for name in ("h", "w", "t", "mem_h", "mem_w", "mem_t"):
        table = getattr(rel_pos, name)
        if table is None:
            continue
        if not isinstance(table, Tensor) or table.dim() != 2 or table.shape[1] != d:
            got = _shape(table) if isinstance(table, Tensor) else type(table).__name__
            raise ValueError(f"rel_pos.{name} must be a 2-D tensor (rows, head_dim={d}); got {got}")
        if not table.is_floating_point():
            raise ValueError(f"rel_pos.{name} must be floating point; got {table.dtype}")
        if table.device != q.device:
            raise ValueError(f"rel_pos.{name} is on {table.device} but q is on {q.device}")
    for name, (rows, exact) in expected_table_rows(rel_pos, q_grid, segments).items():
        have = getattr(rel_pos, name).shape[0]
        if (exact and have != rows) or (not exact and have < rows):
            need = f"{rows}" if exact else f"at least {rows}"
            hint = " (resize it with memvit_ext.resize_rel_pos)" if exact else ""
            raise ValueError(
                f"rel_pos.{name} has {have} rows but q grid {tuple(q_grid)} and the key grids "
                f"{[tuple(s.thw) for s in segments]} need {need}: expected shape ({need}, {d}){hint}"
            )
