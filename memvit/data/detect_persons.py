# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Person boxes for any video: a person detector on every keyframe, written as AVA's detector CSV.

Usage::

    python -m memvit.data.detect_persons --videos DIR --out boxes.csv --detector PATH
        [--detector-arch fasterrcnn_resnet50_fpn] [--min-score 0.5] [--person-label 1]
        [--start 0] [--end SECONDS] [--batch-size 8] [--device cuda] [--overwrite] [--no-progress]

**Keyframes.** Every whole second ``s`` from ``--start`` to ``--end`` (default: the end of the video)
at which the video shows a frame; ``s`` counts from the start of the file, and the frame is the one
on screen at ``s`` by the rule of :mod:`memvit.data.timeline` (frame ``30 s`` of the 30 fps timeline
that training reads; AVA's movies: ``--start 902 --end 1798``, the seconds AVA annotates). The video
id is the file name without its extension.

**Output.** One row per person box, ``video,sec,x1,y1,x2,y2,,score`` (coordinates normalised to
[0, 1], the action column empty): the detector file PySlowFast's ``AVA.TRAIN_PREDICT_BOX_LISTS`` and
``AVA.TEST_PREDICT_BOX_LISTS`` name, read unchanged. Boxes scoring ``>= --min-score`` (0.5) are kept,
so the reader's ``AVA.DETECTION_SCORE_THRESH`` (0.8 or 0.9 in the configs) can be chosen later without
running the detector again. A keyframe where nobody is found has no row (AVA's protocol: keyframes
come from the rows).

**Detectors** (:func:`memvit.streaming.person_boxes.load_person_detector`, which ``memvit.infer`` uses
too): a TorchScript file following torchvision's detection interface, or the state dict of a
``torchvision.models.detection`` builder (``--detector-arch``); which one is read from the file.

**Resuming.** Work goes to ``<out>.parts/``: ``run.json`` (the detector's SHA-256 and the settings)
and per video ``videos/<id>.csv`` and ``videos/<id>.json`` (written in that order, atomically; the
JSON records the source file's size and modification time). A rerun skips the videos whose part is
complete for the same source file, so a killed run resumes, and videos added to the folder later are
the only ones processed. ``--out`` is written once every video is done, atomically, so a file under
that name is always whole. Other settings or another detector than the work folder's are refused
(``--overwrite`` starts over), and so is an existing ``--out`` this command did not write.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import UserError, resolve_device, user_errors_exit
from ..files import atomic_path, write_json
from .ava_files import FPS, BoxRow, box_csv_row, write_boxes_csv
from .video_source import VIDEO_EXTENSIONS, find_videos

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_BOXES = 100  # per keyframe, the best-scoring ones (torchvision's detectors return at most 100)
PARTS_SUFFIX = ".parts"
RUN_FILE = "run.json"
VIDEOS_DIR = "videos"


class DetectPersonsError(UserError, ValueError):
    """A bad argument, an output that is not ours to replace, or a work folder of another run."""


@dataclass
class Summary:
    """What a run did; :meth:`lines` is what the command prints."""

    out: str
    videos: int = 0
    skipped: int = 0
    keyframes: int = 0
    boxes: int = 0
    seconds: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        rate = f" ({self.keyframes / self.seconds:.1f} keyframes/s)" if self.seconds > 0 and self.keyframes else ""
        lines = [f"detected: {self.videos} video(s), {self.keyframes} keyframes, {self.boxes} person boxes in "
                 f"{self.seconds:.1f} s{rate}; already done: {self.skipped} video(s)"]
        lines += [f"warning: {message}" for message in self.warnings]
        if self.failed:
            lines += [f"failed: {video}: {reason}" for video, reason in self.failed.items()]
            lines.append(f"{self.out} not written: fix or move the failed video(s) and rerun (finished videos "
                         "are kept)")
        else:
            lines.append(f"wrote {self.out} (each video's boxes are kept in {self.out}{PARTS_SUFFIX}/, so a later run "
                         "detects only videos added since; delete it to free the space)")
        return lines


# ----------------------------------------------------------------------------------------------- keyframes
def keyframe_images(reader: Any, first: int, last: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(s, frame on screen at s)`` for each whole second ``first <= s <= last`` the video shows, in order:
    timeline frame ``30 s`` of :class:`memvit.streaming.video_io.Timeline` (frames no later keyframe
    needs are dropped as it goes). Stops decoding after ``last``."""
    from ..streaming.video_io import Timeline

    timeline = Timeline(FPS, reader.info.tick)
    sec = first
    for chunk in reader.chunks():
        for frame in chunk:
            timeline.push(frame)
        while (last is None or sec <= last) and sec * FPS < timeline.known():
            yield sec, timeline.frame(sec * FPS)
            sec += 1
        if last is not None and sec > last:
            return
        timeline.trim(sec * FPS)
    timeline.finish(1 / reader.info.rate if reader.info.rate else None)
    while (last is None or sec <= last) and sec * FPS < timeline.known():
        yield sec, timeline.frame(sec * FPS)
        sec += 1


def _batches(items: Iterator[tuple[int, np.ndarray]], size: int) -> Iterator[list[tuple[int, np.ndarray]]]:
    batch: list[tuple[int, np.ndarray]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rows(video: str, sec: int, boxes: np.ndarray, scores: np.ndarray) -> list[BoxRow]:
    """The rows of one keyframe; a box that is empty at the CSV's 3 decimals is left out (the reader refuses it)."""
    rows = []
    for box, score in zip(boxes.tolist(), scores.tolist()):
        fields = box_csv_row(video, sec, box, None, score)
        x1, y1, x2, y2 = (float(v) for v in fields[2:6])
        if x2 > x1 and y2 > y1:
            rows.append(BoxRow(video, sec, (x1, y1, x2, y2), None, score))
    return rows


def detect_video(detector: Any, video: str, path: str, *, first: int, last: int | None, batch_size: int,
                 bar: Any = None) -> tuple[list[BoxRow], int, list[str]]:
    """Rows of every person box of ``video`` (``path``), the number of keyframes, and warnings."""
    from ..streaming.video_io import FileReader

    reader = FileReader(path)
    rows: list[BoxRow] = []
    keyframes, sec = 0, None
    try:
        for batch in _batches(keyframe_images(reader, first, last), batch_size):
            found = detector.detect([image for _, image in batch])
            for (sec, _), (boxes, scores) in zip(batch, found):
                rows += _rows(video, sec, boxes, scores)
            keyframes += len(batch)
            if bar is not None:
                bar.update(len(batch))
        short = reader.shortfall() if last is None or sec != last else None  # at --end, decoding stopped early
        warnings = [message for message in (reader.error, short) if message]
    finally:
        reader.close()
    if not keyframes:
        span = f"{first}..{last}" if last is not None else f">= {first}"
        warnings.append(f"{path}: no keyframe (whole second {span}) inside the video")
    return rows, keyframes, warnings


# ----------------------------------------------------------------------------------------------- resuming
def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"file": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class WorkFolder:
    """``<out>.parts/``: the settings of the run it belongs to, what it wrote to ``out``, and a part per video."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.root = out.with_name(out.name + PARTS_SUFFIX)
        self.videos = self.root / VIDEOS_DIR
        self.run = _read_json(self.root / RUN_FILE) if self.root.is_dir() else None

    def check(self, settings: dict[str, Any], overwrite: bool) -> None:
        """Refuse an ``out`` this command did not write and work of other settings (unless ``overwrite``)."""
        if self.root.exists() and self.run is None:
            raise DetectPersonsError(f"{self.root} exists but is not a detect_persons work folder (no readable "
                                     f"{RUN_FILE})", "move it away or choose another --out")
        if self.out.exists() and not overwrite:
            written = self.run.get("outputs", []) if self.run else []
            if not self.out.is_file() or file_sha256(self.out) not in written:
                raise DetectPersonsError(f"{self.out} exists and was not written by this command (or was changed "
                                         "since)", "pass --overwrite to replace it, or choose another --out")
        if self.run is not None and self.run.get("settings") != settings:
            before = self.run.get("settings") or {}
            changed = ", ".join(f"{key}: {before.get(key)!r} -> {value!r}" for key, value in settings.items()
                                if before.get(key) != value) or "format"
            finished = self.videos.is_dir() and any(p.suffix == ".json" and not p.name.startswith(".")
                                                    for p in self.videos.iterdir())  # not a killed write's temp
            if finished and not overwrite:
                raise DetectPersonsError(f"{self.root} holds the work of a run with other settings ({changed})",
                                         "rerun with that run's settings to resume it, or pass --overwrite to "
                                         "start over")
            if finished:
                logger.warning("--overwrite: discarding %s (other settings: %s)", self.root, changed)
            shutil.rmtree(self.root)
            self.run = None
        self.run = {"command": "python -m memvit.data.detect_persons", "settings": settings,
                    "outputs": (self.run or {}).get("outputs", [])}
        self.videos.mkdir(parents=True, exist_ok=True)
        write_json(self.root / RUN_FILE, self.run)

    def done(self, video: str, source: Path) -> dict[str, Any] | None:
        """The record of ``video`` when its part is complete for this ``source`` file."""
        record = _read_json(self.videos / f"{video}.json")
        if record is None or not (self.videos / f"{video}.csv").is_file():
            return None
        return record if record.get("source") == _source_identity(source) else None

    def save(self, video: str, source: Path, rows: list[BoxRow], keyframes: int, warnings: list[str]) -> None:
        write_boxes_csv(self.videos / f"{video}.csv", rows)
        write_json(self.videos / f"{video}.json", {"video": video, "source": _source_identity(source),
                                                    "keyframes": keyframes, "boxes": len(rows),
                                                    "warnings": warnings})

    def merge(self, videos: Sequence[str]) -> None:
        """Write ``out``: the parts of ``videos`` in order, atomically; ``run.json`` learns its digest first,
        so a kill between the two never makes our own file look foreign."""
        digest = hashlib.sha256()
        with atomic_path(self.out) as tmp:
            with open(tmp, "wb") as f:
                for video in videos:
                    data = (self.videos / f"{video}.csv").read_bytes()
                    f.write(data)
                    digest.update(data)
            assert self.run is not None
            self.run["outputs"] = [*self.run["outputs"][-1:], digest.hexdigest()]
            write_json(self.root / RUN_FILE, self.run)
        self.run["outputs"] = [digest.hexdigest()]
        write_json(self.root / RUN_FILE, self.run)


# ----------------------------------------------------------------------------------------------- the run
def _sources(videos: Path) -> dict[str, Path]:
    if videos.is_file():
        return {videos.stem: videos}
    if not videos.is_dir():
        raise DetectPersonsError(f"--videos: no such folder or file: {videos}")
    found = find_videos(videos)
    if not found:
        raise DetectPersonsError(f"no videos ({', '.join('*' + e for e in VIDEO_EXTENSIONS)}) in {videos}")
    return found


def detect_persons(videos: str | os.PathLike, out: str | os.PathLike, detector_path: str, *,
                   arch: str | None = None, min_score: float = 0.5, person_label: int = 1, start: int = 0,
                   end: int | None = None, batch_size: int = 8, device: str | None = None, overwrite: bool = False,
                   progress: bool | None = None) -> Summary:
    """Run the detector on every keyframe of every video and write ``out`` (see the module docstring).
    ``progress=None`` shows the bar only on a terminal."""
    from tqdm.auto import tqdm

    from ..streaming.person_boxes import DEFAULT_ARCH, PersonDetector, detector_kind, load_person_detector
    from ..streaming.video_io import VideoError

    t0 = time.perf_counter()
    if start < 0 or (end is not None and end < start):
        raise DetectPersonsError(f"--start {start} / --end {end}: need 0 <= start <= end")
    if batch_size < 1:
        raise DetectPersonsError(f"--batch-size must be >= 1, got {batch_size}")
    if not 0 <= min_score <= 1:
        raise DetectPersonsError(f"--min-score must be in [0, 1], got {min_score}")
    out = Path(out)
    if out.is_dir():
        raise DetectPersonsError(f"--out {out} is a folder; name the CSV file to write")
    sources = _sources(Path(videos))
    kind = detector_kind(detector_path)
    detector: PersonDetector = load_person_detector(detector_path, arch, threshold=min_score, max_boxes=MAX_BOXES,
                                                    device=str(resolve_device(device)), person_label=person_label)
    settings = {"version": FORMAT_VERSION, "detector_sha256": file_sha256(detector_path), "detector_kind": kind,
                "detector_arch": (arch or DEFAULT_ARCH) if kind == "state_dict" else None,
                "min_score": min_score, "person_label": person_label, "start": start, "end": end,
                "max_boxes": MAX_BOXES, "fps": FPS}
    work = WorkFolder(out)
    work.check(settings, overwrite)
    summary = Summary(str(out))
    pending = {}
    for video, path in sources.items():
        record = work.done(video, path)
        if record is None:
            pending[video] = path
        else:
            summary.skipped += 1
            summary.warnings += record.get("warnings", [])
    bar = tqdm(total=_expected_keyframes(pending.values(), start, end), unit="keyframe", dynamic_ncols=True,
               disable=None if progress is None else not progress)
    try:
        for index, (video, path) in enumerate(pending.items()):
            bar.set_description(f"{video} ({index + 1}/{len(pending)})")
            try:
                rows, keyframes, warnings = detect_video(detector, video, str(path), first=start, last=end,
                                                         batch_size=batch_size, bar=bar)
            except VideoError as error:
                summary.failed[video] = str(error)
                continue
            work.save(video, path, rows, keyframes, warnings)
            summary.videos += 1
            summary.keyframes += keyframes
            summary.boxes += len(rows)
            summary.warnings += warnings
    finally:
        bar.close()
    if summary.keyframes and not summary.boxes:
        summary.warnings.append(f"no box labelled {person_label} scored >= {min_score} in {summary.keyframes} "
                                "keyframes (another label map? --person-label)")
    if not summary.failed:
        work.merge(list(sources))
    summary.seconds = time.perf_counter() - t0
    return summary


def _expected_keyframes(paths: Any, start: int, end: int | None) -> int | None:
    """Keyframes the videos should give, from their declared durations (for the bar; None if unknown)."""
    from ..streaming.video_io import VideoError, local_container

    total = 0
    for path in paths:
        try:
            with local_container(str(path)) as container:
                duration = container.duration
        except VideoError:
            continue
        if duration is None:
            return None
        last = int(np.ceil(duration / 1_000_000)) - 1
        total += max(0, min(last, end if end is not None else last) - start + 1)
    return total


# ----------------------------------------------------------------------------------------------- the command
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m memvit.data.detect_persons",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", required=True, help="folder of videos (or one video file); id = file name stem")
    parser.add_argument("--out", required=True, help="the CSV to write (AVA detector boxes)")
    parser.add_argument("--detector", required=True, metavar="PATH",
                        help="a TorchScript detector (torchvision's detection interface) or torchvision builder "
                             "weights (a state dict, see --detector-arch)")
    parser.add_argument("--detector-arch", default=None,
                        help="torchvision.models.detection builder of a state dict --detector (default "
                             "fasterrcnn_resnet50_fpn); not used for TorchScript")
    parser.add_argument("--min-score", type=float, default=0.5,
                        help="keep person boxes scoring >= this (default 0.5; the reader's "
                             "AVA.DETECTION_SCORE_THRESH filters further)")
    parser.add_argument("--person-label", type=int, default=1, help="the detector's label of a person (COCO: 1)")
    parser.add_argument("--start", type=int, default=0, help="first keyframe second (default 0)")
    parser.add_argument("--end", type=int, default=None,
                        help="last keyframe second (default: the end of each video; AVA: --start 902 --end 1798)")
    parser.add_argument("--batch-size", type=int, default=8, help="keyframes per detector call (default 8)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when there is a GPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out this command did not write; discard work of other settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    """Exit code 0: ``--out`` written; 1: some video failed (``--out`` not written); 2: bad arguments."""
    args = build_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        summary = detect_persons(args.videos, args.out, args.detector, arch=args.detector_arch,
                                 min_score=args.min_score, person_label=args.person_label, start=args.start,
                                 end=args.end, batch_size=args.batch_size, device=args.device,
                                 overwrite=args.overwrite, progress=False if args.no_progress else None)
    for line in summary.lines():
        print(line, file=sys.stderr if line.startswith(("warning", "failed")) else sys.stdout, flush=True)
    return 1 if summary.failed else 0


__all__ = ["DetectPersonsError", "Summary", "WorkFolder", "build_parser", "detect_persons", "detect_video",
           "keyframe_images", "main"]

if __name__ == "__main__":
    sys.exit(main())
