# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Patch embedding: a strided Conv3d whose output grid is flattened into tokens."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class PatchEmbed(nn.Module):
    """``Conv3d`` then flatten to ``(B, t*h*w, C)`` tokens in (t, h, w) raster order.

    PyTorchVideo's ``create_conv_patch_embed`` does the same, but names the conv
    ``patch_model``; the MeMViT checkpoints name it ``proj``, which this module keeps.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 96, kernel: Sequence[int] = (3, 7, 7),
                 stride: Sequence[int] = (2, 4, 4), padding: Sequence[int] = (1, 3, 3)) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_channels, out_channels, tuple(kernel), stride=tuple(stride), padding=tuple(padding))

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int, int]]:
        """Clip ``(B, C, T, H, W)`` -> tokens and their (t, h, w) grid (read from the conv output)."""
        x = self.proj(x)
        grid = (int(x.shape[2]), int(x.shape[3]), int(x.shape[4]))  # plain ints, also under tracing
        return x.flatten(2).transpose(1, 2), grid
