# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The data set on disk: :func:`generate` writes the AVA v2.2 layout through :mod:`memvit.data.ava_files`
into a temporary folder beside the target, records what it wrote in ``manifest.json`` and moves it into
place; a later run replaces only what that manifest lists."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ...cli import UserError
from ...files import write_bytes, write_json, write_text
from ..ava_files import (
    ANNOTATIONS_DIR,
    FIRST_SECOND,
    FPS,
    FRAME_LISTS_DIR,
    FRAMES_DIR,
    LABEL_MAP_FILE,
    excluded_file,
    frame_list_file,
    frame_name,
    groundtruth_file,
    predicted_boxes_file,
    write_boxes_csv,
    write_excluded_timestamps,
    write_frame_list,
    write_label_map,
)
from .annotate import DETECTION_SCORE_THRESH, SplitData, build_split, groundtruth_rows
from .classes import DEFAULT_CLASSES, ActionClass, SyntheticParameterError, check_classes, label_map_entries
from .export import mp4_writer, video_file, write_cvat
from .plan import ANSWER_SECONDS, SIGNAL_SECONDS, VideoPlan
from .render import OBJECT_RGB, SIGNAL_RGB, SIGNAL_TINT, SPEECH_RGB, render_video

GENERATOR = "memvit.data.synthetic"
GENERATOR_VERSION = 1  # bump when the same arguments would produce different files
SPLITS = ("train", "val")
META_FILE, README_FILE = "meta.json", "README.txt"
MANIFEST_FILE = "manifest.json"  # what one generation wrote: the only files a later one may replace
PARTIAL_MARKER = ".memvit-synthetic-partial"  # in the temporary folder a generation writes into


@dataclass(frozen=True)
class SyntheticInfo:
    """What :func:`generate` produced (or found already complete)."""

    root: Path
    classes: tuple[ActionClass, ...]  # class id = position + 1
    videos: dict[str, list[str]]  # split -> video names
    keyframes: dict[str, int]  # split -> annotated (not excluded) keyframes with at least one box
    boxes: dict[str, int]  # split -> ground-truth person boxes
    class_counts: dict[str, list[int]]  # split -> positive boxes per class id (index 0 = id 1)
    generated: bool  # False when a complete set with the same parameters was already there
    elapsed_s: float

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def ava_config(self) -> dict[str, Any]:
        """PySlowFast ``AVA.*`` keys (and ``MODEL.NUM_CLASSES``) that read this data set."""
        return ava_config(self.root, len(self.classes))


def ava_config(root: str | Path, num_classes: int = len(DEFAULT_CLASSES)) -> dict[str, Any]:
    """Config values for a set at ``root``. Training uses ground-truth boxes only: the detector file
    carries no labels, so listing it in TRAIN_PREDICT_BOX_LISTS would add unlabelled (negative) boxes
    on top of labelled persons."""
    root = Path(root)
    return {
        "AVA.FRAME_DIR": str(root / FRAMES_DIR),
        "AVA.FRAME_LIST_DIR": str(root / FRAME_LISTS_DIR),
        "AVA.ANNOTATION_DIR": str(root / ANNOTATIONS_DIR),
        "AVA.TRAIN_LISTS": [frame_list_file("train")],
        "AVA.TEST_LISTS": [frame_list_file("val")],
        "AVA.TRAIN_GT_BOX_LISTS": [groundtruth_file("train")],
        "AVA.TRAIN_PREDICT_BOX_LISTS": [],
        "AVA.TEST_PREDICT_BOX_LISTS": [predicted_boxes_file("val")],
        "AVA.LABEL_MAP_FILE": LABEL_MAP_FILE,
        "AVA.EXCLUSION_FILE": excluded_file("val"),
        "AVA.GROUNDTRUTH_FILE": groundtruth_file("val"),
        "AVA.DETECTION_SCORE_THRESH": DETECTION_SCORE_THRESH,
        "AVA.FULL_TEST_ON_VAL": True,
        "MODEL.NUM_CLASSES": num_classes,
    }


def _params(videos_train: int, videos_val: int, seconds: int, size: tuple[int, int], seed: int,
            classes: Sequence[ActionClass], jpeg_quality: int, videos: bool = False) -> dict[str, Any]:
    params = {"generator": GENERATOR, "version": GENERATOR_VERSION, "seed": seed, "videos_train": videos_train,
              "videos_val": videos_val, "seconds": seconds, "size": list(size), "jpeg_quality": jpeg_quality,
              "classes": [[c.name, c.label_type, c.behaviour] for c in classes]}
    if videos:  # only then: a set without them stays byte for byte what it was
        params["mp4_and_cvat"] = True
    return params


def _read_meta(root: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((root / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("params", {}).get("generator") == GENERATOR else None


def _is_complete(root: Path, meta: dict[str, Any]) -> bool:
    """Every listed file is there and every frame folder holds exactly its frames (cheap: no decoding)."""
    for name in meta.get("files", []):
        if not (root / name).is_file():
            return False
    for video in meta.get("videos", []):
        folder = root / FRAMES_DIR / video["name"]
        if not folder.is_dir() or sum(1 for _ in folder.iterdir()) != video["frames"]:
            return False
    return True


def _info_from_meta(root: Path, meta: dict[str, Any], generated: bool, elapsed: float) -> SyntheticInfo:
    classes = tuple(ActionClass(*c) for c in meta["params"]["classes"])
    return SyntheticInfo(root=root, classes=classes,
                         videos={s: [v["name"] for v in meta["videos"] if v["split"] == s] for s in SPLITS},
                         keyframes=meta["keyframes"], boxes=meta["boxes"], class_counts=meta["class_counts"],
                         generated=generated, elapsed_s=elapsed)


class DataFolderError(UserError, FileExistsError):
    """The output folder holds something this generator must not replace."""


def _manifest(files: Sequence[str], frames: dict[str, int]) -> dict[str, Any]:
    """What one generation wrote, relative to its folder: files, and frames as ``{video: count}``
    (named by :func:`frame_name`), so the list stays small and exact."""
    return {"generator": GENERATOR, "manifest_version": 1, "files": sorted({*files, MANIFEST_FILE}),
            "frames": dict(sorted(frames.items()))}


def _read_manifest(root: Path) -> dict[str, Any] | None:
    """This generator's manifest in ``root``; for a set written before manifests existed, the same
    lists from its ``meta.json`` (its ``files`` and ``videos``). None when neither is there."""
    try:
        manifest = json.loads((root / MANIFEST_FILE).read_text())
        if isinstance(manifest, dict) and manifest.get("generator") == GENERATOR:
            return manifest
    except (OSError, ValueError):
        pass
    meta = _read_meta(root)
    if meta is None:
        return None
    return _manifest([*meta.get("files", []), META_FILE, README_FILE],
                     {v["name"]: int(v["frames"]) for v in meta.get("videos", [])})


def _manifest_paths(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(files, folders) a manifest names, relative; folders deepest first (for removal)."""
    files = [str(f) for f in manifest.get("files", [])]
    folders = {FRAMES_DIR, FRAME_LISTS_DIR, ANNOTATIONS_DIR, *(str(Path(f).parent) for f in files if "/" in f)}
    for video, count in manifest.get("frames", {}).items():
        files += [f"{FRAMES_DIR}/{video}/{frame_name(video, k)}" for k in range(int(count))]
        folders.add(f"{FRAMES_DIR}/{video}")
    for name in files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataFolderError(f"{MANIFEST_FILE} lists {name!r}, outside its folder; it was not written by "
                                  f"{GENERATOR}", "choose another --out")
    return files, sorted(folders, key=lambda f: -f.count("/"))


def _listing(root: Path, limit: int = 8) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _remove_stale_partials(root: Path) -> None:
    """Temporary folders of earlier runs that were killed (ours: they hold the partial marker and
    their process is gone)."""
    for folder in root.parent.glob(f".{root.name}.partial-*"):
        try:
            pid = int(folder.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if not (folder / PARTIAL_MARKER).is_file() or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue


def _install(staging: Path, root: Path, old: dict[str, Any] | None) -> None:
    """Move the set written in ``staging`` into ``root``. A new or empty ``root``: one rename.
    Otherwise only the files the old manifest lists are replaced (moved aside first, put back if a
    move fails); anything else in ``root`` stays."""
    (staging / PARTIAL_MARKER).unlink()
    if not root.exists() or not any(root.iterdir()):
        if root.exists():
            root.rmdir()
        os.replace(staging, root)
        return
    new_files, _ = _manifest_paths(_read_manifest(staging) or {})
    old_files, old_folders = _manifest_paths(old) if old is not None else ([], [])
    listed = set(old_files)
    clashes = [f for f in new_files if f not in listed and (root / f).exists()]
    if clashes:
        raise DataFolderError(f"{root} holds {len(clashes)} file(s) that this set would write but that its "
                              f"{MANIFEST_FILE} does not list (e.g. {clashes[0]}); nothing was changed",
                              "move them away, or choose another --out")
    backup = root.parent / f".{root.name}.old-{os.getpid()}"
    moved: list[str] = []
    placed: list[str] = []
    try:
        for name in old_files:
            if (root / name).is_file():
                (backup / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / name, backup / name)
                moved.append(name)
        for name in new_files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, root / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            with contextlib.suppress(OSError):
                os.remove(root / name)
        for name in moved:
            os.replace(backup / name, root / name)
        shutil.rmtree(backup, ignore_errors=True)
        raise
    for folder in old_folders:  # the old set's folders the new one does not use, when nothing else is in them
        with contextlib.suppress(OSError):
            (root / folder).rmdir()
    shutil.rmtree(backup, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


_VIDEOS_README = """
videos/<id>.mp4 and cvat/<id>.xml (--videos): each video as H.264 MP4 (frame k of its folder at k/30 s, so
AVA second 900+s is video time s) and its ground truth as a CVAT for video 1.1 export (a 'person' track per
person with one checkbox per class; an 'exclude' box at each excluded keyframe). To use them as your own data
(video seconds from 0: AVA.TIMELINE_START 0.0):
  python -m memvit.data.convert cvat <dir>/cvat/syn-train-*.xml --videos <dir>/videos --out <ann> --split train
  python -m memvit.data.convert cvat <dir>/cvat/syn-val-*.xml --videos <dir>/videos --out <ann> --split val \\
      --label-map <ann>/ava_action_list_v2.2_for_activitynet_2019.pbtxt
"""


def _readme(params: dict[str, Any], classes: Sequence[ActionClass]) -> str:
    h, w = params["size"]
    lines = [
        "Synthetic AVA (memvit.data.synthetic) - NOT real AVA data.",
        "",
        f"Generator {GENERATOR} version {GENERATOR_VERSION}, seed {params['seed']}: "
        f"{params['videos_train']} train + {params['videos_val']} val videos of {params['seconds']} s at {FPS} fps, "
        f"{w}x{h} JPEG (quality {params['jpeg_quality']}).",
        "Stick-figure persons on a textured background; their actions come from a per-person timeline.",
        "Laid out exactly like PySlowFast's AVA v2.2 (frames/, frame_lists/, annotations/): frame 1 is second",
        "900.0, keyframes are seconds 902 ... 900 + seconds - 2, boxes are normalised x1,y1,x2,y2.",
        "Regenerate with: python -m memvit.data.synthetic --out <dir> --seed <seed> --overwrite ...",
        "",
        "Classes (label_id: name [label_type]):",
        *(f"  {i + 1}: {c.name} [{c.label_type}]" for i, c in enumerate(classes)),
        "",
        f"{META_FILE} holds the parameters, per-video persons (colours, sizes) and timelines, counts, and the",
        "AVA.* config values that read this directory.",
    ]
    return "\n".join(lines) + "\n"


def generate(out_dir: str | Path, *, videos_train: int = 16, videos_val: int = 4, seconds: int = 24,
             size: tuple[int, int] = (128, 170), seed: int = 0, classes: Sequence[ActionClass] = DEFAULT_CLASSES,
             jpeg_quality: int = 90, overwrite: bool = False, progress: bool = True,
             cli_names: tuple[str, str] = ("--out", "--overwrite"), videos: bool = False) -> SyntheticInfo:
    """Write a synthetic AVA v2.2 data set to ``out_dir`` (``size`` = (height, width), ``seconds`` per video).

    Deterministic in its arguments. Idempotent: a complete set with the same arguments is left as it is;
    one with other arguments is replaced only with ``overwrite``. Nothing it did not write is ever
    removed: it records what it wrote in ``manifest.json`` and replaces only what that lists; a
    non-empty folder without it (e.g. the real AVA) is refused with :class:`DataFolderError`. The set
    is written into a folder beside ``out_dir`` and moved into place at the end, so a failure midway
    leaves the old contents intact. ``cli_names``: the output and overwrite options its messages name.
    ``videos``: also each video as ``videos/<id>.mp4`` and its ground truth as ``cvat/<id>.xml``
    (:mod:`.export`: a user's own data as it would come, for ``python -m memvit.data.convert cvat``).
    """
    start = time.perf_counter()
    check_classes(classes)
    classes = tuple(classes)
    if videos_train < 1 or videos_val < 1:
        raise SyntheticParameterError("need at least one train and one val video")
    if seconds < 4:
        raise SyntheticParameterError("seconds: need at least 4 (keyframes are seconds 2 ... seconds - 2)")
    if len(size) != 2 or min(size) < 32:
        raise SyntheticParameterError(f"size: (height, width), each at least 32; got {size}")
    if seed < 0:
        raise SyntheticParameterError(f"seed: a non-negative integer, got {seed}")
    if not 1 <= jpeg_quality <= 100:
        raise SyntheticParameterError(f"jpeg_quality: 1 ... 100, got {jpeg_quality}")
    size = (int(size[0]), int(size[1]))
    root = Path(out_dir)
    params = _params(videos_train, videos_val, seconds, size, seed, classes, jpeg_quality, videos)

    if root.exists() and not root.is_dir():
        raise DataFolderError(f"{cli_names[0]} {root} is a file, not a folder", f"choose another {cli_names[0]}")
    old = None
    if root.exists() and any(root.iterdir()):
        old = _read_manifest(root)
        if old is None:  # never touch a folder this generator did not write: it may be the real AVA
            raise DataFolderError(
                f"{cli_names[0]} {root} is not empty and was not written by {GENERATOR} (no {MANIFEST_FILE}): it "
                f"holds {_listing(root)}; nothing was changed",
                f"choose another {cli_names[0]} (a new or empty folder); {cli_names[1]} only replaces a set this "
                f"generator wrote, and only the files its {MANIFEST_FILE} lists")
        meta = _read_meta(root)
        if meta is not None and meta["params"] == params and _is_complete(root, meta):
            if not overwrite:
                return _info_from_meta(root, meta, False, time.perf_counter() - start)
        elif meta is not None and meta["params"] != params and not overwrite:
            changed = ", ".join(f"{k} {meta['params'].get(k)!r} -> {v!r}" for k, v in params.items()
                                if meta["params"].get(k) != v and k != "classes")
            if meta["params"].get("classes") != params["classes"]:
                changed += (", " if changed else "") + "other classes"
            raise DataFolderError(f"{root} holds a synthetic set with other parameters ({changed}); nothing was "
                                  "changed", f"pass {cli_names[1]} to replace it (only the files its "
                                  f"{MANIFEST_FILE} lists; anything else in the folder is kept), or choose another "
                                  f"{cli_names[0]}")

    splits = {s: build_split(s, n, seconds, size, seed, classes) for s, n in zip(SPLITS, (videos_train, videos_val))}
    for s, data in splits.items():  # the promise of this data set: every class in every split
        missing = [classes[i].name for i, n in enumerate(data.class_counts(len(classes))) if n == 0]
        assert not missing, f"{s}: no box for {missing}"

    # Everything is written into a folder beside the target and moved into place at the end: a failure
    # or a kill midway leaves the old set (or the user's folder) exactly as it was.
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(root)
    staging = root.parent / f".{root.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    write_bytes(staging / PARTIAL_MARKER, b"")
    try:
        meta = _write_set(staging, root, splits, params, classes, jpeg_quality, progress, videos)
        _install(staging, root, old)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return _info_from_meta(root, meta, True, time.perf_counter() - start)


def _write_set(staging: Path, root: Path, splits: dict[str, SplitData], params: dict[str, Any],
               classes: Sequence[ActionClass], jpeg_quality: int, progress: bool, videos: bool) -> dict[str, Any]:
    """Write the whole set into ``staging`` (``root`` is where it will live); returns its meta."""
    frames, lists, notes = staging / FRAMES_DIR, staging / FRAME_LISTS_DIR, staging / ANNOTATIONS_DIR
    for folder in (frames, lists, notes):
        folder.mkdir(parents=True, exist_ok=True)
    total = sum(p.num_frames for d in splits.values() for p in d.plans)
    exported = []
    with tqdm(total=total, unit="frame", desc=f"synthetic AVA -> {root}", disable=not progress) as bar:
        for data in splits.values():
            for plan in data.plans:
                if not videos:
                    render_video(plan, frames, jpeg_quality, on_frame=bar.update)
                    continue
                with mp4_writer(staging, plan) as on_image:
                    render_video(plan, frames, jpeg_quality, on_frame=bar.update, on_image=on_image)
                excluded = [sec - FIRST_SECOND for video, sec in data.excluded if video == plan.name]
                exported += [video_file(plan.name), write_cvat(staging, plan, classes, excluded)]

    files = [*exported, f"{ANNOTATIONS_DIR}/{LABEL_MAP_FILE}"]
    write_label_map(notes / LABEL_MAP_FILE, label_map_entries(classes))
    for s, data in splits.items():
        excluded = set(data.excluded)
        write_frame_list(lists / frame_list_file(s), [(p.name, p.num_frames) for p in data.plans])
        write_boxes_csv(notes / groundtruth_file(s), groundtruth_rows(data.rows, excluded), extra_decimals=0)
        write_excluded_timestamps(notes / excluded_file(s), data.excluded)
        write_boxes_csv(notes / predicted_boxes_file(s), data.detections)
        files += [f"{FRAME_LISTS_DIR}/{frame_list_file(s)}", f"{ANNOTATIONS_DIR}/{groundtruth_file(s)}",
                  f"{ANNOTATIONS_DIR}/{excluded_file(s)}", f"{ANNOTATIONS_DIR}/{predicted_boxes_file(s)}"]
    write_text(staging / README_FILE, _readme(params, classes) + (_VIDEOS_README if videos else ""))
    files.append(README_FILE)

    meta = {
        "description": "Synthetic AVA v2.2-format data set (not real AVA data)",
        "params": params,
        "fps": FPS,
        "start_sec": FIRST_SECOND,
        "object_rgb": list(OBJECT_RGB),
        "speech_rgb": list(SPEECH_RGB),
        "signal_rgb": {k: list(v) for k, v in SIGNAL_RGB.items()},
        "signal_seconds": SIGNAL_SECONDS,
        "answer_seconds": list(ANSWER_SECONDS),
        "signal_tint": SIGNAL_TINT,
        "classes": [{"id": i + 1, "name": c.name, "label_type": c.label_type, "behaviour": c.behaviour}
                    for i, c in enumerate(classes)],
        "files": files,
        "keyframes": {s: len({(r.video, r.sec) for r in d.rows} - set(d.excluded)) for s, d in splits.items()},
        "boxes": {s: sum((r.video, r.sec) not in set(d.excluded) for r in d.rows) for s, d in splits.items()},
        "class_counts": {s: d.class_counts(len(classes)) for s, d in splits.items()},
        "plan_attempts": {s: d.attempt + 1 for s, d in splits.items()},
        "ava_config": ava_config(root.resolve(), len(classes)),
        "videos": [_video_meta(p) for d in splits.values() for p in d.plans],
    }
    write_json(staging / META_FILE, meta, indent=1)
    manifest = _manifest([*files, META_FILE], {p.name: p.num_frames for d in splits.values() for p in d.plans})
    write_json(staging / MANIFEST_FILE, manifest, indent=1)
    return meta


def _video_meta(plan: VideoPlan) -> dict[str, Any]:
    return {
        "name": plan.name, "split": plan.split, "index": plan.index, "frames": plan.num_frames,
        "keyframes": [plan.keyframes[0], plan.keyframes[-1]],
        "persons": [{
            "person_id": p.person_id, "height_px": round(p.height, 2), "torso_rgb": list(p.torso_rgb),
            "legs_rgb": list(p.legs_rgb), "skin_rgb": list(p.skin_rgb), "partner": p.partner,
            "timeline": [{"start": s.start, "end": s.end, "movement": s.movement, "facing": s.facing,
                          "carry": s.carry, "wave": s.wave, "interaction": s.interaction, "labels": list(s.labels)}
                         for s in p.segments],
        } for p in plan.persons],
        "signals": [{"centre": s.centre, "colour": s.colour} for s in plan.signals],
    }

