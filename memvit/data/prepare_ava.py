# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Turn AVA's raw movies into the frame folders and frame lists that PySlowFast-style loaders read.

Usage::

    python -m memvit.data.prepare_ava --videos RAW --out AVA [--annotations DIR] [--start 900]
        [--duration 901] [--fps 30] [--quality 95] [--workers N] [--video-ids ID ...]

Output (``AVA`` above)::

    frames/<id>/<id>_000001.jpg ...      frame i+1 of the file name is output frame i (0-based)
    frame_lists/train.csv, val.csv       (and test.csv for videos in neither annotation file)
    frames/.complete/<id>.json           done-marker: what was extracted, from which source file
    frames/.partial/<id>/                work folder, renamed to frames/<id> once complete

**Which source frame lands in output frame i**: the rule of :mod:`memvit.data.timeline`, applied by
:mod:`memvit.data.extract_frames` (one video file -> JPEG frames), which this module runs per video.

**Markers live outside the frame folders** (``frames/.complete``): PyTorchVideo's AVA loader lists a frame folder
and natural-sorts it, so any extra file in ``frames/<id>/`` would shift every frame by one.

**Resuming.** A video counts as complete when its marker matches the run's start, duration, fps and quality and
the source file's size and mtime, and its first and last frame files exist; it is then skipped. Anything else is
extracted again into ``frames/.partial/<id>`` and swapped in at the end, so a killed run never leaves a folder that
looks complete. A lock file keeps two runs off the same output folder, so stale work folders can be removed.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import csv
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..cli import UserError, user_errors_exit
from ..files import write_text
from .ava_files import (
    ANNOTATIONS_DIR,
    EXTRACTED_SECONDS,
    FIRST_SECOND,
    FPS,
    FRAME_LISTS_DIR,
    FRAMES_DIR,
    frame_list_file,
    frame_name,
    groundtruth_file,
    write_frame_list,
)
from .extract_frames import ExtractionError, ExtractionParams, ProgressFn, extract_frames, select_frames
from .video_source import VIDEO_EXTENSIONS, find_videos  # AVA's own (.mkv, .mp4, .webm) first: they win a clash

logger = logging.getLogger(__name__)

ANNOTATION_FILES = {split: groundtruth_file(split) for split in ("train", "val")}
PARTIAL_DIR = ".partial"
COMPLETE_DIR = ".complete"
LOCK_FILE = ".prepare_ava.lock"
MARKER_VERSION = 1

class ArgumentError(UserError, ValueError):
    """A bad argument of :func:`prepare_ava` (a folder that is not there, no videos, ...): said, not a traceback."""


class BusyError(UserError, RuntimeError):
    """Another run holds the output folder."""


@dataclass
class VideoResult:
    """Outcome of one video; returned from worker processes, so plain data only."""

    video_id: str
    status: str  # "done", "skipped" or "failed"
    frames: int = 0
    expected: int = 0
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Summary:
    """What a run did; ``format()`` is the text the CLI prints."""

    results: list[VideoResult]
    lists: dict[str, int]  # split -> videos in its frame list
    seconds: float

    def by_status(self, status: str) -> list[VideoResult]:
        return [r for r in self.results if r.status == status]

    @property
    def failed(self) -> dict[str, str]:
        return {r.video_id: r.reason for r in self.by_status("failed")}

    def format(self) -> str:
        done, skipped, failed = (self.by_status(s) for s in ("done", "skipped", "failed"))
        frames = sum(r.frames for r in done)
        busy = sum(r.seconds for r in done)
        rate = f", {frames / busy:.0f} frames/s per worker" if busy > 0 else ""
        lines = [
            f"done: {len(done)} videos ({frames} frames{rate})",
            f"skipped (already complete): {len(skipped)}",
            f"failed: {len(failed)}",
        ]
        lines += [f"  {_shown_id(r.video_id)}: {r.reason}" for r in failed]
        short = [r for r in done if r.frames < r.expected]
        lines += [f"short: {r.video_id} has {r.frames} of {r.expected} frames" for r in short]
        lists = ", ".join(f"{split}.csv {n} videos" for split, n in self.lists.items())
        lines.append(f"frame lists: {lists} ({self.seconds:.1f} s)")
        return "\n".join(lines)


def _shown_id(video_id: str) -> str:
    """A video id as printed: quoted when it holds whitespace or control characters (one line per video)."""
    return video_id if video_id.isprintable() and not any(c.isspace() for c in video_id) else repr(video_id)


# ----------------------------------------------------------------------------------------------- one video


@dataclass(frozen=True)
class _Job:
    video_id: str
    source: Path
    out_dir: Path
    params: ExtractionParams
    threads: int


def _paths(out_dir: Path, video_id: str) -> tuple[Path, Path, Path]:
    frames = out_dir / FRAMES_DIR
    return frames / video_id, frames / PARTIAL_DIR / video_id, frames / COMPLETE_DIR / f"{video_id}.json"


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("version") == MARKER_VERSION else None


def _frames_present(folder: Path, video_id: str, frames: Any) -> bool:
    """Cheap check that a marked folder is still there: its first and last frame (27030 files per video)."""
    if not isinstance(frames, int) or frames <= 0:
        return False
    return (folder / frame_name(video_id, 0)).is_file() and (folder / frame_name(video_id, frames - 1)).is_file()


def _source_stat(source: Path) -> dict[str, Any]:
    st = source.stat()
    return {"source": source.name, "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def _is_complete(job: _Job) -> int | None:
    """Frames of an already complete extraction with the same parameters and source, else None."""
    final, _, marker_path = _paths(job.out_dir, job.video_id)
    marker = _read_marker(marker_path)
    if marker is None or marker.get("params") != job.params.as_marker():
        return None
    if any(marker.get(k) != v for k, v in _source_stat(job.source).items()):
        return None
    return marker["frames"] if _frames_present(final, job.video_id, marker.get("frames")) else None


def process_video(job: _Job, progress: ProgressFn | None = None) -> VideoResult:
    """Extract one video unless already complete; never raises for a bad video (it becomes a failed result)."""
    t0 = time.perf_counter()
    vid, params = job.video_id, job.params
    expected = params.num_frames
    done = _is_complete(job)
    if done is not None:
        return VideoResult(vid, "skipped", frames=done, expected=expected)
    final, partial, marker_path = _paths(job.out_dir, vid)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        stat = _source_stat(job.source)
        written = extract_frames(job.source, partial, vid, params, threads=job.threads, progress=progress)
    except Exception as exc:  # noqa: BLE001  (any decoder error is this video's failure, not the run's)
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(exc, (UserError, ExtractionError)):  # VideoError names the file; the video id names it here
            reason = str(exc)
        else:
            reason = f"{job.source}: decoding failed: {type(exc).__name__}: {exc}"
        return VideoResult(vid, "failed", expected=expected, reason=reason, seconds=time.perf_counter() - t0)
    # Swap in: drop the old marker first, so a kill between the steps leaves "not complete", never a wrong folder.
    marker_path.parent.mkdir(parents=True, exist_ok=True)
    marker_path.unlink(missing_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    marker = {"version": MARKER_VERSION, "video_id": vid, "frames": written, "expected": expected,
              "params": params.as_marker(), **stat}
    write_text(marker_path, json.dumps(marker, indent=1) + "\n")
    warnings = []
    if written < expected:
        end = params.start + written / params.fps
        warnings.append(f"{vid}: video ends early: wrote {written} of {expected} frames (up to {float(end):.3f} s)")
    return VideoResult(vid, "done", frames=written, expected=expected, warnings=warnings,
                       seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------ worker processes

_QUEUE: Any = None


def _init_worker(progress_queue: Any) -> None:
    global _QUEUE
    _QUEUE = progress_queue


def _run_in_worker(job: _Job) -> VideoResult:
    """Pool entry point: progress goes to the parent's bars through a queue, a few times a second. The queue is
    a ``SimpleQueue``, whose ``put`` writes before it returns, so a video's last report is in the pipe before its
    result leaves the worker (a ``Queue`` sends from a thread and could arrive after the video was finished)."""
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if _QUEUE is not None and (now - last > 0.25 or done == total):
            last = now
            _QUEUE.put((job.video_id, done, total))

    return process_video(job, report)


class _Bars:
    """The video bar plus one frame bar per video in flight (tqdm positions reused as videos finish)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._disable = None if enabled is None else not enabled
        self.videos = tqdm(total=total, desc="videos", unit="video", disable=self._disable)
        self._frames: dict[str, Any] = {}
        self._free: list[int] = []
        self._finished: set[str] = set()

    def update(self, video_id: str, done: int, total: int) -> None:
        if video_id in self._finished:  # never reopen a closed bar
            return
        bar = self._frames.get(video_id)
        if bar is None:
            slot = self._free.pop() if self._free else len(self._frames) + 1
            bar = self._tqdm(total=total, desc=video_id, unit="frame", position=slot, leave=False,
                             disable=self._disable)
            bar.slot = slot
            self._frames[video_id] = bar
        bar.update(done - bar.n)

    def finish(self, result: VideoResult) -> None:
        self._finished.add(result.video_id)
        bar = self._frames.pop(result.video_id, None)
        if bar is not None:
            self._free.append(bar.slot)
            bar.close()
        self.videos.update(1)
        self.videos.set_postfix_str(f"last: {result.video_id} {result.status}")

    def close(self) -> None:
        for bar in self._frames.values():
            bar.close()
        self.videos.close()


def _run_jobs(jobs: list[_Job], workers: int, bars: _Bars) -> list[VideoResult]:
    results: list[VideoResult] = []

    def finished(result: VideoResult) -> None:
        for message in result.warnings:
            logger.warning(message)
        if result.status == "failed":
            logger.error("%s: failed: %s", _shown_id(result.video_id), result.reason)
        results.append(result)
        bars.finish(result)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            finished(process_video(job, lambda done, total, vid=job.video_id: bars.update(vid, done, total)))
        return results

    ctx = _pool_context()
    progress_queue = ctx.SimpleQueue()
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(progress_queue,)) as pool:
        pending = {pool.submit(_run_in_worker, job): job for job in jobs}
        try:
            while pending:
                done, _ = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                _drain(progress_queue, bars)
                for future in done:
                    job = pending.pop(future)
                    try:
                        finished(future.result())
                    except Exception as exc:  # noqa: BLE001  (a worker that died: count it, keep going)
                        finished(VideoResult(job.video_id, "failed", expected=job.params.num_frames,
                                             reason=f"worker process failed: {type(exc).__name__}: {exc}"))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results


def _pool_context() -> Any:
    """Workers start from a fork server that imported this module (torch included) once, not from a fork of this
    multi-threaded process; without one (Windows, macOS spawn), each worker imports it."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _drain(progress_queue: Any, bars: _Bars) -> None:
    while not progress_queue.empty():
        bars.update(*progress_queue.get())


# ------------------------------------------------------------------------------------- videos and frame lists


def read_splits(annotations_dir: Path) -> dict[str, set[str]] | None:
    """Video ids mentioned by each of AVA's annotation CSVs, or None when neither file is there."""
    splits: dict[str, set[str]] = {}
    for split, name in ANNOTATION_FILES.items():
        path = annotations_dir / name
        if path.is_file():  # read as CSV: a quoted id holding commas is one id
            with path.open(newline="", encoding="utf-8") as f:
                splits[split] = {row[0].strip() for row in csv.reader(f) if row and row[0].strip()}
    if not splits:
        return None
    for split, name in ANNOTATION_FILES.items():
        if split not in splits:
            logger.warning("no %s in %s: no video is assigned to %s.csv", name, annotations_dir, split)
    return splits


def complete_videos(out_dir: Path, params: ExtractionParams) -> dict[str, int]:
    """Video id -> frame count for every complete folder extracted with ``params``' timing (the frame lists' rows)."""
    marker_dir = out_dir / FRAMES_DIR / COMPLETE_DIR
    found: dict[str, int] = {}
    other = 0
    for path in sorted(marker_dir.glob("*.json")) if marker_dir.is_dir() else []:
        marker = _read_marker(path)
        if marker is None:
            continue
        vid = str(marker.get("video_id", path.stem))
        if not _frames_present(out_dir / FRAMES_DIR / vid, vid, marker.get("frames")):
            continue
        if {k: v for k, v in marker.get("params", {}).items() if k != "quality"} != params.timing():
            other += 1
            continue
        found[vid] = marker["frames"]
    if other:
        logger.warning("%d complete videos were extracted with another start/duration/fps; not listed", other)
    return found


def write_frame_lists(out_dir: Path, params: ExtractionParams, annotations_dir: Path) -> dict[str, int]:
    """Rewrite ``frame_lists/{train,val,test}.csv`` from the complete videos on disk; returns videos per list."""
    videos = complete_videos(out_dir, params)
    splits = read_splits(annotations_dir)
    assigned: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    if splits is None:
        assigned["train"] = sorted(videos)
        if videos:
            logger.warning(
                "no AVA annotation files (%s) in %s: all %d videos are listed in train.csv. Put them there "
                "(or pass --annotations DIR) and rerun to split train/val; complete videos are not extracted again.",
                " / ".join(ANNOTATION_FILES.values()), annotations_dir, len(videos))
    else:
        for vid in sorted(videos):
            hits = [split for split in ("train", "val") if vid in splits.get(split, ())]
            if len(hits) > 1:
                logger.warning("%s is in both annotation files; listed in train.csv", vid)
            assigned[hits[0] if hits else "test"].append(vid)
        if assigned["test"]:
            logger.warning("%d videos are in neither annotation file; listed in test.csv: %s",
                           len(assigned["test"]), " ".join(assigned["test"]))
    list_dir = out_dir / FRAME_LISTS_DIR
    list_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, ids in assigned.items():
        path = list_dir / frame_list_file(split)
        if split == "test" and not ids and not path.exists():
            continue
        write_frame_list(path, [(vid, videos[vid]) for vid in ids])  # streamed: AVA's train.csv has 6 million rows
        counts[split] = len(ids)
    return counts


# --------------------------------------------------------------------------------------------------- the run


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold a lock on ``out_dir`` so that a second run cannot remove this run's work folders."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with (out_dir / LOCK_FILE).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BusyError(f"another prepare_ava run is using {out_dir}") from None
        yield


def prepare_ava(
    videos_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    annotations_dir: str | os.PathLike | None = None,
    params: ExtractionParams | None = None,
    workers: int = 1,
    video_ids: Sequence[str] | None = None,
    progress: bool | None = None,
) -> Summary:
    """Extract frames of every (or each listed) video, then rewrite the frame lists; see the module docstring.

    ``video_ids=None`` takes every video in ``videos_dir``; a listed id without a file there is a failed entry.
    Raises :class:`ArgumentError` (a UserError and a ValueError) for bad arguments (missing folder, no
    videos, empty selection, workers < 1); a bad video is a failed entry of the returned
    :class:`Summary`, never an exception.
    ``progress=None`` shows bars only on a terminal.
    """
    t0 = time.perf_counter()
    params = params or ExtractionParams()
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    if not videos_dir.is_dir():
        raise ArgumentError(f"--videos: no such folder: {videos_dir}")
    annotations = out_dir / ANNOTATIONS_DIR if annotations_dir is None else Path(annotations_dir)
    if annotations_dir is not None and not annotations.is_dir():
        raise ArgumentError(f"--annotations: no such folder: {annotations}")
    if workers < 1:
        raise ArgumentError(f"--workers must be >= 1, got {workers}")
    sources = find_videos(videos_dir)
    if not sources:
        raise ArgumentError(f"no videos in {videos_dir} (files named <video id>.<ext>, ext one of "
                            f"{' '.join(VIDEO_EXTENSIONS)})")

    results: list[VideoResult] = []
    if video_ids is not None:
        wanted = list(dict.fromkeys(video_ids))
        if not wanted:
            raise ArgumentError("the video id selection is empty")
        missing = [v for v in wanted if v not in sources]
        results += [VideoResult(v, "failed", reason=f"no video file in {videos_dir}") for v in missing]
        sources = {v: sources[v] for v in wanted if v in sources}
    for vid in [v for v in sources if any(c.isspace() for c in v)]:
        results.append(VideoResult(vid, "failed", reason="video id contains whitespace (frame lists are "
                                                         "space-separated)"))
        del sources[vid]
    for result in results:
        logger.error("%s: failed: %s", _shown_id(result.video_id), result.reason)

    (out_dir / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        stale = out_dir / FRAMES_DIR / PARTIAL_DIR
        if stale.is_dir() and any(stale.iterdir()):
            logger.info("removing unfinished work from an earlier run: %s",
                        ", ".join(sorted(p.name for p in stale.iterdir())))
        shutil.rmtree(stale, ignore_errors=True)
        threads = 0 if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
        jobs = [_Job(vid, path, out_dir, params, threads) for vid, path in sources.items()]
        bars = _Bars(len(jobs), progress)
        try:
            results += _run_jobs(jobs, workers, bars)
        finally:
            bars.close()
        with contextlib.suppress(OSError):
            stale.rmdir()  # empty unless a run was killed
        lists = write_frame_lists(out_dir, params, annotations)
    return Summary(results, lists, time.perf_counter() - t0)


def _fraction(positive: bool) -> Callable[[str], Fraction]:
    def parse(text: str) -> Fraction:
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"must be {'> 0' if positive else '>= 0'}: {text}")
        return value

    return parse


def _strip_extension(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in VIDEO_EXTENSIONS else name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m memvit.data.prepare_ava",
        description="Extract AVA frames (PySlowFast layout: frames/<id>/<id>_%06d.jpg) and write the frame lists. "
                    "Resumable: rerun after a kill; complete videos are skipped.",
    )
    parser.add_argument("--videos", type=Path, required=True, help="folder with <video_id>.mp4/.mkv/.webm")
    parser.add_argument("--out", type=Path, required=True, help="output folder (frames/, frame_lists/)")
    parser.add_argument("--annotations", type=Path, default=None,
                        help="folder with ava_train_v2.2.csv / ava_val_v2.2.csv for the train/val split "
                             "(default: OUT/annotations)")
    parser.add_argument("--start", type=_fraction(False), default=Fraction(FIRST_SECOND),
                        help=f"first second (default {FIRST_SECOND})")
    parser.add_argument("--duration", type=_fraction(True), default=Fraction(EXTRACTED_SECONDS),
                        help=f"seconds to extract (default {EXTRACTED_SECONDS})")
    parser.add_argument("--fps", type=_fraction(True), default=Fraction(FPS),
                        help=f"output frame rate, e.g. 30 or 30000/1001 (default {FPS})")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1..100 (default 95)")
    parser.add_argument("--workers", type=int, default=1, help="videos processed in parallel (default 1)")
    parser.add_argument("--video-ids", nargs="+", action="extend", default=None, metavar="ID",
                        help="only these videos (repeatable, comma-separated allowed); ids starting with '-' need "
                             "the '=' form: --video-ids=-5KQ66BBWC4,-FaXLcSFjUI")
    parser.add_argument("--video-ids-file", type=Path, default=None, metavar="FILE",
                        help="only the videos listed in FILE, one id per line (e.g. ava_file_names_trainval_v2.1.txt; "
                             "extensions are ignored)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 all good, 1 some video failed, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.quality <= 100:
        parser.error(f"--quality must be in 1..100, got {args.quality}")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    ids = None
    if args.video_ids is not None or args.video_ids_file is not None:
        ids = [v for arg in args.video_ids or [] for v in arg.split(",") if v]
        if args.video_ids_file is not None:
            try:
                ids += [_strip_extension(line) for line in args.video_ids_file.read_text().split()]
            except OSError as exc:
                parser.error(f"--video-ids-file: {exc}")
    params = ExtractionParams(args.start, args.duration, args.fps, args.quality)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():  # a bad argument or a busy folder: a UserError (one message, exit 2)
        summary = prepare_ava(args.videos, args.out, annotations_dir=args.annotations, params=params,
                              workers=args.workers, video_ids=ids, progress=False if args.no_progress else None)
    print(summary.format())
    return 1 if summary.failed else 0


# ExtractionError, ExtractionParams, extract_frames and select_frames live in .extract_frames: re-exported.
__all__ = ["ArgumentError", "BusyError", "ExtractionError", "ExtractionParams", "Summary", "VideoResult",
           "build_parser", "complete_videos", "extract_frames", "find_videos", "main", "prepare_ava", "process_video",
           "read_splits", "select_frames", "write_frame_lists"]

if __name__ == "__main__":
    # Run the importable module's main, so worker processes pickle its functions by their real module name.
    from memvit.data.prepare_ava import main as _main

    sys.exit(_main())
