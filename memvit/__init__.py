# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""memvit: MeMViT (Memory-Augmented Multiscale Vision Transformer) in PyTorchVideo's style.

See docs/model.md. ``memvit.compat`` runs first: it makes PyTorchVideo 0.1.5 importable on
current torchvision. The model API below is imported on first use, so command-line tools that
need no model (data preparation) start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import compat  # noqa: F401  (must run before anything imports pytorchvideo)

__all__ = ["FuseReport", "MeMViT", "MemoryState", "StreamingDetector", "create_memvit", "fuse_attention",
           "memvit_16_16x4", "memvit_24_32x3"]
_HOMES = {"StreamingDetector": ".streaming"}  # everything else comes from .models
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(_HOMES.get(name, ".models"), __name__), name)
    raise AttributeError(f"module 'memvit' has no attribute {name!r}")
