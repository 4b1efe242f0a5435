# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""MeMViT attention: MViTv2 pool-first pooling attention with a memory of earlier clips.

The attention arithmetic (logits, decomposed relative positions, softmax, residual pooling)
is the ``memvit_ext.memory_pooling_attention`` op; these modules pool, project, read and write
the memory (through :mod:`memvit.models.memory`) and size the relative-position tables for the
runtime grids. Each module owns its whole forward, activation checkpointing included, so that
the memory update (a side effect) runs exactly once per step.

Parameter names and shapes are those of the reference (facebookresearch/MeMViT), so its
checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from memvit_ext import RelPos, memory_pooling_attention, resize_rel_pos
from memvit_ext.rel_pos import spatial_table_rows

from .memory import GatheredMemory, MemoryBackendStep, MemoryEntry, memory_key_values

Grid = tuple[int, int, int]


def triple(x: Sequence[int]) -> Grid:
    """``(t, h, w)`` as plain ints."""
    x = tuple(int(v) for v in x)
    if len(x) != 3:
        raise ValueError(f"expected three values (t, h, w); got {x}")
    return x  # type: ignore[return-value]


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``(B, N, heads * c)`` -> ``(B, heads, N, c)``, channels chunked contiguously per head."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, heads, N, c)`` -> ``(B, N, heads * c)`` (the inverse of :func:`split_heads`)."""
    B, heads, N, c = x.shape
    return x.transpose(1, 2).reshape(B, N, heads * c)


def attention_pool(x: Tensor, pool: nn.Module | None, thw: Sequence[int], has_cls: bool,
                   norm: nn.Module | None = None) -> tuple[Tensor, Grid]:
    """Pool the token grid of ``x`` (``(B, heads, N, C)`` or ``(B, N, C)``); cls bypasses the pool.

    The norm (if any) is applied to the pooled sequence including the cls token, as in MViTv2.
    """
    if pool is None:
        return x, triple(thw)
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(1)
    if has_cls:
        cls_tok, x = x[:, :, :1], x[:, :, 1:]
    B, heads, _, C = x.shape
    t, h, w = thw
    x = x.reshape(B * heads, t, h, w, C).permute(0, 4, 1, 2, 3)
    x = _run_pool(pool, x)
    grid = (int(x.shape[2]), int(x.shape[3]), int(x.shape[4]))
    x = x.reshape(B, heads, C, -1).transpose(2, 3)
    if has_cls:
        x = torch.cat((cls_tok, x), dim=2)
    if norm is not None:
        x = norm(x)
    return (x.squeeze(1) if squeeze else x), grid


def _run_pool(pool: nn.Module, x: Tensor) -> Tensor:
    """The pooling conv; on CPU under autocast with gradients in float32.

    oneDNN's bf16 depthwise 3-D convolution backward runs 3-8x slower than its float32 one on
    these grids (a third of a bf16 MeMViT-16 training step); without a backward the bf16
    forward is the faster (a float32 forward with its casts costs a quarter more per clip).
    """
    if (x.device.type == "cpu" and torch.is_grad_enabled() and x.is_floating_point()
            and torch.is_autocast_enabled("cpu")):
        with torch.autocast("cpu", enabled=False):
            return pool(x.float())
    return pool(x)


def pooled_grid(pool: nn.Module | None, thw: Sequence[int]) -> Grid:
    """The grid a pooling conv produces from ``thw`` (conv arithmetic, no tensors)."""
    if pool is None:
        return triple(thw)
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in
                 zip(thw, pool.kernel_size, pool.stride, pool.padding))  # type: ignore[return-value]


def _spatial_tables(table_h: Tensor, table_w: Tensor, q_thw: Grid, k_thw: Grid) -> tuple[Tensor, Tensor]:
    """Resize h/w tables to the runtime grids (the reference's rule, wide inputs included)."""
    rows_h = spatial_table_rows(q_thw[1], k_thw[1])
    rows_w = spatial_table_rows(q_thw[2], k_thw[2])
    # Wider than tall: the reference reads w distances with the h ratios from an h-sized table.
    return resize_rel_pos(table_h, rows_h), resize_rel_pos(table_w, rows_h if rows_w > rows_h else rows_w)


class MemoryAttention(nn.Module):
    """Base of the attention modules that cache clips in a memory back-end and run the op.

    It holds what every memory attention shares: which implementation runs the op
    (``"auto"``, ``"kernel"`` or ``"reference"``, see
    :func:`memvit.models.set_attention_implementation`), the layer's key in the memory, the
    learnable compression of cached clips, the memory read/write of a step and activation
    checkpointing around the pure parts of a forward.
    """

    implementation: str = "auto"
    act_checkpoint: bool = False

    def __init__(self, memory_name: str, attend_memory: bool) -> None:
        super().__init__()
        self.memory_name = memory_name
        self.attend_memory = attend_memory
        self.has_compress = False

    def build_compression(self, dim: int, kernel: Sequence[int] | None, stride: Sequence[int],
                          norm_eps: float = 1e-6) -> None:
        """``compress_k/v`` (depthwise Conv3d over ``dim``) and ``norm_compress_k/v`` (LayerNorm):
        MeMViT's compression of cached clips. ``kernel=None``: cached clips stay uncompressed."""
        self.has_compress = kernel is not None
        if kernel is None:
            return
        kernel, stride = triple(kernel), triple(stride)

        def conv() -> nn.Conv3d:
            return nn.Conv3d(dim, dim, kernel, stride=stride, padding=[k // 2 for k in kernel], groups=dim,
                             bias=False)

        self.compress_k, self.compress_v = conv(), conv()
        self.norm_compress_k = nn.LayerNorm(dim, eps=norm_eps)
        self.norm_compress_v = nn.LayerNorm(dim, eps=norm_eps)

    def compress(self, entry: MemoryEntry) -> MemoryEntry:
        """A cached clip pooled by the compression convs (+ LayerNorm, cls token included)."""
        k, grid = attention_pool(entry.k, self.compress_k, entry.thw, entry.has_cls, self.norm_compress_k)
        v, _ = attention_pool(entry.v, self.compress_v, entry.thw, entry.has_cls, self.norm_compress_v)
        return MemoryEntry(k, v, grid, entry.has_cls, compressed=True)

    def read_write_memory(self, step: MemoryBackendStep | None, k: Tensor, v: Tensor, thw: Sequence[int],
                          has_cls: bool, valid: Tensor | None = None) -> GatheredMemory:
        """Cache this clip's ``k``/``v`` and gather the clips this layer attends (none without a step)."""
        if step is None or not self.attend_memory:
            return GatheredMemory([], [])
        return step.update(self.memory_name, k, v, thw, has_cls, attend=True,
                           compress=self.compress if self.has_compress else None, valid=valid)

    def checkpointed(self, fn: Callable[..., Tensor | tuple[Tensor, ...]], *args):
        """``fn(*args)``, recomputed in backward when activation checkpointing is on and training."""
        if self.act_checkpoint and self.training and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)


class MemoryPoolingAttention(MemoryAttention):
    """MViTv2 pooling attention (pool-first) with MeMViT memory.

    ::

        x (B, 1+thw, dim) -> heads -> pool_q/k/v (depthwise Conv3d + LayerNorm, shared by heads)
          q -> Linear q -> (B, heads, Nq, head_dim)
          k, v (un-projected)  -> cached as memory; concatenated after the attended memory clips
          [memory clips..., current] -> Linear k / Linear v
          -> memvit_ext.memory_pooling_attention (rel-pos bias, residual pooling) -> proj

    Args:
        dim, dim_out: input / output channels (MViTv2 grows channels inside attention).
        num_heads: heads; ``head_dim = dim_out // num_heads``. Pooling runs on ``dim // num_heads``
            channels per head with weights shared across heads.
        input_size: (t, h, w) token grid at build time; sizes the relative-position tables.
        kernel_q, kernel_kv, stride_q, stride_kv: pooling; a kernel and stride of all ones
            means no pooling (no pool/norm parameters).
        rel_pos_spatial, rel_pos_temporal: decomposed relative positions.
        residual_pooling: add the pooled q to the output (MViTv2).
        memory: build the memory relative-position tables (``rel_pos_mem_*``).
        attend_memory: whether this layer caches and attends memory at run time (False for
            the reference's EXCLUDE_LAYERS, which cache but never read it).
        attn_max_len: current clip + at most this many - 1 memory clips (sizes ``rel_pos_mem_t``).
        compress_kernel, compress_stride: memory compression (depthwise Conv3d over ``dim`` +
            LayerNorm); ``None`` for no compression.
        dropout_rate: dropout after the output projection.
        memory_name: the key of this layer's cache in the model's :class:`MemoryState`.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        input_size: Sequence[int],
        qkv_bias: bool = True,
        kernel_q: Sequence[int] = (3, 3, 3),
        kernel_kv: Sequence[int] = (3, 3, 3),
        stride_q: Sequence[int] = (1, 1, 1),
        stride_kv: Sequence[int] = (1, 1, 1),
        has_cls_embed: bool = True,
        rel_pos_spatial: bool = True,
        rel_pos_temporal: bool = True,
        residual_pooling: bool = True,
        memory: bool = True,
        attend_memory: bool = True,
        attn_max_len: int = 3,
        compress_kernel: Sequence[int] | None = (7, 3, 3),
        compress_stride: Sequence[int] = (4, 2, 2),
        dropout_rate: float = 0.0,
        norm_eps: float = 1e-6,
        memory_name: str = "",
    ) -> None:
        super().__init__(memory_name, memory and attend_memory)
        if dim % num_heads or dim_out % num_heads:
            raise ValueError(f"dim {dim} and dim_out {dim_out} must be divisible by num_heads {num_heads}")
        self.dim, self.dim_out, self.num_heads = dim, dim_out, num_heads
        self.head_dim = dim_out // num_heads
        self.has_cls_embed = has_cls_embed
        self.residual_pooling = residual_pooling
        stride_q, stride_kv = triple(stride_q), triple(stride_kv)
        kernel_q, kernel_kv = triple(kernel_q), triple(kernel_kv)
        t, h, w = triple(input_size)

        # Parameters of the module itself first: the reference's state-dict order.
        def table(rows: int) -> nn.Parameter:
            return nn.Parameter(torch.zeros(rows, self.head_dim))

        self.compress_stride = triple(compress_stride) if compress_kernel is not None else (1, 1, 1)
        if rel_pos_spatial:
            q_h, q_w = h // stride_q[1], w // stride_q[2]
            kv_h, kv_w = h // stride_kv[1], w // stride_kv[2]
            self.rel_pos_h = table(2 * max(q_h, kv_h) - 1)
            self.rel_pos_w = table(2 * max(q_w, kv_w) - 1)
            if memory and compress_kernel is not None:
                mem_h, mem_w = kv_h // self.compress_stride[1], kv_w // self.compress_stride[2]
                self.rel_pos_mem_h = table(2 * max(q_h, mem_h) - 1)
                self.rel_pos_mem_w = table(2 * max(q_w, mem_w) - 1)
        if rel_pos_temporal:
            self.rel_pos_t = table(2 * t - 1)
            if memory:
                self.rel_pos_mem_t = table(2 * t + (attn_max_len - 2) * t - 1)
        self.q = nn.Linear(dim, dim_out, bias=qkv_bias)
        self.k = nn.Linear(dim, dim_out, bias=qkv_bias)
        self.v = nn.Linear(dim, dim_out, bias=qkv_bias)
        self.proj = nn.Linear(dim_out, dim_out)
        self.proj_drop = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()

        pool_channels = dim // num_heads

        def pool(kernel: Grid, stride: Grid) -> tuple[nn.Module | None, nn.Module | None]:
            if math.prod(kernel) == 1 and math.prod(stride) == 1:
                return None, None
            conv = nn.Conv3d(pool_channels, pool_channels, kernel, stride=stride,
                             padding=[k // 2 for k in kernel], groups=pool_channels, bias=False)
            return conv, nn.LayerNorm(pool_channels, eps=norm_eps)

        self.pool_q, self.norm_q = pool(kernel_q, stride_q)
        self.pool_k, self.norm_k = pool(kernel_kv, stride_kv)
        self.pool_v, self.norm_v = pool(kernel_kv, stride_kv)
        self.build_compression(dim, compress_kernel, compress_stride, norm_eps)

    def output_grids(self, thw: Sequence[int]) -> tuple[Grid, Grid]:
        """(q grid, k/v grid) after pooling an input grid (conv arithmetic, no tensors)."""
        return pooled_grid(self.pool_q, thw), pooled_grid(self.pool_k, thw)

    def forward(self, x: Tensor, thw: Sequence[int], memory: MemoryBackendStep | None = None,
                key_valid: Tensor | None = None) -> tuple[Tensor, Grid]:
        """``x``: normalised tokens ``(B, cls + t*h*w, dim)``; returns tokens and the q grid.

        With activation checkpointing the pooling and the attention are recomputed in backward;
        the memory update between them runs once.
        """
        if key_valid is not None:
            raise ValueError("key_valid marks padded tokens of unpooled attention (the box block); "
                             "pooling attention takes none")
        q_thw, kv_thw = self.output_grids(thw)
        q, k, v = self.checkpointed(self._pool, x, thw)
        gathered = self.read_write_memory(memory, k, v, kv_thw, self.has_cls_embed)

        def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
            segments, mask = memory_key_values(
                gathered, k, v, kv_thw, self.has_cls_embed,
                to_heads_k=lambda t: split_heads(self.k(t), self.num_heads),
                to_heads_v=lambda t: split_heads(self.v(t), self.num_heads))
            out = memory_pooling_attention(
                q, q_thw, segments, q_has_cls=self.has_cls_embed,
                rel_pos=self._rel_pos(q_thw, kv_thw, gathered.entries[0].thw if gathered.entries else None),
                residual=self.residual_pooling, attn_mask=mask, implementation=self.implementation)
            return self.proj_drop(self.proj(merge_heads(out)))

        return self.checkpointed(attend, q, k, v), q_thw

    def _pool(self, x: Tensor, thw: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        """Pool q, k, v of the normalised input and project q.

        Returns q ``(B, heads, Nq, head_dim)`` and the un-projected k, v ``(B, Nk, dim)``.
        """
        heads = split_heads(x, self.num_heads)
        q, _ = attention_pool(heads, self.pool_q, thw, self.has_cls_embed, self.norm_q)
        k, _ = attention_pool(heads, self.pool_k, thw, self.has_cls_embed, self.norm_k)
        v, _ = attention_pool(heads, self.pool_v, thw, self.has_cls_embed, self.norm_v)
        q = split_heads(self.q(merge_heads(q)), self.num_heads)
        return q, merge_heads(k), merge_heads(v)

    def _rel_pos(self, q_thw: Grid, kv_thw: Grid, mem_thw: Grid | None) -> RelPos | None:
        tables: dict[str, Tensor] = {}
        if hasattr(self, "rel_pos_h"):
            tables["h"], tables["w"] = _spatial_tables(self.rel_pos_h, self.rel_pos_w, q_thw, kv_thw)
            if mem_thw is not None and hasattr(self, "rel_pos_mem_h"):
                tables["mem_h"], tables["mem_w"] = _spatial_tables(
                    self.rel_pos_mem_h, self.rel_pos_mem_w, q_thw, mem_thw)
        if hasattr(self, "rel_pos_t"):
            rows = spatial_table_rows(q_thw[0], kv_thw[0])
            if self.rel_pos_t.shape[0] < rows:
                raise ValueError(f"rel_pos_t has {self.rel_pos_t.shape[0]} rows but {q_thw[0]} query and "
                                 f"{kv_thw[0]} key time steps need {rows}: build the model for at least "
                                 f"{q_thw[0]} token time steps (temporal_size)")
            tables["t"] = self.rel_pos_t[:rows]  # the reference indexes the first rows, never resizes
            if mem_thw is not None and hasattr(self, "rel_pos_mem_t"):
                tables["mem_t"] = self.rel_pos_mem_t
        if not tables:
            return None
        return RelPos(**tables, mem_t_stride=self.compress_stride[0], reference_nonsquare=True)


class BoxMemoryAttention(MemoryAttention):
    """MeMViT's attention over the boxes of a clip and the boxes of earlier clips (AVA head).

    The input is the LayerNorm-ed box features padded to ``S`` slots ``(B, S, dim)``; there is
    no pooling and no relative position. ``q, k, v`` are Linear maps; memory caches the
    un-projected input. Dropouts (training only): ``drop_qkv_rate`` on q, k and v,
    ``drop_attn_rate`` on the attention probabilities, ``dropout_rate`` after ``proj``. The
    residual ``+ q`` uses the dropped-out q, as the reference.

    ``mask_padding=False`` (the reference) lets every slot, empty ones included, be attended;
    ``True`` masks the empty slots of the current and of the memory clips.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, drop_attn_rate: float = 0.0,
                 drop_qkv_rate: float = 0.0, dropout_rate: float = 0.0, memory: bool = True,
                 mask_padding: bool = False, memory_name: str = "") -> None:
        super().__init__(memory_name, memory)
        self.dim, self.num_heads = dim, num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.qkv_drop = nn.Dropout(drop_qkv_rate) if drop_qkv_rate > 0 else nn.Identity()
        self.drop_attn_rate = drop_attn_rate
        self.mask_padding = mask_padding

    def forward(self, x: Tensor, thw: Sequence[int], memory: MemoryBackendStep | None = None,
                key_valid: Tensor | None = None) -> tuple[Tensor, Grid]:
        """``x``: ``(B, S, dim)`` normalised slots; ``key_valid``: ``(B, S)`` True for real boxes."""
        B, S, C = x.shape
        gathered = self.read_write_memory(memory, x, x, (1, 1, S), False, valid=key_valid)
        q = self.qkv_drop(split_heads(self.q(x), self.num_heads))
        segments, mask = memory_key_values(
            gathered, x, x, (1, 1, S), False,
            to_heads_k=lambda t: self.qkv_drop(split_heads(self.k(t), self.num_heads)),
            to_heads_v=lambda t: self.qkv_drop(split_heads(self.v(t), self.num_heads)),
            valid=key_valid, mask_padding=self.mask_padding)
        if self.training and self.drop_attn_rate > 0:
            # Dropout on the attention probabilities: the op has none, torch's SDPA does.
            k = torch.cat([s.k for s in segments], dim=2)
            v = torch.cat([s.v for s in segments], dim=2)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.drop_attn_rate) + q
        else:
            out = memory_pooling_attention(q, (1, 1, S), segments, q_has_cls=False, rel_pos=None, residual=True,
                                           attn_mask=mask, implementation=self.implementation)
        return self.proj_drop(self.proj(merge_heads(out))), triple(thw)
