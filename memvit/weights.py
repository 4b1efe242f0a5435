# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The authors' published checkpoints by name: the table, the download into the torch hub cache,
and the check that what arrived is the published file.

::

    model = memvit_16_16x4(weights="ava")                     # the AVA model of the authors' table
    python -m memvit.eval --cfg configs/ava_16.yaml --checkpoint MeMViT_16L_16x4_K400pt
    python -m memvit.weights [--download NAME ...]            # the table and what is in the cache

A name (the authors' file name, with or without ``.pyth``) resolves to
``<torch.hub.get_dir()>/checkpoints/<file>``; the first use downloads it from the URL the authors
publish (or a mirror: ``MEMVIT_WEIGHTS_URL_BASE``), resumably (HTTP Range into ``<file>.partial``,
kept across attempts), checks it (size and SHA-256 where the table records them, then a strict
weights-only load into the model the table names) and renames it into place; a file that fails
the check is removed. Later uses read the cache and need no network. An existing path always wins
over a name. The weights are the authors', under their licence (CC-BY-NC 4.0); memvit fetches them
from the authors' server and does not redistribute them.

The sizes and SHA-256 digests are empty until someone downloads a verified copy: the download then
prints them, to be added to the table below (none could be downloaded on this project's machines).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .checkpoint import CheckpointError, load_model_state
from .cli import progress_interval, user_errors_exit

AUTHORS_URL = "https://dl.fbaipublicfiles.com/memvit/models/"  # the reference's README, "Model checkpoints"
MIRROR_ENV = "MEMVIT_WEIGHTS_URL_BASE"  # a mirror laid out as AUTHORS_URL (AVA/..., Kinetics/...)
LICENCE = "CC-BY-NC 4.0"
RETRIES = 5  # consecutive attempts that bring no new byte before a download gives up
RETRY_DELAY = 1.0  # seconds, times the number of consecutive failures
TIMEOUT = 30.0  # seconds without an answer or a byte
CHUNK = 1 << 20


@dataclass(frozen=True)
class PublishedWeights:
    """One checkpoint of the authors' table and the model it fits."""

    name: str  # the authors' file name without .pyth: the name configs and --checkpoint accept
    path: str  # below AUTHORS_URL
    preset: str  # memvit.models.PRESETS key: the builder
    keys: tuple[str, ...]  # the builder's weights= names
    head: str  # "ava" or "kinetics"
    num_classes: int
    config: str  # the shipped config of this model (configs/), or an absolute path
    size: int | None = None  # bytes, once a verified copy has been seen
    sha256: str | None = None  # hex, once a verified copy has been seen
    published_map: float | None = None  # AVA v2.2 frame-mAP in the authors' table (AVA models)
    published_params_m: float | None = None  # the table's params (M) and GFLOPs: of the Kinetics classifier,
    published_gflops: float | None = None  # 400 classes, memory filled (REFERENCE.md; memvit.reproduce)
    default: bool = False  # pretrained=True of its builder and head
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)  # create_memvit overrides (none for the authors')

    @property
    def file(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def url(self) -> str:
        """The authors' URL, or the mirror's where ``MEMVIT_WEIGHTS_URL_BASE`` is set."""
        base = os.environ.get(MIRROR_ENV) or AUTHORS_URL
        return base.rstrip("/") + "/" + self.path

    def build(self) -> Any:
        """The model these weights fit (random weights)."""
        from .models import PRESETS, create_memvit

        return create_memvit(**{**PRESETS[self.preset], "head": self.head, "num_classes": self.num_classes,
                                **self.model_kwargs})


# The authors' table (facebookresearch/MeMViT README): AVA v2.2 models and their Kinetics initialisations.
PUBLISHED: dict[str, PublishedWeights] = {w.name: w for w in [
    PublishedWeights("MeMViT_16L_16x4_K400pt", "AVA/MeMViT_16L_16x4_K400pt.pyth", "memvit_16_16x4",
                     ("ava", "ava_k400"), "ava", 80, "ava_16.yaml", published_map=29.3, published_params_m=35.4,
                     published_gflops=58.7, default=True),
    PublishedWeights("MeMViT_24L_32x3_K600pt", "AVA/MeMViT_24L_32x3_K600pt.pyth", "memvit_24_32x3",
                     ("ava_k600",), "ava", 80, "ava_24.yaml", published_map=32.3, published_params_m=52.6,
                     published_gflops=211.7),
    PublishedWeights("MeMViT_24L_32x3_K700pt", "AVA/MeMViT_24L_32x3_K700pt.pyth", "memvit_24_32x3",
                     ("ava_k700",), "ava", 80, "ava_24_k700.yaml", published_map=34.4, published_params_m=52.6,
                     published_gflops=211.7, default=True),
    PublishedWeights("MeMViT_16L_16x4_K400", "Kinetics/MeMViT_16L_16x4_K400.pyth", "memvit_16_16x4", ("k400",),
                     "kinetics", 400, "k400_16.yaml", default=True),
    PublishedWeights("MeMViT_24L_32x3_K600", "Kinetics/MeMViT_24L_32x3_K600.pyth", "memvit_24_32x3", ("k600",),
                     "kinetics", 600, "k600_24.yaml"),
    PublishedWeights("MeMViT_24L_32x3_K700", "Kinetics/MeMViT_24L_32x3_K700.pyth", "memvit_24_32x3", ("k700",),
                     "kinetics", 700, "k700_24.yaml", default=True),
]}


class WeightsError(CheckpointError):
    """A published checkpoint cannot be had: unreachable, interrupted, or not the published file."""


def cache_dir() -> str:
    """``<torch.hub.get_dir()>/checkpoints`` (``$TORCH_HOME/hub/checkpoints``; torch.hub's own cache)."""
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def cache_path(entry: PublishedWeights) -> str:
    return os.path.join(cache_dir(), entry.file)


def find(name: str) -> PublishedWeights | None:
    """The entry of a published name (the authors' file name, ``.pyth`` optional, any case), or None."""
    stem = name[:-len(".pyth")] if name.lower().endswith(".pyth") else name
    return next((w for w in PUBLISHED.values() if w.name.lower() == stem.lower()), None)


def lookup(preset: str, weights: str, head: str | None = None, num_classes: int | None = None) -> PublishedWeights:
    """The entry for a builder's ``weights=`` (one of its keys or a published name; ``"default"``: the
    entry marked default for ``head``, default ``"ava"``, and ``num_classes``)."""
    own = [w for w in PUBLISHED.values() if w.preset == preset]
    if weights == "default":
        fits = [w for w in own if w.head == (head or "ava") and num_classes in (None, w.num_classes)]
        found = next((w for w in fits if w.default), fits[0] if fits else None)
    else:
        found = next((w for w in own if weights in w.keys), None) or find(weights)
    if found is None or found.preset != preset:
        choices = ", ".join(f"{k!r}" for w in own for k in w.keys)
        raise WeightsError(f"{preset} has no published weights {weights!r}", f"choose one of {choices}")
    return found


# ---------------------------------------------------------------------------------- resolving names
def resolve_checkpoint(value: str | os.PathLike | None, *, progress: bool = True) -> str | None:
    """A checkpoint setting (``--checkpoint``, ``TRAIN/TEST.CHECKPOINT_FILE_PATH``) as a file path: an
    existing path as it is, a published name as its file in the cache (downloaded on first use)."""
    if not value or os.path.exists(value):
        return os.fspath(value) if value else value
    value = os.fspath(value)
    entry = find(value)
    if entry is not None and os.path.basename(value) == value:
        return fetch(entry, progress=progress)
    entry = find(os.path.basename(value))
    if entry is not None:  # a path to the published file that is not there
        raise CheckpointError(f"{value}: no such checkpoint file",
                              f"the name {entry.name} alone (no folder) downloads the authors' file into the "
                              f"cache ({cache_dir()}) on first use")
    return value  # a missing path: the loader says so


def load_weights(model: Any, entry: PublishedWeights, *, progress: bool = True) -> Any:
    """Load a published checkpoint into ``model``, strictly (downloaded into the cache on first use)."""
    path = fetch(entry, progress=progress)
    load_model_state(model, path)
    return model


# ---------------------------------------------------------------------------------- the download
def fetch(entry: PublishedWeights | str, *, progress: bool = True) -> str:
    """The path of a published checkpoint in the cache, downloaded and checked on first use.

    Offline without a cached copy, an interrupted transfer (the part is kept and the next call
    resumes it) and a download that is not the published file (removed) are :class:`WeightsError`.
    """
    if isinstance(entry, str):
        found = find(entry)
        if found is None:
            raise WeightsError(f"{entry!r} is not a published checkpoint", f"published: {', '.join(PUBLISHED)}")
        entry = found
    final = cache_path(entry)
    if os.path.isfile(final):
        _check_cached(entry, final)
        return final
    folder = os.path.dirname(final)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"cannot create the weights cache {folder} ({error.strerror})",
                           "set TORCH_HOME to a writable folder (the cache is $TORCH_HOME/hub/checkpoints)") from None
    with _cache_lock(folder):
        if os.path.isfile(final):  # another process downloaded it meanwhile
            return final
        url = entry.url()
        notice = (f"Downloading {entry.file}\n  from {url}\n  into {final}\n  These weights are the MeMViT "
                  f"authors' (Wu et al., CVPR 2022), under their licence, {LICENCE} (non-commercial use): fetched "
                  f"from {'their server' if url.startswith(AUTHORS_URL) else 'the mirror ' + MIRROR_ENV + ' names'}, "
                  "not redistributed by memvit.")
        partial = final + ".partial"
        try:
            _download(url, partial, entry.size, progress, desc=entry.file, announce=lambda: _say(notice))
        except _Unreachable as error:
            kept = f" (a part is kept at {partial} to resume)" if os.path.exists(partial) else ""
            raise WeightsError(
                f"cannot download {entry.file}: {url} is unreachable ({error.reason}); the cache has no copy at "
                f"{final}{kept}",
                f"download {url} on a machine with internet and put the file at {final} (TORCH_HOME moves the cache; "
                f"{MIRROR_ENV} names a mirror), or give a local path instead of the name") from None
        except _Interrupted as error:
            raise WeightsError(
                f"the download of {url} broke off at {error.have:,} of {_bytes(error.total)} ({error.reason}); the "
                f"part is kept at {partial}", "run again to resume from there (delete the .partial file to start "
                "over)") from None
        digest = _verify_download(entry, url, partial)
        os.replace(partial, final)
    if entry.sha256 is None:
        _say(f"{entry.file}: verified (strict weights-only load), {os.path.getsize(final):,} bytes, SHA-256 "
             f"{digest}.\n  memvit's table (memvit/weights.py) records no digest for it yet: add "
             f"size={os.path.getsize(final)}, sha256=\"{digest}\" to the entry {entry.name} so later downloads are "
             "checked against it.")
    return final


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _bytes(total: int | None) -> str:
    return "an unknown number of bytes" if total is None else f"{total:,} bytes"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_cached(entry: PublishedWeights, path: str) -> None:
    size = os.path.getsize(path)
    if entry.size is not None and size != entry.size:
        raise WeightsError(f"{path} has {size:,} bytes, the published {entry.file} {entry.size:,}: an incomplete "
                           "or another file", "delete it: the next use downloads the published file again")


def _verify_download(entry: PublishedWeights, url: str, partial: str) -> str:
    """Size, SHA-256 (where the table has them) and a strict weights-only load into the entry's model;
    a download that fails any of them is removed."""
    try:
        size = os.path.getsize(partial)
        if entry.size is not None and size != entry.size:
            raise WeightsError(f"{size:,} bytes arrived, the published file has {entry.size:,}")
        digest = sha256_of(partial)
        if entry.sha256 is not None and digest != entry.sha256.lower():
            raise WeightsError(f"its SHA-256 is {digest}, the published file's {entry.sha256}")
        load_model_state(entry.build(), partial)
    except CheckpointError as error:
        with contextlib.suppress(OSError):
            os.remove(partial)
        hint = ("try again later; if it happens again, the file at that address has changed (or the mirror "
                f"{MIRROR_ENV} serves another file)")
        if "does not match the model" in str(error):
            hint = (f"a whole checkpoint of another layout than memvit expects (never checked against the real file: "
                    f"please report it); to fine-tune from it anyway, download {url} by hand and give its path to "
                    "TRAIN.CHECKPOINT_FILE_PATH, which loads what fits")
        raise WeightsError(f"the download of {url} is not the published {entry.file}, so it was removed: {error}",
                           hint) from None
    return digest


@contextlib.contextmanager
def _cache_lock(folder: str) -> Iterator[None]:
    """One download at a time into the cache (other processes, DDP ranks, wait and then find the file)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another process downloading into {folder}")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


class _Unreachable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Interrupted(Exception):
    def __init__(self, have: int, total: int | None, reason: str) -> None:
        super().__init__(reason)
        self.have, self.total, self.reason = have, total, reason


class _Retry(Exception):
    """One attempt failed in a way another attempt may not."""


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-\d+/(\d+|\*)")


def _body_span(response: Any, have: int) -> tuple[int, int | None]:
    """(the offset the body starts at, the file's total size or None) of a 200 or 206 answer."""
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not match:
            raise _Retry("a partial answer without a Content-Range")
        return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))
    length = response.headers.get("Content-Length", "")
    return 0, int(length) if length.isdigit() else None


def _download(url: str, partial: str, expected: int | None, progress: bool, desc: str,
              announce: Callable[[], None] = lambda: None) -> None:
    """Bring ``url`` whole into ``partial``, resuming from what it holds (HTTP Range); retries while
    attempts bring new bytes. Raises :class:`_Unreachable` when the server cannot be reached at all,
    :class:`_Interrupted` (the part kept) when attempts stop bringing bytes, :class:`WeightsError`
    for an answer that is not the published file (the part removed)."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress, dynamic_ncols=True,
               mininterval=progress_interval())
    failures, answered, total = 0, False, expected
    try:
        while True:
            have = os.path.getsize(partial) if os.path.exists(partial) else 0
            if expected is not None and have >= expected:
                if have == expected:
                    return
                os.remove(partial)  # longer than the published file: not a part of it
                have = 0
            try:
                total, done = _attempt(url, partial, have, expected, bar, None if answered else announce)
                answered = True
                if done:
                    return
                reason = "the answer ended early"
            except _Retry as error:
                answered, reason = True, str(error)
            except urllib.error.HTTPError as error:
                answered = True
                if error.code == 416 and have:  # the part already holds everything the server has
                    match = re.search(r"/(\d+)", error.headers.get("Content-Range", "") if error.headers else "")
                    if match and int(match.group(1)) == have:
                        return
                    os.remove(partial)
                    reason = "the server refused to resume; starting over"
                elif error.code >= 500 or error.code in (408, 429):
                    reason = f"HTTP {error.code} {error.reason}"
                else:
                    raise WeightsError(f"{url}: HTTP {error.code} {error.reason}",
                                       f"check the address (a mirror set with {MIRROR_ENV} must be laid out as "
                                       f"{AUTHORS_URL})") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                reason = str(getattr(error, "reason", None) or error) or type(error).__name__
                if not answered:
                    raise _Unreachable(reason) from None
            now = os.path.getsize(partial) if os.path.exists(partial) else 0
            failures = 0 if now > have else failures + 1
            if failures > RETRIES:
                raise _Interrupted(now, total, reason)
            time.sleep(RETRY_DELAY * failures)
    finally:
        bar.close()


def _attempt(url: str, partial: str, have: int, expected: int | None, bar: Any,
             announce: Callable[[], None] | None) -> tuple[int | None, bool]:
    """One request from byte ``have``: appends what arrives to ``partial``; (total, whether whole).
    ``announce`` is called once the server has answered."""
    from . import __version__

    headers = {"User-Agent": f"memvit/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT) as response:
        if announce is not None:
            announce()
        start, total = _body_span(response, have)
        if start != have:
            if start != 0:
                raise _Retry(f"the server sent bytes from {start}, not {have}")
            with contextlib.suppress(FileNotFoundError):  # it ignored the Range: the whole file follows
                os.remove(partial)
            have = 0
        if expected is not None and total is not None and total != expected:
            with contextlib.suppress(FileNotFoundError):
                os.remove(partial)
            raise WeightsError(f"{url} offers {total:,} bytes, the published file has {expected:,}",
                               f"not the published file: if a mirror ({MIRROR_ENV}) serves it, check the mirror")
        bar.reset(total=total)
        bar.update(have)
        try:
            with open(partial, "ab") as out:  # streamed: renamed into place once whole and checked
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as error:  # dropped, reset, timed out
                        raise _Retry(str(error) or type(error).__name__) from None
                    if not chunk:
                        break
                    out.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
        except OSError as error:  # writing: a full disk, a read-only cache
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise WeightsError(f"cannot write {partial} ({error.strerror or error}); removed",
                               "free space there, or set TORCH_HOME to another folder") from None
    return total, total is None or have >= total


# ---------------------------------------------------------------------------------- the command
@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memvit.weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--download", nargs="+", metavar="NAME", default=[],
                        help="download these published checkpoints into the cache ('all': every one)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    names = list(PUBLISHED) if args.download == ["all"] else args.download
    for name in names:
        fetch(name, progress=not args.no_progress)
    print(f"cache: {cache_dir()} (TORCH_HOME moves it); source: {os.environ.get(MIRROR_ENV) or AUTHORS_URL}")
    print(f"  {'name (configs, --checkpoint)':<28} {'builder':<37} {'model':<16} {'config':<18} in the cache")
    for w in PUBLISHED.values():
        where = cache_path(w)
        state = "yes" if os.path.isfile(where) else ("partly" if os.path.isfile(where + ".partial") else "no")
        model = f"AVA mAP {w.published_map}" if w.published_map is not None else f"{w.head} {w.num_classes}"
        builder = f"{w.preset}(weights={w.keys[0]!r})"
        print(f"  {w.name:<28} {builder:<37} {model:<16} {w.config:<18} {state}")
    return 0


__all__ = ["AUTHORS_URL", "LICENCE", "MIRROR_ENV", "PUBLISHED", "PublishedWeights", "WeightsError", "cache_dir",
           "cache_path", "fetch", "find", "load_weights", "lookup", "resolve_checkpoint", "sha256_of"]

if __name__ == "__main__":
    sys.exit(main())
