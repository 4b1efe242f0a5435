# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""memvit: MeMViT (Memory-Augmented Multiscale Vision Transformer) in PyTorchVideo's style.

See docs/model.md. ``memvit.compat`` is imported first: it makes PyTorchVideo 0.1.5 importable
on current torchvision.
"""

from . import compat  # noqa: F401  (must run before anything imports pytorchvideo)
from .models import MemoryState, MeMViT, create_memvit, memvit_16_16x4, memvit_24_32x3

__all__ = ["MeMViT", "MemoryState", "create_memvit", "memvit_16_16x4", "memvit_24_32x3"]
__version__ = "0.1.0"
