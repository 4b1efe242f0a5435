# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Annotations of your own videos to AVA's files: ``python -m memvit.data.convert {cvat,csv} ...``.

Writes, into ``--out``, the three files training and evaluation read (names from
:mod:`memvit.data.ava_files`, split by ``--split``): the ground-truth boxes ``ava_<split>_v2.2.csv``,
the excluded keyframes ``ava_<split>_excluded_timestamps_v2.2.csv`` and the label map
``ava_action_list_v2.2_for_activitynet_2019.pbtxt``.

**Time.** A keyframe second ``s`` is the time in seconds from the start of the video file (pts x time
base from the container's start, as :mod:`memvit.data.timeline` counts; AVA's own files count from 900,
yours from 0: train with ``AVA.TIMELINE_START 0.0``). There is one keyframe per whole second the
annotation covers; its boxes are those on the video frame on screen at ``s`` (:func:`timeline.on_screen`
over the frame times read from the video file, so a 25 fps or variable-rate video picks the right frame).

**CVAT** (``cvat``: "CVAT for video 1.1" exports, one per task/video, the ``annotations.xml`` or the
downloaded ZIP, :mod:`memvit.data.cvat`): the video is the file named by the task's ``<source>`` (its name
without extension is the video id; ``--video-id`` for a job's export, which has none) in ``--videos``.
Actions come from either setup, or both:

* (a) a person label (``--person-label``, default ``person``) whose checkbox attributes are named after
  actions (true = on) and/or whose select, radio or text attributes hold an action name (only the
  attributes named by ``--action-attribute`` when given; text attributes only then);
* (b) labels that are action names: a track per action.

Tracks sharing a CVAT group (``group_id``) are one person (its box: that of its visible track with the
lowest id); otherwise a track is a person. The person id (column 8) is the track id (the group's lowest).
A person box with no action is left out (counted); ``occluded`` is not read; a rotated box gives its
axis-aligned extent. Class ids: ``--label-map`` (its ids; labels and values not in it are left out, but a
value of an ``--action-attribute`` must be in it), or 1..N in the order the files declare them (files in
the order given; labels, then the person label's checkboxes and select/radio values), values seen only in
text attributes last, in the order met. Derived classes get ``label_type`` PERSON_MOVEMENT.

**Excluded keyframes**: seconds of the video whose frame is outside the task's frames
(``start_frame`` .. ``stop_frame``: not annotated), and seconds where a box labelled
``--exclude-label`` (default ``exclude``) is visible (the annotator marks a second that cannot be
annotated: a crowd, a cut). They get no boxes, and evaluation ignores them.

**CSV** (``csv``, for any other tool): a header line ``video,time,person,x1,y1,x2,y2,action``, then one row
per (person, action): ``time`` a whole second from the start of the video file (``12`` or ``12.0``;
anything else is refused, not rounded), ``person`` an integer id, the box in pixels of the video frame
(``--normalized``: in [0, 1]), ``action`` an action name (empty: a person with no action; the exclude
label: the second is excluded, box fields may be empty). Rows of one person at one second share its box.
Seconds of a video before its first or after its last annotated second are excluded.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..cli import user_errors_exit
from ..files import write_bytes
from .ava_files import (
    LABEL_MAP_FILE,
    BoxRow,
    excluded_file,
    groundtruth_file,
    read_label_map,
    write_boxes_csv,
    write_excluded_timestamps,
    write_label_map,
)
from .cvat import CvatFormatError, VideoAnnotations, read_video_annotations
from .keyframe_boxes import (
    CSV_COLUMNS,
    Actions,
    ConvertError,
    CvatOptions,
    PlainCsv,
    Tally,
    cvat_keyframes,
    declare_cvat_actions,
    find_video,
    read_video_frames,
)

# ----------------------------------------------------------------------------- the command


@dataclass
class Converted:
    """Everything a conversion writes, and what it left out."""

    rows: list[BoxRow]
    excluded: list[tuple[str, int]]
    videos: list[str]
    tally: Tally


def convert_cvat(files: Sequence[str], videos_dir: Path, actions: Actions, opts: CvatOptions,
                 video_id: str | None = None, progress: bool | None = None) -> Converted:
    """CVAT for video exports (one per video) -> ground-truth rows and excluded keyframes."""
    read: list[tuple[str, str, VideoAnnotations]] = []
    seen: dict[str, str] = {}
    for path in files:
        ann = read_video_annotations(path)
        if video_id is None and not ann.source:
            raise CvatFormatError(path, 0, f"names no video (no <source> in <meta>: a {ann.kind}'s export?)",
                                  "pass --video-id ID with this one file")
        vid = video_id or Path(ann.source.replace("\\", "/")).stem
        if vid in seen:
            raise ConvertError(f"{path}: video {vid!r} is annotated by {seen[vid]} too",
                               "export the whole task as one file (its jobs' exports overlap in track ids)")
        seen[vid] = path
        if not actions.fixed:
            declare_cvat_actions(actions, ann.labels, opts)
        read.append((path, vid, ann))
    tally, rows, excluded = Tally(), [], []
    for path, vid, ann in tqdm(read, desc="CVAT -> AVA", unit="video", disable=True if progress is False else None):
        frames = read_video_frames(find_video(videos_dir, vid, f"{path}: <source> {ann.source or '(--video-id)'}"))
        video_rows, video_excluded = cvat_keyframes(ann, path, vid, frames, actions, opts, tally)
        rows += video_rows
        excluded += [(vid, sec) for sec in video_excluded]
    return Converted(rows, excluded, [vid for _, vid, _ in read], tally)


def convert_csv(files: Sequence[str], videos_dir: Path, actions: Actions, exclude_label: str, normalized: bool,
                progress: bool | None = None) -> Converted:
    """Plain CSV files (merged: a video may be in several) -> ground-truth rows and excluded keyframes."""
    reader = PlainCsv(videos_dir, actions, exclude_label, normalized)
    for path in tqdm(files, desc="CSV -> AVA", unit="file", disable=True if progress is False else None):
        reader.read(path)
    tally = Tally()
    rows, excluded = reader.keyframes(tally)
    return Converted(rows, excluded, sorted(reader.frames), tally)


def output_paths(out_dir: Path, split: str) -> tuple[Path, Path, Path]:
    """(ground truth, excluded keyframes, label map) in ``out_dir``: AVA's names."""
    return out_dir / groundtruth_file(split), out_dir / excluded_file(split), out_dir / LABEL_MAP_FILE


def check_outputs(out_dir: Path, split: str, label_map: Path | None, overwrite: bool) -> None:
    """Refuse to replace existing outputs without ``--overwrite`` (a given label map that is the output is
    kept as it is, not replaced)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConvertError(f"--out {out_dir} is a file, not a folder")
    paths = list(output_paths(out_dir, split))
    if label_map is not None and paths[2].exists() and paths[2].resolve() == label_map.resolve():
        paths.pop()
    there = [p.name for p in paths if p.exists()]
    if there and not overwrite:
        raise ConvertError(f"{out_dir} already holds {', '.join(there)}; nothing was written",
                           "pass --overwrite to replace them, or choose another --out")


def write_outputs(out_dir: Path, split: str, converted: Converted, actions: Actions, label_map: Path | None) -> None:
    """The three files, each atomically: rows by video (in the order given), second, person and action."""
    groundtruth, excluded, label_map_out = output_paths(out_dir, split)
    order = {video: k for k, video in enumerate(converted.videos)}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_boxes_csv(groundtruth, sorted(converted.rows, key=lambda r: (order[r.video], r.sec, r.extra, r.action)),
                        extra_decimals=0)
        write_excluded_timestamps(excluded, sorted(converted.excluded, key=lambda k: (order[k[0]], k[1])))
        if label_map is None:
            write_label_map(label_map_out, actions.entries())
        elif not (label_map_out.exists() and label_map_out.resolve() == label_map.resolve()):
            write_bytes(label_map_out, label_map.read_bytes())
    except OSError as error:
        raise ConvertError(f"--out {out_dir}: cannot write there ({error.strerror or error})") from None


def _summary(out_dir: Path, split: str, converted: Converted, actions: Actions, videos_dir: Path) -> str:
    rows, tally = converted.rows, converted.tally
    gt, ex, lm = (p.name for p in output_paths(out_dir, split))
    persons = {(r.video, r.sec, r.extra) for r in rows}
    lines = [f"{out_dir}:",
             f"  {gt}: {len(rows)} rows: {len(persons)} person boxes at {len({(r.video, r.sec) for r in rows})} "
             f"keyframes of {len(converted.videos)} video(s)",
             f"  {ex}: {len(converted.excluded)} keyframes",
             f"  {lm}: {len(actions.ids)} classes: " + ", ".join(f"{i}={n}" for n, i in actions.ids.items())]
    left = [f"{tally.no_action} person box(es) without an action"] if tally.no_action else []
    if tally.excluded_rows:
        left.append(f"{tally.excluded_rows} person box(es) at excluded seconds")
    if tally.ignored_labels:
        left.append("tracks of labels that are no action: " + ", ".join(f"{k} ({n})" for k, n in
                                                                          tally.ignored_labels.items()))
    if tally.skipped_shapes:
        left.append(f"{tally.skipped_shapes} shape(s) other than boxes")
    if left:
        lines.append("  left out: " + "; ".join(left))
    files = ({"AVA.TRAIN_GT_BOX_LISTS": [gt]} if split == "train" else
             {"AVA.GROUNDTRUTH_FILE": gt, "AVA.EXCLUSION_FILE": ex})
    config = {"AVA.VIDEO_DIR": str(videos_dir.resolve()), "AVA.TIMELINE_START": 0.0, "AVA.KEYFRAME_RANGE": [],
              "AVA.ANNOTATION_DIR": str(out_dir.resolve()), **files, "AVA.LABEL_MAP_FILE": lm,
              "MODEL.NUM_CLASSES": max(actions.ids.values(), default=0)}
    return "\n".join(lines + ["config:"] + [f"  {k}: {json.dumps(v)}" for k, v in config.items()])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m memvit.data.convert", description=__doc__.split("\n\n")[0],
                                     epilog="The formats: docs/custom_data.md (and this module's docstring).")
    sub = parser.add_subparsers(dest="format", required=True, metavar="{cvat,csv}")
    cvat = sub.add_parser("cvat", help="CVAT for video 1.1 exports (annotations.xml or the ZIP, one per task/video)")
    cvat.add_argument("files", nargs="+", metavar="ANNOTATIONS.xml")
    plain = sub.add_parser("csv", help=f"plain CSV with the header {','.join(CSV_COLUMNS)}")
    plain.add_argument("files", nargs="+", metavar="FILE.csv")
    for p in (cvat, plain):
        p.add_argument("--videos", type=Path, required=True, help="folder with the videos (<video id>.mp4, ...)")
        p.add_argument("--out", type=Path, required=True, help="folder for the AVA files (AVA.ANNOTATION_DIR)")
        p.add_argument("--split", default="train", help="split the files are named for (default: %(default)s)")
        p.add_argument("--label-map", type=Path, default=None,
                       help="an AVA label map (.pbtxt) giving the classes and ids; copied to --out (default: "
                            "the actions met, ids 1..N in order)")
        p.add_argument("--exclude-label", default="exclude",
                       help="label (CVAT) or action (CSV) marking a second as excluded (default: %(default)s)")
        p.add_argument("--overwrite", action="store_true", help="replace existing output files")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
    cvat.add_argument("--video-id", default=None, help="the video of a file without <source> (one file only)")
    cvat.add_argument("--person-label", default="person",
                      help="label whose attributes hold the actions (default: %(default)s); other labels are "
                           "action names")
    cvat.add_argument("--action-attribute", action="append", default=[], metavar="NAME",
                      help="select/radio/text attribute holding an action name (repeatable; default: every "
                           "select or radio attribute)")
    plain.add_argument("--normalized", action="store_true", help="boxes are in [0, 1], not pixels")
    return parser


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.format == "cvat" and args.video_id is not None and len(args.files) > 1:
        parser.error("--video-id names the video of one file; give one file")
    if not args.split or any(c in args.split for c in "/\\ ") or args.split.startswith("."):
        parser.error(f"--split {args.split!r}: a name such as train or val")
    label_map = None
    if args.label_map is not None:
        label_map = read_label_map(args.label_map) if args.label_map.is_file() else None
        if label_map is None:
            raise ConvertError(f"--label-map {args.label_map}: no such file")
    check_outputs(args.out, args.split, args.label_map, args.overwrite)
    actions = Actions(label_map, str(args.label_map or ""))
    progress = False if args.quiet else None
    if args.format == "cvat":
        opts = CvatOptions(args.person_label, tuple(args.action_attribute), args.exclude_label)
        converted = convert_cvat(args.files, args.videos, actions, opts, args.video_id, progress)
    else:
        converted = convert_csv(args.files, args.videos, actions, args.exclude_label, args.normalized, progress)
    if not converted.rows:
        raise ConvertError(f"no person box with an action in {', '.join(args.files)}; nothing was written",
                           "check --person-label / --action-attribute (CVAT) or --label-map")
    write_outputs(args.out, args.split, converted, actions, args.label_map)
    print(_summary(args.out, args.split, converted, actions, args.videos))
    return 0


__all__ = ["Converted", "build_parser", "check_outputs", "convert_csv", "convert_cvat", "main", "output_paths",
           "write_outputs"]

if __name__ == "__main__":
    sys.exit(main())
