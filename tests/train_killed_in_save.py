# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``python tests/train_killed_in_save.py N ARGS...``: ``python -m memvit.train ARGS...`` that
SIGKILLs itself inside its N-th checkpoint write, after the temporary file is written and synced
and before the rename (the moment :func:`memvit.checkpoint.atomic_save` exists for). The kill
tests' fault, kept here so that memvit/ holds no test-only code."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def install(n: int) -> None:
    """Count :func:`memvit.checkpoint.atomic_save` calls; in the ``n``-th, die at its rename."""
    from memvit import checkpoint

    real_save, real_replace = checkpoint.atomic_save, os.replace
    saves = 0
    armed = False

    def counting_save(obj: Any, path: str | os.PathLike) -> None:
        nonlocal saves, armed
        saves += 1
        armed = saves == n
        try:
            real_save(obj, path)
        finally:
            armed = False

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if armed:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, **kwargs)

    checkpoint.atomic_save = counting_save  # save_checkpoint looks it up at call time
    os.replace = replace


if __name__ == "__main__":
    install(int(sys.argv[1]))
    from memvit.train import main

    sys.exit(main(sys.argv[2:]))
