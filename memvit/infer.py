# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``python -m memvit.infer``: the command; the work is in :mod:`memvit.streaming.runner`."""

from __future__ import annotations

import sys

from .streaming.runner import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
