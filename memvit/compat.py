# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The one compatibility shim this package needs for PyTorchVideo 0.1.5 on current torchvision.

PyTorchVideo 0.1.5 (the last PyPI release) imports ``torchvision.transforms.functional_tensor``,
which torchvision renamed to ``_functional_tensor`` (0.15) and removed (0.17), so
``import pytorchvideo.transforms`` fails. The private module has the ``affine`` PyTorchVideo
calls, with the same signature. We alias it, only when the public name is missing, before
anything imports PyTorchVideo (``memvit/__init__.py`` imports this module first).
"""

from __future__ import annotations

import importlib
import sys

LEGACY = "torchvision.transforms.functional_tensor"
CURRENT = "torchvision.transforms._functional_tensor"


def install_torchvision_shim() -> bool:
    """Alias the renamed torchvision module; returns True when the alias was installed."""
    if LEGACY in sys.modules:
        return False
    try:
        importlib.import_module(LEGACY)
        return False  # an older torchvision that still has it
    except ModuleNotFoundError:
        pass
    sys.modules[LEGACY] = importlib.import_module(CURRENT)
    return True


install_torchvision_shim()
