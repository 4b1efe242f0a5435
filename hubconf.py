# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""torch.hub entry points: the released MeMViT architectures, with weights from a local file.

::

    model = torch.hub.load("path/to/memvit", "memvit_16_16x4", source="local", head="ava",
                           checkpoint="MeMViT_16L_16x4_K400pt.pyth")

Nothing is downloaded: without ``checkpoint`` the weights are random. ``checkpoint`` is read
with ``weights_only=True`` and loaded strictly (:func:`memvit.checkpoint.load_model_state`);
other keyword arguments override :func:`memvit.models.create_memvit` arguments.
"""

from __future__ import annotations

import os
from typing import Any

dependencies = ["torch", "torchvision", "pytorchvideo", "fvcore"]


def _build(preset: str, head: str, num_classes: int | None, checkpoint: str | None, kwargs: dict[str, Any]):
    from memvit.checkpoint import load_model_state
    from memvit.models import memvit_16_16x4 as b16
    from memvit.models import memvit_24_32x3 as b24

    builder = {"memvit_16_16x4": b16, "memvit_24_32x3": b24}[preset]
    model = builder(head=head, num_classes=num_classes, **kwargs)
    if checkpoint:
        load_model_state(model, checkpoint)
    return model.eval()


def memvit_16_16x4(head: str = "ava", num_classes: int | None = None, checkpoint: str | None = None, **kwargs: Any):
    """MeMViT-16, 16 frames x stride 4 (AVA: 80 classes; ``head="kinetics"``: 400); weights from ``checkpoint``."""
    return _build("memvit_16_16x4", head, num_classes, checkpoint, kwargs)


def memvit_24_32x3(head: str = "ava", num_classes: int | None = None, checkpoint: str | None = None, **kwargs: Any):
    """MeMViT-24, 32 frames x stride 3 (AVA: 80 classes; Kinetics-600/700: ``num_classes=600/700``)."""
    return _build("memvit_24_32x3", head, num_classes, checkpoint, kwargs)


def streaming_detector(preset: str = "memvit_16_16x4", checkpoint: str | None = None, **kwargs: Any):
    """A :class:`memvit.StreamingDetector` around an AVA model, with the test-time clip of the
    preset's shipped AVA config (``configs/ava_16.yaml``: 16 x 4 frames; ``ava_24.yaml``: 32 x 3)."""
    from memvit.config import load_config
    from memvit.streaming.detector import ClipSpec, StreamingDetector

    configs = {"memvit_16_16x4": "ava_16.yaml", "memvit_24_32x3": "ava_24.yaml"}
    if preset not in configs:
        raise ValueError(f"preset must be one of {sorted(configs)}; got {preset!r}")
    cfg = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", configs[preset]))
    return StreamingDetector(_build(preset, "ava", None, checkpoint, kwargs), ClipSpec.from_config(cfg))
