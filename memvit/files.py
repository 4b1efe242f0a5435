# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The one way memvit writes a result file: atomically.

A reader (a user, a resumed run, a plot viewer) sees either the old file or the whole new one,
never half of it, whatever kills the writer. Every summary, marker, report, CSV and plot goes
through :func:`atomic_path` (or the text/JSON shorthands built on it); checkpoints too
(:func:`memvit.checkpoint.atomic_save`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync_folder(folder: str) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True) -> Iterator[str]:
    """Yield a temporary path beside ``path`` (same folder, same suffix, so writers that pick the
    format from the name, such as matplotlib, still do); on a clean exit rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is untouched. ``durable`` fsyncs
    the file and its folder, so a power cut cannot leave an empty file under the final name.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    suffix = "".join(Path(name).suffixes[-1:])
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        if durable and os.path.exists(tmp):
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if durable:
        _fsync_folder(folder)


def write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", newline: str | None = None) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding, newline=newline) as f:
        f.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, **kwargs: Any) -> None:
    """``json.dump`` to ``path`` atomically (UTF-8, a final newline)."""
    write_text(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


__all__ = ["atomic_path", "write_bytes", "write_json", "write_text"]
