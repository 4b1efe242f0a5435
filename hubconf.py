# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""torch.hub entry points: the released MeMViT architectures, with the authors' weights by name
or weights from a local file.

::

    model = torch.hub.load("path/to/memvit", "memvit_16_16x4", source="local", pretrained=True)   # AVA, 29.3 mAP
    model = torch.hub.load("path/to/memvit", "memvit_24_32x3", source="local", weights="ava_k600")
    model = torch.hub.load("path/to/memvit", "memvit_16_16x4", source="local", checkpoint="my_model.pyth")

``pretrained=True`` gives the builder's AVA weights (MeMViT-24: the Kinetics-700 initialised
model; ``head="kinetics"``: the Kinetics model), ``weights=`` names one
(:data:`memvit.weights.PUBLISHED`); they are downloaded from the authors' URLs into the torch hub
cache on first use (CC-BY-NC 4.0, the authors' licence) and loaded strictly. ``checkpoint`` is a
local file (or a published name), read with ``weights_only=True`` and loaded strictly
(:func:`memvit.checkpoint.load_model_state`). Without any of them the weights are random. Other
keyword arguments override :func:`memvit.models.create_memvit` arguments.
"""

from __future__ import annotations

import os
from typing import Any

dependencies = ["torch", "torchvision", "pytorchvideo", "fvcore"]


def _build(preset: str, head: str | None, num_classes: int | None, checkpoint: str | None, pretrained: bool,
           weights: str | None, kwargs: dict[str, Any]):
    from memvit.checkpoint import load_model_state
    from memvit.models import memvit_16_16x4 as b16
    from memvit.models import memvit_24_32x3 as b24
    from memvit.weights import resolve_checkpoint

    if checkpoint and (pretrained or weights):
        raise ValueError("give either checkpoint= (a file) or pretrained=/weights= (the authors' weights), not both")
    builder = {"memvit_16_16x4": b16, "memvit_24_32x3": b24}[preset]
    weights = weights or ("default" if pretrained else None)
    model = builder(head=head, num_classes=num_classes, weights=weights, **kwargs)
    if checkpoint:
        load_model_state(model, resolve_checkpoint(checkpoint))
    return model.eval()


def memvit_16_16x4(head: str | None = None, num_classes: int | None = None, checkpoint: str | None = None,
                   pretrained: bool = False, weights: str | None = None, **kwargs: Any):
    """MeMViT-16, 16 frames x stride 4 (AVA: 80 classes; ``head="kinetics"``: 400). ``pretrained=True``
    or ``weights="ava"`` / ``"k400"``: the authors' weights; ``checkpoint``: a local file."""
    return _build("memvit_16_16x4", head, num_classes, checkpoint, pretrained, weights, kwargs)


def memvit_24_32x3(head: str | None = None, num_classes: int | None = None, checkpoint: str | None = None,
                   pretrained: bool = False, weights: str | None = None, **kwargs: Any):
    """MeMViT-24, 32 frames x stride 3 (AVA: 80 classes; Kinetics-600/700: ``num_classes=600/700``).
    ``weights``: ``"ava_k600"``, ``"ava_k700"`` (the ``pretrained=True`` one), ``"k600"``, ``"k700"``."""
    return _build("memvit_24_32x3", head, num_classes, checkpoint, pretrained, weights, kwargs)


def streaming_detector(preset: str = "memvit_16_16x4", checkpoint: str | None = None, pretrained: bool = False,
                       weights: str | None = None, **kwargs: Any):
    """A :class:`memvit.StreamingDetector` around an AVA model, with the test-time clip of the
    preset's shipped AVA config (``configs/ava_16.yaml``: 16 x 4 frames; ``ava_24.yaml``: 32 x 3)."""
    from memvit.config import load_config
    from memvit.streaming.detector import ClipSpec, StreamingDetector

    configs = {"memvit_16_16x4": "ava_16.yaml", "memvit_24_32x3": "ava_24.yaml"}
    if preset not in configs:
        raise ValueError(f"preset must be one of {sorted(configs)}; got {preset!r}")
    cfg = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", configs[preset]))
    model = _build(preset, "ava", None, checkpoint, pretrained, weights, kwargs)
    return StreamingDetector(model, ClipSpec.from_config(cfg))
