# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Readers and writers for the official AVA v2.2 files, strict about what they accept.

The official scorers and PySlowFast parse these files with bare ``split``/``assert`` and fail
far from the cause (or not at all: a stray column or pixel coordinates score silently wrong).
Every reader here raises :class:`AvaFormatError` naming the file and the 1-based line instead.

* :func:`read_label_map`: the ``.pbtxt`` action lists (v2.2 ``label {...}`` and v2.1 ``item {...}``).
* :func:`read_boxes_csv`: ``ava_{train,val}_v2.2.csv`` and detector/prediction box files.
* :func:`read_excluded_timestamps`, :func:`read_frame_list` (PySlowFast ``frame_lists/*.csv``).
* Writers for each of them (:func:`write_label_map`, :func:`write_boxes_csv`,
  :func:`write_excluded_timestamps`, :func:`write_frame_list`), so every file memvit writes in
  the AVA layout (the synthetic set, ``prepare_ava``'s frame lists, predictions, the demo's
  boxes) is written by one piece of code that its reader here reads back.
* The layout itself: :data:`FPS`, :data:`FIRST_SECOND`, :data:`KEYFRAME_SECONDS`,
  :func:`frame_name`, :func:`sec_to_frame` and the file and folder names PySlowFast's ``AVA.*``
  defaults expect.

:class:`BoxRow` is one CSV row; :class:`BoxTable` holds many rows as NumPy columns, the form the
scorer works on and the cheap way to hand it millions of per-class detections.
"""

from __future__ import annotations

import array
import csv
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..cli import UserError
from ..files import atomic_path, write_text

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

AVA_GROUPS: tuple[str, ...] = ("pose", "person-object", "person-person")
_LABEL_TYPE_GROUPS = {
    "PERSON_MOVEMENT": "pose",
    "OBJECT_MANIPULATION": "person-object",
    "PERSON_INTERACTION": "person-person",
}
# Coordinates this far outside [0, 1] are clipped (rounding in the released files, e.g. 1.0001);
# anything further is an error, most likely pixel coordinates.
CLIP_TOLERANCE = 0.05

# ----------------------------------------------------------------------------- the layout
# AVA's frame folders: frames at 30 fps, frame 1 (``<video>_000001.jpg``) the one shown at second 900.0 of the
# movie, seconds 900 ... 1801 (PySlowFast's ``ffmpeg -ss 900 -t 901 -r 30``); keyframes at whole seconds.
FPS = 30
FIRST_SECOND = 900
EXTRACTED_SECONDS = 901
KEYFRAME_SECONDS = range(902, 1799)  # the seconds AVA annotates (and PySlowFast reads)
FRAMES_DIR, FRAME_LISTS_DIR, ANNOTATIONS_DIR = "frames", "frame_lists", "annotations"  # PySlowFast's layout
LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
FRAME_LIST_HEADER = "original_vido_id video_id frame_id path labels"  # sic: PySlowFast's spelling
LABEL_TYPES: tuple[str, ...] = tuple(_LABEL_TYPE_GROUPS)


def frame_name(video: str, index: int) -> str:
    """File name of 0-based frame ``index`` of a frame folder (files count from 1, as ffmpeg's ``%06d``)."""
    return f"{video}_{index + 1:06d}.jpg"


def sec_to_frame(sec: int, start: float | Fraction = FIRST_SECOND) -> int:
    """Index (0-based) on the 30 fps timeline (a frame folder, or a video read by ``AVA.VIDEO_DIR``) of the
    frame shown at keyframe second ``sec``; ``start``: the video time of timeline frame 0 (AVA: 900 s,
    ``AVA.TIMELINE_START``). A keyframe between two timeline frames takes the nearer one."""
    return round((sec - Fraction(repr(start) if isinstance(start, float) else start)) * FPS)


def frame_list_file(split: str) -> str:
    """``frame_lists/<split>.csv`` (``AVA.TRAIN_LISTS`` / ``AVA.TEST_LISTS``)."""
    return f"{split}.csv"


def groundtruth_file(split: str) -> str:
    """AVA's ground-truth boxes of a split (``AVA.TRAIN_GT_BOX_LISTS``, ``AVA.GROUNDTRUTH_FILE``)."""
    return f"ava_{split}_v2.2.csv"


def excluded_file(split: str) -> str:
    """AVA's keyframes left out of scoring (``AVA.EXCLUSION_FILE``)."""
    return f"ava_{split}_excluded_timestamps_v2.2.csv"


def predicted_boxes_file(split: str) -> str:
    """Person-detector boxes, as PySlowFast names them (``AVA.TEST_PREDICT_BOX_LISTS``)."""
    return f"ava_{split}_predicted_boxes.csv"


class AvaFormatError(UserError, ValueError):
    """A malformed AVA file; ``str()`` reads ``path:line: what is wrong``."""

    def __init__(self, path: PathLike, line: int, message: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        super().__init__(f"{self.path}:{line}: {message}")


def ava_group(action_id: int) -> str:
    """The AVA action group of an id by AVA's fixed ranges (1-14 pose, 15-63 object, 64-80 person)."""
    if 1 <= action_id <= 14:
        return "pose"
    if 15 <= action_id <= 63:
        return "person-object"
    if 64 <= action_id <= 80:
        return "person-person"
    raise ValueError(f"AVA action ids are 1..80, got {action_id}")


# ----------------------------------------------------------------------------- label map


@dataclass(frozen=True)
class LabelMap:
    """The evaluated classes: AVA id -> name, and id -> group (one of :data:`AVA_GROUPS`)."""

    names: dict[int, str]
    groups: dict[int, str]

    @property
    def ids(self) -> list[int]:
        """Class ids in ascending order (the order the scorer reports them in)."""
        return sorted(self.names)


_PBTXT_TOKEN = re.compile(r'\s*(?:(#.*)|("(?:[^"\\]|\\.)*")|([{}:])|([^\s{}:"#]+)|(\S))')


def _pbtxt_tokens(path: PathLike) -> Iterator[tuple[str, str, int]]:
    """(kind, text, line) for each token: kind is 'str', 'punct' or 'word'; comments dropped."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            pos, end = 0, len(line.rstrip("\r\n"))
            while pos < end:
                m = _PBTXT_TOKEN.match(line, pos, end)
                if m is None:  # only trailing whitespace left
                    break
                pos = m.end()
                comment, string, punct, word, bad = m.groups()
                if comment is not None:
                    break
                if string is not None:
                    yield "str", string[1:-1].replace('\\"', '"').replace("\\\\", "\\"), lineno
                elif punct is not None:
                    yield "punct", punct, lineno
                elif word is not None:
                    yield "word", word, lineno
                elif bad is not None:
                    raise AvaFormatError(path, lineno, f"unexpected character {bad!r} (unterminated string?)")


def read_label_map(path: PathLike) -> LabelMap:
    """Read an AVA action list (``.pbtxt``), either style, with any layout.

    ``label { name: "..." label_id: N label_type: PERSON_MOVEMENT }`` (v2.2) gives the group from
    ``label_type``; ``item { name: "..." id: N }`` (v2.1) has none, so the group comes from the id
    range (:func:`ava_group`). Unknown fields are ignored; a block without a name or an id, a
    repeated id or an unknown ``label_type`` is an error.
    """
    names: dict[int, str] = {}
    groups: dict[int, str] = {}
    tokens = _pbtxt_tokens(path)
    for kind, text, block_line in tokens:
        if kind != "word" or text not in ("label", "item"):
            raise AvaFormatError(path, block_line, f"expected a 'label {{' or 'item {{' block, got {text!r}")
        fields = _pbtxt_block(path, tokens, block_line)
        if "name" not in fields or fields["name"][0] != "str":
            raise AvaFormatError(path, block_line, 'block has no quoted name: "..."')
        id_field = fields.get("label_id", fields.get("id"))
        if id_field is None:
            raise AvaFormatError(path, block_line, "block has no id (id: N or label_id: N)")
        try:
            class_id = int(id_field[1])
        except ValueError:
            raise AvaFormatError(path, id_field[2], f"id {id_field[1]!r} is not an integer") from None
        if class_id < 1:
            raise AvaFormatError(path, id_field[2], f"AVA class ids start at 1, got {class_id}")
        if class_id in names:
            raise AvaFormatError(path, id_field[2], f"class id {class_id} appears twice")
        if "label_type" in fields:
            _, label_type, type_line = fields["label_type"]
            if label_type not in _LABEL_TYPE_GROUPS:
                raise AvaFormatError(path, type_line, f"unknown label_type {label_type!r}, expected one of "
                                     + ", ".join(_LABEL_TYPE_GROUPS))
            group = _LABEL_TYPE_GROUPS[label_type]
        else:
            try:
                group = ava_group(class_id)
            except ValueError as e:
                raise AvaFormatError(path, id_field[2], f"{e} (no label_type to take the group from)") from None
        names[class_id] = fields["name"][1]
        groups[class_id] = group
    if not names:
        raise AvaFormatError(path, 1, "no label or item blocks found")
    return LabelMap(names=names, groups=groups)


def _pbtxt_block(path: PathLike, tokens: Iterator[tuple[str, str, int]],
                 block_line: int) -> dict[str, tuple[str, str, int]]:
    """The ``{ field: value ... }`` after a block name, as field -> (kind, value, line)."""
    kind, text, line = next(tokens, ("eof", "", block_line))
    if (kind, text) == ("punct", ":"):  # the text format also allows `item: {`
        kind, text, line = next(tokens, ("eof", "", line))
    if (kind, text) != ("punct", "{"):
        raise AvaFormatError(path, line, f"expected '{{' after the block name, got {text!r}")
    fields: dict[str, tuple[str, str, int]] = {}
    while True:
        kind, text, line = next(tokens, ("eof", "", line))
        if kind == "eof":
            raise AvaFormatError(path, block_line, "block is not closed with '}'")
        if (kind, text) == ("punct", "}"):
            return fields
        if kind != "word":
            raise AvaFormatError(path, line, f"expected a field name, got {text!r}")
        name, name_line = text, line
        kind, text, line = next(tokens, ("eof", "", line))
        if (kind, text) != ("punct", ":"):
            raise AvaFormatError(path, line, f"expected ':' after {name!r}")
        kind, text, line = next(tokens, ("eof", "", line))
        if kind not in ("str", "word"):
            raise AvaFormatError(path, line, f"field {name!r} has no value")
        if name in fields:
            raise AvaFormatError(path, name_line, f"field {name!r} given twice in one block")
        fields[name] = (kind, text, name_line)


def label_map_text(labels: Iterable[tuple[int, str, str]]) -> str:
    """The v2.2 (ActivityNet 2019) action list of ``(label_id, name, label_type)`` entries, in their order:
    ``label { name: "..." label_id: N label_type: T }``; :func:`read_label_map` reads it back."""
    blocks = []
    for label_id, name, label_type in labels:
        if label_type not in _LABEL_TYPE_GROUPS:
            raise ValueError(f"label {name!r}: label_type must be one of {', '.join(LABEL_TYPES)}, got {label_type!r}")
        if "\n" in name or "\r" in name:
            raise ValueError(f"label {name!r}: a label map name cannot hold a line break")
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        blocks.append(f'label {{\n  name: "{quoted}"\n  label_id: {int(label_id)}\n  label_type: {label_type}\n}}\n')
    return "".join(blocks)


def write_label_map(path: PathLike, labels: Iterable[tuple[int, str, str]]) -> None:
    """Write :func:`label_map_text` of ``labels`` to ``path`` atomically."""
    write_text(path, label_map_text(labels))


# ----------------------------------------------------------------------------- box CSVs


@dataclass(frozen=True, slots=True)
class BoxRow:
    """One row of an AVA box CSV.

    ``box`` is (x1, y1, x2, y2) normalised to [0, 1]; ``action`` is the AVA id or None (detector
    rows without a label); ``extra`` is column 8: the person id in ground truth, the score in
    detector and prediction files (None when absent); ``line`` is the 1-based source line (0 when
    the row was not read from a file); ``box_text`` is the four coordinate fields as written
    (``"x1,y1,x2,y2"``, None when not read from a file): PySlowFast tells boxes apart by it.
    """

    video: str
    sec: int
    box: tuple[float, float, float, float]
    action: int | None
    extra: float | None = None
    line: int = 0
    box_text: str | None = field(default=None, compare=False)


def read_boxes_csv(path: PathLike, *, score_threshold: float | None = None) -> list[BoxRow]:
    """Read an AVA box CSV: ground truth (``ava_val_v2.2.csv``), detector boxes or predictions.

    Rows have 7 or 8 columns and no header: ``video_id, timestamp (s), x1, y1, x2, y2,
    action_id (empty or -1 = none), person_id or score``. Coordinates up to
    :data:`CLIP_TOLERANCE` outside [0, 1] are clipped (one warning with the count); further out,
    non-numeric fields and empty boxes (x2 <= x1 or y2 <= y1) are errors naming file and line.
    With ``score_threshold`` only rows whose column 8 is >= it are kept (detector files).
    """
    rows: list[BoxRow] = []
    clipped, first_clipped = 0, 0
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, fields in enumerate(csv.reader(f), 1):
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            row, was_clipped = _parse_box_row(path, lineno, fields)
            if was_clipped:
                clipped += 1
                first_clipped = first_clipped or lineno
            if score_threshold is not None:
                if row.extra is None:
                    raise AvaFormatError(path, lineno, "score_threshold given but the row has no score (column 8)")
                if row.extra < score_threshold:
                    continue
            rows.append(row)
    if clipped:
        logger.warning("%s: clipped %d box(es) with coordinates slightly outside [0, 1] (first at line %d)",
                       os.fspath(path), clipped, first_clipped)
    return rows


def _parse_box_row(path: PathLike, lineno: int, fields: list[str]) -> tuple[BoxRow, bool]:
    if len(fields) not in (7, 8):
        raise AvaFormatError(path, lineno, f"expected 7 or 8 comma-separated columns, got {len(fields)}")
    video = fields[0].strip()
    if not video:
        raise AvaFormatError(path, lineno, "empty video id")
    sec = _parse_int(path, lineno, fields[1], "timestamp")
    coords = []
    for name, text in zip(("x1", "y1", "x2", "y2"), fields[2:6]):
        value = _parse_float(path, lineno, text, name)
        if not -CLIP_TOLERANCE <= value <= 1 + CLIP_TOLERANCE:
            raise AvaFormatError(path, lineno, f"{name} = {value} is outside [0, 1]: boxes must be normalised "
                                 "(pixel coordinates?)")
        coords.append(value)
    clipped = [min(max(v, 0.0), 1.0) for v in coords]
    x1, y1, x2, y2 = clipped
    if x2 <= x1 or y2 <= y1:
        raise AvaFormatError(path, lineno, f"empty box (x1, y1, x2, y2) = {tuple(coords)}: needs x2 > x1 and y2 > y1")
    action_text = fields[6].strip()
    action = None if action_text in ("", "-1") else _parse_int(path, lineno, action_text, "action id")
    if action is not None and action < 1:
        raise AvaFormatError(path, lineno, f"action id {action}: expected a positive id, or empty/-1 for none")
    extra = None
    if len(fields) == 8 and fields[7].strip():
        extra = _parse_float(path, lineno, fields[7], "column 8 (person id / score)")
    return BoxRow(video, sec, (x1, y1, x2, y2), action, extra, lineno, ",".join(fields[2:6])), clipped != coords


def _parse_int(path: PathLike, lineno: int, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise AvaFormatError(path, lineno, f"{what} {text!r} is not an integer") from None


def _parse_float(path: PathLike, lineno: int, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AvaFormatError(path, lineno, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise AvaFormatError(path, lineno, f"{what} {text!r} is not finite")
    return value


@dataclass(frozen=True)
class BoxTable:
    """Many :class:`BoxRow` as NumPy columns: what the scorer consumes, without a Python object per row.

    ``video`` (N,) str; ``sec`` (N,) int64; ``box`` (N, 4) float64 x1, y1, x2, y2; ``action``
    (N,) int64 with -1 for none; ``extra`` (N,) float64 with NaN for none (the score of a detection).
    """

    video: np.ndarray
    sec: np.ndarray
    box: np.ndarray
    action: np.ndarray
    extra: np.ndarray

    def __post_init__(self) -> None:
        cols = {"video": np.asarray(self.video, dtype=str), "sec": np.asarray(self.sec, dtype=np.int64),
                "box": np.asarray(self.box, dtype=np.float64).reshape(-1, 4),
                "action": np.asarray(self.action, dtype=np.int64), "extra": np.asarray(self.extra, dtype=np.float64)}
        n = len(cols["video"])
        for name, col in cols.items():
            if len(col) != n or (name != "box" and col.ndim != 1):
                raise ValueError(f"BoxTable column {name!r} has shape {col.shape}, expected {n} rows")
            object.__setattr__(self, name, col)

    def __len__(self) -> int:
        return len(self.video)

    @classmethod
    def from_rows(cls, rows: Iterable[BoxRow]) -> BoxTable:
        """Columns of ``rows``, in their order."""
        rows = list(rows)
        return cls(video=[r.video for r in rows], sec=[r.sec for r in rows],
                   box=np.array([r.box for r in rows], dtype=np.float64).reshape(-1, 4),
                   action=[-1 if r.action is None else r.action for r in rows],
                   extra=[math.nan if r.extra is None else r.extra for r in rows])

    @classmethod
    def from_class_scores(cls, videos: Sequence[str], secs: Sequence[int] | np.ndarray, boxes: np.ndarray,
                          scores: np.ndarray, class_ids: Sequence[int]) -> BoxTable:
        """One detection per (box, class): N boxes with an (N, K) score matrix for ``class_ids``.

        Rows are box-major (all classes of box 0, then box 1, ...), the order in which PySlowFast
        hands its model's outputs to the scorer, so ``frame_map(mode="pyslowfast")`` on this
        table reproduces its numbers. Tensors are accepted if they are on the CPU.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64)
        class_ids = np.asarray(class_ids, dtype=np.int64)
        n, k = len(boxes), len(class_ids)
        if scores.shape != (n, k):
            raise ValueError(f"scores has shape {scores.shape}, expected ({n}, {k}) for {n} boxes and {k} classes")
        return cls(video=np.repeat(np.asarray(videos, dtype=str), k), sec=np.repeat(np.asarray(secs), k),
                   box=np.repeat(boxes, k, axis=0), action=np.tile(class_ids, n), extra=scores.reshape(-1))


def format_timestamp(t: float) -> str:
    """AVA timestamps are whole seconds, 4-digit zero-padded (``0902``); other times keep milliseconds."""
    if isinstance(t, int):  # the common case, fast: millions of prediction rows
        return f"{t:04d}"
    nearest = round(t)
    return f"{nearest:04d}" if abs(t - nearest) < 1e-6 else f"{t:.3f}"


def box_csv_row(video: str, sec: float, box: Sequence[float], action: int | None, extra: float | None, *,
                extra_decimals: int = 6) -> list[str]:
    """The fields of one box CSV row, for a ``csv.writer`` (which quotes a video id holding a comma, quote
    or newline): the timestamp by :func:`format_timestamp`, coordinates with 3 decimals as in the released
    files, column 8 with ``extra_decimals`` (6 for a score, 0 for a person id); a missing action
    (None or negative) or column 8 (None or NaN) is an empty field."""
    x1, y1, x2, y2 = box
    return [video, format_timestamp(sec), f"{x1:.3f}", f"{y1:.3f}", f"{x2:.3f}", f"{y2:.3f}",
            "" if action is None or action < 0 else str(action),
            "" if extra is None or extra != extra else f"{extra:.{extra_decimals}f}"]  # extra != extra: NaN


def write_boxes_csv(path: PathLike, rows: Iterable[BoxRow] | BoxTable, *, extra_decimals: int = 6) -> None:
    """Write rows as an AVA CSV the official scorers read: ``video,0902,x1,y1,x2,y2,action,score``
    (:func:`box_csv_row`; ``extra_decimals=0`` writes column 8 as the person id of ground truth)."""
    if isinstance(rows, BoxTable):
        t = rows
        items: Iterable[tuple] = zip(t.video.tolist(), t.sec.tolist(), t.box.tolist(), t.action.tolist(),
                                     t.extra.tolist())
    else:
        items = ((r.video, r.sec, r.box, r.action, r.extra) for r in rows)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(box_csv_row(*item, extra_decimals=extra_decimals)
                                                     for item in items)


# ----------------------------------------------------------------------------- other files


def read_excluded_timestamps(path: PathLike) -> set[tuple[str, int]]:
    """Read ``ava_*_excluded_timestamps_v2.2.csv``: (video_id, second) keyframes left out of scoring."""
    keys: set[tuple[str, int]] = set()
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, fields in enumerate(csv.reader(f), 1):
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != 2:
                raise AvaFormatError(path, lineno, f"expected 2 columns (video_id, timestamp), got {len(fields)}")
            video = fields[0].strip()
            if not video:
                raise AvaFormatError(path, lineno, "empty video id")
            keys.add((video, _parse_int(path, lineno, fields[1], "timestamp")))
    return keys


def write_excluded_timestamps(path: PathLike, keys: Iterable[tuple[str, int]]) -> None:
    """Write (video_id, second) keyframes, in the given order, as ``video,0902`` rows atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows((video, f"{int(sec):04d}") for video, sec in keys)


def read_frame_list(path: PathLike) -> dict[str, list[str]]:
    """Read a PySlowFast frame list (``frame_lists/train.csv``): video -> frame paths by frame id.

    Space-separated, one header line (``original_vido_id video_id frame_id path labels``), five
    columns. The frame ids of each video must be exactly 0..n-1 (in any order): a repeated or
    missing id is an error naming the line, since one missing frame would shift every clip
    after it.
    """
    ids: dict[str, array.array] = {}
    lines: dict[str, array.array] = {}
    paths: dict[str, list[str]] = {}
    index_of: dict[str, tuple[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().split()
        if len(header) != 5 or header[2].lstrip("-").isdigit():
            raise AvaFormatError(path, 1, f"expected the header line '{FRAME_LIST_HEADER}'")
        for lineno, line in enumerate(f, 2):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise AvaFormatError(path, lineno, f"expected 5 space-separated columns, got {len(fields)}")
            video, video_index, frame_text, frame_path, _ = fields
            frame_id = _parse_int(path, lineno, frame_text, "frame_id")
            if frame_id < 0:
                raise AvaFormatError(path, lineno, f"frame_id {frame_id} is negative")
            _parse_int(path, lineno, video_index, "video_id")
            if video not in ids:
                ids[video], lines[video], paths[video] = array.array("q"), array.array("q"), []
                index_of[video] = (video_index, lineno)
            elif index_of[video][0] != video_index:
                raise AvaFormatError(path, lineno, f"video {video} has video_id {video_index} here but "
                                     f"{index_of[video][0]} at line {index_of[video][1]}")
            ids[video].append(frame_id)
            lines[video].append(lineno)
            paths[video].append(frame_path)
    return {video: _frames_in_order(path, video, ids[video], lines[video], paths[video]) for video in ids}


def _frames_in_order(path: PathLike, video: str, ids: array.array, lines: array.array, paths: list[str]) -> list[str]:
    n = len(ids)
    frame_ids = np.frombuffer(ids, dtype=np.int64)
    if np.array_equal(frame_ids, np.arange(n)):
        return paths
    order = np.argsort(frame_ids, kind="stable")
    sorted_ids = frame_ids[order]
    expected = np.arange(n)
    wrong = np.flatnonzero(sorted_ids != expected)
    if not wrong.size:
        return [paths[i] for i in order]
    bad = int(wrong[0])
    if bad > 0 and sorted_ids[bad] == sorted_ids[bad - 1]:
        first, again = sorted(lines[i] for i in order[bad - 1:bad + 1])
        raise AvaFormatError(path, again, f"video {video}: frame_id {sorted_ids[bad]} repeated (first at line {first})")
    missing = int(expected[bad])
    raise AvaFormatError(path, lines[order[bad]], f"video {video}: frame_id {missing} is missing "
                         f"(next listed id is {sorted_ids[bad]}); frame ids must be 0..n-1")


def frame_list_chunks(videos: Iterable[tuple[str, int]]) -> Iterator[str]:
    """A frame list as text: the header, then one chunk per ``(video, frame count)`` (its ``video_id`` is
    its position): ``<video> <index> <frame_id> <video>/<frame_name> ""`` rows, space separated."""
    yield FRAME_LIST_HEADER + "\n"
    for index, (video, count) in enumerate(videos):
        if not video or any(c.isspace() for c in video):
            raise ValueError(f"video id {video!r}: a frame list is space-separated, ids cannot be empty or hold "
                             "whitespace")
        yield "".join(f'{video} {index} {k} {video}/{frame_name(video, k)} ""\n' for k in range(count))


def write_frame_list(path: PathLike, videos: Iterable[tuple[str, int]]) -> None:
    """Write :func:`frame_list_chunks` to ``path`` atomically, streamed (AVA's train list has 6 million rows)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(frame_list_chunks(videos))
