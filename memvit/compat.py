# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The one compatibility shim this package needs for PyTorchVideo 0.1.5 on current torchvision.

PyTorchVideo 0.1.5 (the last PyPI release) imports ``torchvision.transforms.functional_tensor``,
which torchvision renamed to ``_functional_tensor`` (0.15) and removed (0.17), so
``import pytorchvideo.transforms`` fails. The private module has the ``affine`` PyTorchVideo
calls, with the same signature. ``memvit/__init__.py`` installs, before anything can import
PyTorchVideo, an import hook that answers the old name with the renamed module, only when the
old name does not exist: nothing is imported until something asks for it, so ``import memvit``
stays cheap for tools that never touch torchvision.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

LEGACY = "torchvision.transforms.functional_tensor"
CURRENT = "torchvision.transforms._functional_tensor"


class _RenamedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``LEGACY`` after every other finder failed to, and loads it as ``CURRENT``."""

    def find_spec(self, name, path, target=None):
        if name != LEGACY:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        return importlib.import_module(CURRENT)

    def exec_module(self, module) -> None:
        pass


def install_torchvision_shim() -> bool:
    """Install the import hook (last in ``sys.meta_path``, so a torchvision that still has the
    old module serves it itself); returns True when it was installed, False if it already was."""
    if any(isinstance(finder, _RenamedModule) for finder in sys.meta_path):
        return False
    sys.meta_path.append(_RenamedModule())
    return True


install_torchvision_shim()
