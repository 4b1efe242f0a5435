# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""timm's MViTv2 attention on ``memvit_ext``'s op (what :func:`memvit.fuse_attention` swaps in).

timm's ``MultiScaleAttention`` (``timm.models.mvitv2``) is MViTv2's pooling attention on
images: q/k/v projected by one ``qkv`` Linear, pooled per head (conv + norm, avg or max),
decomposed relative positions ``rel_pos_h``/``rel_pos_w`` (each axis with its own resolution
ratios) and residual pooling. The op is 3-D; an image is a clip of one frame (``t = 1``, no
temporal table). Two differences from the op's defaults are kept as timm has them: the spatial
tables are read from their first row (timm indexes them without resizing) and timm's residual
adds ``q`` to the cls row too, which the op leaves out, so the fused module adds it back.

Imported only when timm is (:func:`memvit.fuse_attention` looks at ``sys.modules``): timm is
not a dependency of the package.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from timm.models.mvitv2 import MultiScaleAttention, MultiScaleAttentionPoolFirst, reshape_post_pool, reshape_pre_pool
from torch import Tensor, nn

from memvit_ext import KVSegment, RelPos, memory_pooling_attention
from memvit_ext.rel_pos import spatial_table_rows

from .attention import MemoryAttention

ATTENTION_TYPES = (MultiScaleAttention, MultiScaleAttentionPoolFirst)
POOL_MODES = ("conv", "conv_unshared", "avg", "max")  # timm 1.0.31's modes, pooled by its own code


def timm_refusal(attn: nn.Module) -> str | None:
    """Why :class:`FusedTimmMultiScaleAttention` cannot stand in for ``attn`` (None when it can)."""
    if isinstance(attn, MultiScaleAttentionPoolFirst):
        # timm multiplies q by the projected k without transposing it: the module fails unless
        # head_dim == num_heads, and then computes no attention; there is no output to reproduce.
        return "timm's pool-first attention (pool_first=True) does not compute attention (q @ k, k not transposed)"
    if type(attn) is not MultiScaleAttention:
        return (f"{type(attn).__qualname__} subclasses timm's MultiScaleAttention; its forward may differ from "
                "the one the fused module reproduces")
    if attn.mode not in POOL_MODES:
        return f"pooling mode {attn.mode!r} (the fused module reproduces {', '.join(POOL_MODES)})"
    return None


class FusedTimmMultiScaleAttention(MemoryAttention):
    """timm's MViTv2 ``MultiScaleAttention`` with its attention core on ``memvit_ext``'s op.

    Same children and parameters under the same names (``qkv``, ``proj``, ``pool_*``,
    ``norm_*``, ``rel_pos_h``/``rel_pos_w``), same ``forward(x, feat_size) -> (x, q_size)``.
    No memory: :class:`MemoryAttention` is the base for the op's implementation switch.
    """

    def __init__(self, attn: MultiScaleAttention, name: str = "") -> None:
        super().__init__(name, attend_memory=False)
        if getattr(attn, "rel_pos_type", None) == "spatial":
            self.rel_pos_h, self.rel_pos_w = attn.rel_pos_h, attn.rel_pos_w
        for child_name, child in attn.named_children():
            self.add_module(child_name, child)
        for attr in ("pool_q", "pool_k", "pool_v", "norm_q", "norm_k", "norm_v"):  # None in timm when absent
            if not hasattr(self, attr):
                setattr(self, attr, None)
        self.num_heads, self.dim_out, self.head_dim = attn.num_heads, attn.dim_out, attn.head_dim
        self.scale = attn.scale
        self.has_cls_token = attn.has_cls_token
        self.mode, self.rel_pos_type = attn.mode, attn.rel_pos_type
        self.residual_pooling = attn.residual_pooling

    def _pool(self, x: Tensor, feat_size: Sequence[int], pool: nn.Module | None,
              norm: nn.Module | None) -> tuple[Tensor, Sequence[int]]:
        """timm's pooling of one of q/k/v ``(B, heads, N, head_dim)``, with timm's own reshapes."""
        if pool is not None:
            x, cls_tok = reshape_pre_pool(x, list(feat_size), self.has_cls_token)
            x, feat_size = reshape_post_pool(pool(x), self.num_heads, cls_tok)
        if norm is not None:
            x = norm(x)
        return x, feat_size

    def _rel_pos(self, q_size: Sequence[int], k_size: Sequence[int]) -> RelPos | None:
        """timm's tables as the op takes them: the first ``2 max(q, k) - 1`` rows of each axis.

        A table shorter than that (an input larger than the model was built for) is passed
        whole and the op refuses it, as timm's indexing fails.
        """
        if self.rel_pos_type != "spatial":
            return None
        tables = []
        for table, q_len, k_len in ((self.rel_pos_h, q_size[0], k_size[0]), (self.rel_pos_w, q_size[1], k_size[1])):
            rows = spatial_table_rows(int(q_len), int(k_len))
            tables.append(table[:rows] if table.shape[0] >= rows else table)
        return RelPos(h=tables[0], w=tables[1])

    def forward(self, x: Tensor, feat_size: list[int]) -> tuple[Tensor, Sequence[int]]:
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(dim=0)
        q, q_size = self._pool(q, feat_size, self.pool_q, self.norm_q)
        k, k_size = self._pool(k, feat_size, self.pool_k, self.norm_k)
        v, _ = self._pool(v, feat_size, self.pool_v, self.norm_v)
        q_thw, k_thw = (1, int(q_size[0]), int(q_size[1])), (1, int(k_size[0]), int(k_size[1]))
        out = memory_pooling_attention(q, q_thw, [KVSegment(k, v, k_thw, self.has_cls_token)],
                                       q_has_cls=self.has_cls_token, rel_pos=self._rel_pos(q_size, k_size),
                                       scale=self.scale, residual=self.residual_pooling,
                                       implementation=self.implementation)
        if self.residual_pooling and self.has_cls_token:  # timm's residual includes the cls row
            out = out + F.pad(q[:, :, :1], (0, 0, 0, out.shape[2] - 1))
        return self.proj(out.transpose(1, 2).reshape(B, -1, self.dim_out)), q_size
