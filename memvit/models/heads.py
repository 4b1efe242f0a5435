# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Heads: Kinetics classification on the cls token, and the AVA RoI head around the box block.

Both keep the reference's parameter names (``head.projection``); PyTorchVideo's heads name the
linear layer ``proj``, and its RoI head cannot host the box block between pooling and
classification, so these are our own small modules (RoIAlign comes from ``torchvision.ops``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import RoIAlign

ACTIVATIONS = {"softmax": lambda: nn.Softmax(dim=1), "sigmoid": nn.Sigmoid}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"head activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]()


class ClassificationHead(nn.Module):
    """Dropout, ``Linear`` (``projection``), and the activation in eval mode only (logits in training)."""

    def __init__(self, dim_in: int, num_classes: int, dropout_rate: float = 0.5, activation: str = "softmax") -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.projection = nn.Linear(dim_in, num_classes)
        self.act = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        x = self.projection(self.dropout(x))
        return x if self.training else self.act(x)


class RoIHead(nn.Module):
    """The AVA head: per-box features from the last feature map, then classification.

    ``pool``: temporal average -> ``RoIAlign`` (output ``resolution``, scale ``1/spatial_scale_factor``,
    sampling ratio 0, ``aligned``) -> spatial max-pool -> ``(K, C)``. ``classify``: dropout ->
    ``Linear`` (``projection``) -> activation (applied in training too: the reference trains
    with ``BCELoss`` on the sigmoid outputs). The model runs the box block in between.
    """

    def __init__(self, dim_in: int, num_classes: int = 80, resolution: int = 7, spatial_scale_factor: float = 32,
                 aligned: bool = True, dropout_rate: float = 0.5, activation: str = "sigmoid") -> None:
        super().__init__()
        self.roi = RoIAlign((resolution, resolution), spatial_scale=1.0 / spatial_scale_factor, sampling_ratio=0,
                            aligned=aligned)
        self.spool = nn.MaxPool2d(resolution, stride=1)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else nn.Identity()
        self.projection = nn.Linear(dim_in, num_classes)
        self.act = _activation(activation)

    def pool(self, x: Tensor, boxes: Tensor) -> Tensor:
        """``x``: ``(B, C, T, H, W)``; ``boxes``: ``(K, 5)`` rows ``[batch index, x1, y1, x2, y2]``
        in input pixels. Returns ``(K, C)``."""
        x = self.roi(x.mean(dim=2), boxes.to(x.dtype))
        return self.spool(x).flatten(1)

    def classify(self, x: Tensor) -> Tensor:
        return self.act(self.projection(self.dropout(x)))

    def forward(self, x: Tensor, boxes: Tensor) -> Tensor:
        return self.classify(self.pool(x, boxes))


def pad_boxes(features: Tensor, batch_index: Tensor, batch_size: int, slots: int) -> tuple[Tensor, Tensor, Tensor]:
    """Scatter ``(K, C)`` box features into ``(B, slots, C)`` zero-padded slots.

    Each clip's boxes fill slots ``0..k_b-1`` in input order. Returns the slots, the ``(B, slots)``
    bool mask of real boxes, and the ``(K,)`` slot index of every box in clip-sorted order
    (what :func:`unpad_boxes` reads back).
    """
    counts = torch.bincount(batch_index, minlength=batch_size)
    if counts.numel() > batch_size:
        raise ValueError(f"box batch indices must be < the batch size {batch_size}")
    if counts.numel() and int(counts.max()) > slots:
        raise ValueError(f"a clip has {int(counts.max())} boxes but the box block holds {slots} slots "
                         "(max_boxes); raise max_boxes or drop low-scoring boxes")
    order = torch.sort(batch_index, stable=True).indices
    sorted_index = batch_index[order]
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(order.numel(), device=features.device) - starts[sorted_index]
    padded = features.new_zeros(batch_size, slots, features.shape[1])
    padded[sorted_index, position] = features[order]
    valid = torch.zeros(batch_size, slots, dtype=torch.bool, device=features.device)
    valid[sorted_index, position] = True
    return padded, valid, torch.stack([sorted_index, position])


def unpad_boxes(padded: Tensor, where: Tensor) -> Tensor:
    """Box features back from their slots, clip by clip (the reference's output order)."""
    return padded[where[0], where[1]]
