# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""An independent float64 oracle of the op, for the tests only.

Unlike memvit_ext (per-query rel_bias, float32 index rules, one-hot products), this
concatenates the keys and materialises the full (B, H, Nq, Nk) bias pair by pair from first
principles: each key's grid coordinates, exact rational distances for the decomposed
relative positions (MViTv2 / MeMViT, the rules of docs/op.md), table rows gathered per query.
It is slow and memory-hungry on purpose: nothing in it is shared with the package.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch


def _stretched(qi: int, kj: int, q_len: int, k_len: int, ratio_q: int, ratio_k: int, offset_len: int) -> int:
    """floor(qi * max(k/q, 1) - kj * max(q/k, 1) + (offset_len - 1) * max(q/k, 1)), exactly."""
    q_ratio = max(Fraction(ratio_k, ratio_q), Fraction(1))
    k_ratio = max(Fraction(ratio_q, ratio_k), Fraction(1))
    return math.floor(qi * q_ratio - kj * k_ratio + (offset_len - 1) * k_ratio)


def spatial_rows(q_len: int, k_len: int) -> torch.Tensor:
    return torch.tensor([[_stretched(i, j, q_len, k_len, q_len, k_len, k_len) for j in range(k_len)]
                         for i in range(q_len)])


def nonsquare_w_rows(q_h: int, k_h: int, q_w: int, k_w: int) -> torch.Tensor:
    """Reference rule for wide grids: w positions stretched with the h ratios, clamped to h's range."""
    h_rows = spatial_rows(q_h, k_h)
    lo, hi = int(h_rows.min()), int(h_rows.max())
    return torch.tensor([[min(max(_stretched(i, j, q_w, k_w, q_h, k_h, k_h), lo), hi) for j in range(k_w)]
                         for i in range(q_w)])


def grid_coords(thw, with_cls: bool) -> torch.Tensor:
    """(N, 3) coordinates (t, h, w) of each token in raster order; the cls row is (-1, -1, -1)."""
    t, h, w = thw
    coords = torch.stack(torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"), -1)
    coords = coords.reshape(-1, 3)
    if with_cls:
        coords = torch.cat([torch.full((1, 3), -1), coords])
    return coords


def oracle(q, q_thw, segments, rel_pos=None, scale=None, q_has_cls=True, residual=True, attn_mask=None):
    """out (float64) of memory-augmented pooling attention, computed the plain way."""
    q = q.double()
    B, H, Nq, d = q.shape
    scale = d ** -0.5 if scale is None else scale
    k = torch.cat([s.k.double() for s in segments], dim=2)
    v = torch.cat([s.v.double() for s in segments], dim=2)
    logits = scale * q @ k.transpose(-1, -2)
    q_coords = grid_coords(q_thw, q_has_cls)
    q_grid = q_coords[:, 0] >= 0
    if rel_pos is not None:
        bias = torch.zeros_like(logits)
        memory = segments[:-1]
        slots = sum(s.thw[0] for s in memory)
        start, first_slot = 0, 0
        stride = rel_pos.mem_t_stride
        for i, seg in enumerate(segments):
            is_mem = i < len(memory)
            n = seg.k.shape[2]
            k_coords = grid_coords(seg.thw, seg.has_cls)
            k_grid = k_coords[:, 0] >= 0
            tables = (rel_pos.mem_t, rel_pos.mem_h, rel_pos.mem_w) if is_mem else (rel_pos.t, rel_pos.h, rel_pos.w)
            for axis, table in enumerate(tables):
                if table is None:
                    continue
                q_len, k_len = q_thw[axis], seg.thw[axis]
                if axis == 0:
                    rows = torch.tensor([[qi - stride * (first_slot + kj) + stride * (slots - 1) if is_mem
                                          else qi - kj + k_len - 1 for kj in range(k_len)] for qi in range(q_len)])
                elif axis == 2 and rel_pos.reference_nonsquare and (
                        2 * max(q_thw[2], seg.thw[2]) > 2 * max(q_thw[1], seg.thw[1])):
                    rows = nonsquare_w_rows(q_thw[1], seg.thw[1], q_len, k_len)
                else:
                    rows = spatial_rows(q_len, k_len)
                assert rows.min() >= 0 and rows.max() < table.shape[0]
                # term[b, h, query, key] = q_query . table[rows[q coord, k coord]]
                R = table.double()[rows]  # (q_len, k_len, d)
                per_query = R[q_coords[q_grid, axis]]  # (grid queries, k_len, d)
                term = torch.einsum("bnqd,qkd->bnqk", q[:, :, q_grid], per_query)  # (B, H, grid queries, k_len)
                key_pos = k_coords[k_grid, axis]
                block = torch.zeros(B, H, Nq, n, dtype=torch.float64)
                block[:, :, q_grid.nonzero()[:, 0, None], k_grid.nonzero()[:, 0]] = term[:, :, :, key_pos]
                bias[:, :, :, start:start + n] += block
            start += n
            if is_mem:
                first_slot += seg.thw[0]
        logits = logits + bias
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn_mask = torch.zeros(attn_mask.shape, dtype=torch.float64).masked_fill(~attn_mask, float("-inf"))
        logits = logits + attn_mask.double()
    probs = torch.softmax(logits, dim=-1).nan_to_num(0.0)
    out = probs @ v
    if residual:  # the cls query row gets no residual
        out = out + q * q_grid.double()[None, None, :, None]
    return out


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float64."""
    a, b = a.detach().double(), b.detach().double()
    denom = b.norm()
    return float((a - b).norm() / denom) if denom > 0 else float((a - b).norm())
