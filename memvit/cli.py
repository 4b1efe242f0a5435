# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""What every ``python -m memvit.*`` command shares: one policy for the user's mistakes.

An expected user error (no data, a missing checkpoint, a bad key or value, a GPU asked for where
none is, a file that cannot be read) is a :class:`UserError`: the command prints one message
naming what is wrong and what provides it, and exits with code 2. Anything else is a bug and
keeps its traceback. The error classes of the package's rooms (``ConfigError``,
``CheckpointError``, ``AvaFormatError``, ``VideoError``, ...) derive from :class:`UserError`, so
the rule is written once, here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An input the user can fix. ``hint`` names the command, option or doc that fixes it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = str(self.args[0]) if self.args else ""
        return f"{message}\n  {self.hint}" if self.hint else message


def user_errors_exit(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command's ``main(argv)``: a :class:`UserError` becomes ``error: <message>`` on
    stderr and exit code 2; ``KeyboardInterrupt`` exits 130 quietly."""

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None, *args: Any, **kwargs: Any) -> int:
        try:
            code = main(argv, *args, **kwargs)
        except UserError as error:
            sys.stdout.flush()
            print(f"error: {error}", file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
        return 0 if code is None else int(code)

    return wrapper


def resolve_device(name: str | None) -> Any:
    """``torch.device`` for a ``--device`` value; a CUDA device asked for where none is usable
    is a :class:`UserError`, not a traceback deep inside the first ``.to()``."""
    import torch

    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"--device {name!r} is not a device name ({error})",
                        "use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is usable on this machine",
                            "run on the CPU with --device cpu (or NUM_GPUS 0 for training)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device


__all__ = ["EXIT_USER_ERROR", "UserError", "resolve_device", "user_errors_exit"]
