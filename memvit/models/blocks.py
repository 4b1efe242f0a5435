# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The MeMViT transformer block (MViTv2 block with channel growth inside attention)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytorchvideo.layers.attention import Mlp
from pytorchvideo.layers.drop_path import DropPath
from torch import Tensor, nn

from .attention import Grid, MemoryAttention, attention_pool
from .memory import MemoryBackendStep


class MemoryMultiScaleBlock(nn.Module):
    """Pre-norm block around a memory attention module.

    ::

        x_norm = norm1(x)
        skip   = maxpool_skip(proj(x_norm) if dim != dim_out else x)    (cls token not pooled)
        x      = skip + drop_path(attn(x_norm))
        x      = x + drop_path(mlp(norm2(x)))

    Args:
        dim, dim_out: channels in / out (the attention maps dim -> dim_out).
        attn: a :class:`MemoryAttention` (pooling or box attention); the block calls it once.
        mlp_ratio: MLP hidden size / dim_out.
        dropout_rate: MLP dropout (after the activation and after fc2).
        droppath_rate: stochastic depth of both residual branches.
        stride_q: the attention's q stride; the skip path is max-pooled with kernel
            ``s + 1`` (where ``s > 1``) and this stride. ``None`` for box blocks.
        has_cls_embed: whether tokens start with a cls token (never pooled).
        act_checkpoint: recompute the block's activations in backward (activation
            checkpointing): the attention's pooling and attention (around its memory update,
            which runs once) and the MLP.
    """

    def __init__(self, dim: int, dim_out: int, attn: MemoryAttention, mlp_ratio: float = 4.0, dropout_rate: float = 0.0,
                 droppath_rate: float = 0.0, stride_q: Sequence[int] | None = (1, 1, 1),
                 has_cls_embed: bool = True, norm_eps: float = 1e-6, act_checkpoint: bool = False) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.has_cls_embed = has_cls_embed
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = attn
        self.act_checkpoint = act_checkpoint
        self.drop_path = DropPath(droppath_rate) if droppath_rate > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim_out, eps=norm_eps)
        self.mlp = Mlp(in_features=dim_out, hidden_features=int(dim_out * mlp_ratio), out_features=dim_out,
                       act_layer=nn.GELU, dropout_rate=dropout_rate)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)
        self.pool_skip = None
        if stride_q is not None and math.prod(stride_q) > 1:
            kernel = [s + 1 if s > 1 else s for s in stride_q]
            self.pool_skip = nn.MaxPool3d(kernel, list(stride_q), [k // 2 for k in kernel], ceil_mode=False)

    @property
    def act_checkpoint(self) -> bool:
        return self.attn.act_checkpoint

    @act_checkpoint.setter
    def act_checkpoint(self, enabled: bool) -> None:
        # The attention checkpoints its own parts around the memory update; the block its MLP.
        self.attn.act_checkpoint = bool(enabled)

    def forward(self, x: Tensor, thw: Sequence[int], memory: MemoryBackendStep | None = None,
                key_valid: Tensor | None = None) -> tuple[Tensor, Grid]:
        """Tokens ``(B, N, dim)`` on grid ``thw`` -> tokens ``(B, N', dim_out)`` and their grid."""
        x_norm = self.norm1(x)
        x_block, grid = self.attn(x_norm, thw, memory, key_valid)
        skip = self.proj(x_norm) if self.dim != self.dim_out else x
        skip, _ = attention_pool(skip, self.pool_skip, thw, self.has_cls_embed)
        x = skip + self.drop_path(x_block)
        return x + self.drop_path(self.attn.checkpointed(self._mlp, x)), grid

    def _mlp(self, x: Tensor) -> Tensor:
        return self.mlp(self.norm2(x))
