# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""A local stand-in for the authors' download server: an HTTP server on 127.0.0.1 serving the
checkpoints the tests write (GET with Range, as dl.fbaipublicfiles.com answers), which can be told
to cut answers short; and entries of the published table for tests (fixtures ``server`` and
``hub_cache``: tests/conftest.py)."""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from memvit import weights
from memvit.checkpoint import save_checkpoint


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        owner: FileServer = self.server.owner  # type: ignore[attr-defined]
        path, wanted = self.path.lstrip("/"), self.headers.get("Range")
        owner.requests.append((path, wanted))
        data = owner.files.get(path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0
        if start >= len(data) and wanted:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))  # the whole rest, even when the answer is cut
        self.end_headers()
        cuts = owner.cuts.get(path)
        limit = cuts.pop(0) if cuts else None
        try:
            self.wfile.write(body if limit is None else body[:limit])
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


class FileServer:
    """``files``: URL path -> bytes. ``cuts``: URL path -> byte limits of the next answers (each then
    drops the connection). ``requests``: (path, Range header) of every GET."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cuts: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_base() -> str:
    """A local address nothing listens on: the connection is refused (no network)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def cache_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def register(monkeypatch, name: str, **fields) -> weights.PublishedWeights:
    """A published entry for the tests (a tiny model), in the table for the test's duration."""
    entry = weights.PublishedWeights(name=name, path=f"AVA/{name}.pyth", **fields)
    monkeypatch.setitem(weights.PUBLISHED, name, entry)
    return entry


def official_bytes(model, path: Path, epoch: int = 29) -> bytes:
    """A checkpoint in the authors' layout (PySlowFast: epoch, model_state, optimizer_state, cfg text)."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(path, model, epoch=epoch, optimizer=optimizer, cfg="TRAIN:\n  ENABLE: True\n")
    return path.read_bytes()


def with_digest(monkeypatch, entry: weights.PublishedWeights, data: bytes, **fields) -> weights.PublishedWeights:
    """The entry with a size and SHA-256 recorded (as once a verified copy has been seen)."""
    import hashlib

    recorded = replace(entry, size=len(data), sha256=hashlib.sha256(data).hexdigest(), **fields)
    monkeypatch.setitem(weights.PUBLISHED, entry.name, recorded)
    return recorded


def serve(server: FileServer, entry: weights.PublishedWeights, data: bytes, monkeypatch) -> None:
    server.files[entry.path] = data
    monkeypatch.setenv(weights.MIRROR_ENV, server.base)


__all__ = ["FileServer", "cache_listing", "official_bytes", "refused_base", "register", "serve", "with_digest"]
