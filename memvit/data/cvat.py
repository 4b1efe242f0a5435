# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""CVAT's "CVAT for video 1.1" XML: the one reader and writer of it (the converter, the synthetic set and
the tests all use these).

The format (CVAT's published "XML annotation format", interpolation mode) in the parts read here::

    <annotations>
      <version>1.1</version>
      <meta>
        <task>                                  (<job> in a job's export)
          <size>, <start_frame>, <stop_frame>, <frame_filter>step=N</frame_filter>
          <labels><label><name>person</name>
            <attributes><attribute><name>walk</name><input_type>checkbox</input_type>
              <default_value>false</default_value><values>...</values></attribute>...</attributes>
          </label>...</labels>
          <original_size><width>W</width><height>H</height></original_size>
          <source>video.mp4</source>          (task exports; older versions put it in <meta>)
        </task>
      </meta>
      <track id="0" label="person" source="manual" group_id="3">
        <box frame="120" keyframe="1" outside="0" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00"
             z_order="0"><attribute name="walk">true</attribute></box>
        ...
      </track>
    </annotations>

Frame numbers are the source video's frame indices (``start_frame + k * step``). CVAT writes a track's
box at every frame from its first keyframe on, interpolated between keyframes; a box with
``outside="1"`` ends the track's visibility until its next box. :meth:`Track.box_at` applies the same
rule to a file holding keyframes only, so both read alike. A box's attributes carry over from the box
before it when absent (CVAT's own rule) and start from the label's declared defaults.

:func:`read_video_annotations` reads the ``annotations.xml`` of an export, or the ZIP CVAT downloads (with
or without its images). Every reading error is a :class:`CvatFormatError` naming the file, the line and what
is wrong. Project exports (tracks with ``task_id``) and "CVAT for images" exports are refused with a hint.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from ..cli import UserError
from ..files import write_text

PathLike = str | os.PathLike
VERSION = "1.1"
UNDEFINED = "__undefined__"  # CVAT's "no value" of a select or radio attribute
INPUT_TYPES = ("select", "checkbox", "radio", "number", "text")
ANNOTATIONS_XML = "annotations.xml"  # its name in the ZIP CVAT's export downloads
OTHER_SHAPES = ("polygon", "polyline", "points", "cuboid", "ellipse", "mask", "skeleton")  # read past, counted


class CvatFormatError(UserError, ValueError):
    """A CVAT file memvit cannot read; ``str()`` reads ``path:line: what is wrong``."""

    def __init__(self, path: PathLike, line: int, message: str, hint: str | None = None) -> None:
        self.path, self.line = os.fspath(path), line
        super().__init__(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}", hint)


@dataclass(frozen=True)
class AttributeSpec:
    """A label's attribute as ``<meta>`` declares it (``values``: the choices of a select or radio)."""

    name: str
    input_type: str = "checkbox"
    default: str = "false"
    values: tuple[str, ...] = ("false",)
    mutable: bool = True


@dataclass(frozen=True)
class Label:
    name: str
    attributes: tuple[AttributeSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Box:
    """One ``<box>`` of a track: pixels of the source frame ``frame``; ``attributes`` as (name, value)."""

    frame: int
    xtl: float
    ytl: float
    xbr: float
    ybr: float
    outside: bool = False
    occluded: bool = False
    keyframe: bool = True
    rotation: float = 0.0  # degrees, about the box centre
    attributes: tuple[tuple[str, str], ...] = ()
    line: int = field(default=0, compare=False)

    def extent(self) -> tuple[float, float, float, float]:
        """The axis-aligned (x1, y1, x2, y2) in pixels, of the rotated box when ``rotation`` is set."""
        if not self.rotation:
            return self.xtl, self.ytl, self.xbr, self.ybr
        cx, cy = (self.xtl + self.xbr) / 2, (self.ytl + self.ybr) / 2
        w, h = (self.xbr - self.xtl) / 2, (self.ybr - self.ytl) / 2
        c, s = abs(math.cos(math.radians(self.rotation))), abs(math.sin(math.radians(self.rotation)))
        hw, hh = w * c + h * s, w * s + h * c
        return cx - hw, cy - hh, cx + hw, cy + hh


@dataclass(frozen=True)
class Track:
    """A ``<track>`` of boxes, ordered by frame (its other shapes are not kept)."""

    id: int
    label: str
    boxes: tuple[Box, ...]
    group: int = 0
    source: str = "manual"
    line: int = field(default=0, compare=False)

    @cached_property
    def frames(self) -> list[int]:
        return [b.frame for b in self.boxes]

    def box_at(self, frame: int, last_frame: int | None = None) -> Box | None:
        """The track's box on ``frame``, None where it is not visible (CVAT's interpolation): the box written
        for that frame; else, after a visible box, the linear interpolation toward the next box (attributes
        of the earlier one), or that box itself up to ``last_frame`` when no box follows."""
        i = bisect.bisect_right(self.frames, frame) - 1
        if i < 0:
            return None
        before = self.boxes[i]
        if before.frame == frame or before.outside:
            return None if before.outside else before
        if i + 1 < len(self.boxes):
            after = self.boxes[i + 1]
            t = (frame - before.frame) / (after.frame - before.frame)
            xtl, ytl, xbr, ybr = (a + (b - a) * t for a, b in zip(
                (before.xtl, before.ytl, before.xbr, before.ybr), (after.xtl, after.ytl, after.xbr, after.ybr)))
            return replace(before, frame=frame, xtl=xtl, ytl=ytl, xbr=xbr, ybr=ybr, keyframe=False)
        if last_frame is not None and frame > last_frame:
            return None
        return replace(before, frame=frame, keyframe=False)


@dataclass(frozen=True)
class VideoAnnotations:
    """One CVAT for video export: a task's (or a job's) labels, tracks and the frames it covers.

    ``start_frame``/``stop_frame``: the source frames of the task (``stop_frame`` None when the file does
    not say); ``frame_step``: the task's frame filter; ``width``/``height``: ``original_size``;
    ``source``: the video's file name; ``skipped_shapes``: track shapes other than boxes, read past.
    """

    labels: tuple[Label, ...]
    tracks: tuple[Track, ...]
    source: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    start_frame: int = 0
    stop_frame: int | None = None
    frame_step: int = 1
    name: str = ""
    kind: str = "task"
    skipped_shapes: int = field(default=0, compare=False)

    def label(self, name: str) -> Label | None:
        return next((label for label in self.labels if label.name == name), None)

    @property
    def last_frame(self) -> int | None:
        """The last source frame the task covers (``stop_frame``, else from ``size``)."""
        if self.stop_frame is not None:
            return self.stop_frame
        return None if self.size is None else self.start_frame + (self.size - 1) * self.frame_step


# ----------------------------------------------------------------------------- reading


class _Node:
    """An element of ``<meta>`` (small: kept as a tree)."""

    __slots__ = ("tag", "attrs", "children", "text", "line")

    def __init__(self, tag: str, attrs: dict[str, str], line: int) -> None:
        self.tag, self.attrs, self.line = tag, attrs, line
        self.children: list[_Node] = []
        self.text = ""

    def child(self, tag: str) -> _Node | None:
        return next((c for c in self.children if c.tag == tag), None)


class _Reader:
    """expat handlers: ``<meta>`` as a small tree, tracks straight into :class:`Track` s (an export of a
    long video holds a box per frame per person: millions of elements, never built as a tree)."""

    def __init__(self, path: PathLike, parser: Any) -> None:
        self.path, self.parser = path, parser
        self.depth = 0
        self.root_seen = False
        self.version: tuple[str, int] | None = None
        self.text: list[str] | None = None
        self.meta: _Node | None = None
        self.meta_stack: list[_Node] = []
        self.tracks: list[Track] = []
        self.track: dict[str, Any] | None = None
        self.box: dict[str, Any] | None = None
        self.attribute: tuple[str, int] | None = None
        self.skipped = 0
        self.other_depth = 0  # inside a shape that is not a box

    def error(self, message: str, line: int | None = None, hint: str | None = None) -> CvatFormatError:
        return CvatFormatError(self.path, self.parser.CurrentLineNumber if line is None else line, message, hint)

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        line = self.parser.CurrentLineNumber
        self.depth += 1
        if self.depth == 1:
            if tag != "annotations":
                raise self.error(f"the root element is <{tag}>, not <annotations>: not a CVAT XML export")
            self.root_seen = True
        elif self.meta_stack:
            node = _Node(tag, attrs, line)
            self.meta_stack[-1].children.append(node)
            self.meta_stack.append(node)
        elif self.other_depth:
            self.other_depth += 1
        elif self.depth == 2:
            self._top_level(tag, attrs, line)
        elif self.track is not None and self.depth == 3:
            if tag == "box":
                self.box = {"attrs": attrs, "line": line, "attributes": []}
            elif tag in OTHER_SHAPES:
                self.skipped += 1
                self.other_depth = 1
            else:
                raise self.error(f"unexpected <{tag}> in <track id={self.track['id']}>")
        elif self.box is not None and self.depth == 4 and tag == "attribute":
            if "name" not in attrs:
                raise self.error("<attribute> without a name=\"...\"")
            self.attribute = (attrs["name"], line)
            self.text = []
        else:
            raise self.error(f"unexpected <{tag}>")

    def _top_level(self, tag: str, attrs: dict[str, str], line: int) -> None:
        if tag == "version":
            self.text = []
        elif tag == "meta":
            self.meta = _Node(tag, attrs, line)
            self.meta_stack = [self.meta]
        elif tag == "track":
            if "task_id" in attrs:
                raise self.error("a project export (tracks with task_id): memvit reads one task at a time",
                                 hint="export each task (Actions > Export task dataset > CVAT for video 1.1)")
            for name in ("id", "label"):
                if name not in attrs:
                    raise self.error(f"<track> without {name}=\"...\"")
            self.track = {"id": _int(self, attrs["id"], "track id", line), "label": attrs["label"], "line": line,
                          "group": _int(self, attrs.get("group_id", "0"), "group_id", line),
                          "source": attrs.get("source", "manual"), "boxes": []}
        elif tag in ("image", "tag"):
            raise self.error(f"<{tag}> elements: this is a 'CVAT for images' export",
                             hint="export the task as 'CVAT for video 1.1'")
        else:
            raise self.error(f"unexpected <{tag}> in <annotations>")

    def chars(self, data: str) -> None:
        if self.meta_stack:
            self.meta_stack[-1].text += data
        elif self.text is not None:
            self.text.append(data)

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.meta_stack:
            self.meta_stack.pop()
        elif self.other_depth:
            self.other_depth -= 1
        elif tag == "version" and self.depth == 1:
            self.version = ("".join(self.text or []).strip(), self.parser.CurrentLineNumber)
            self.text = None
        elif tag == "attribute" and self.attribute is not None:
            self.box["attributes"].append((self.attribute[0], "".join(self.text or [])))
            self.attribute, self.text = None, None
        elif tag == "box" and self.box is not None:
            self.track["boxes"].append(_box(self, self.box))
            self.box = None
        elif tag == "track" and self.track is not None:
            self.tracks.append(_track(self, self.track))
            self.track = None


def _int(reader: _Reader, text: str, what: str, line: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise reader.error(f"{what} {text!r} is not an integer", line) from None


def _flag(reader: _Reader, attrs: dict[str, str], name: str, default: str, line: int) -> bool:
    value = attrs.get(name, default).strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise reader.error(f"<box {name}={value!r}>: expected 0 or 1", line)
    return value in ("1", "true")


def _box(reader: _Reader, raw: dict[str, Any]) -> Box:
    attrs, line = raw["attrs"], raw["line"]
    where = f"<box> of track {reader.track['id']}"
    values = {}
    for name in ("xtl", "ytl", "xbr", "ybr"):
        if name not in attrs:
            raise reader.error(f"{where} has no {name}=\"...\"", line)
        try:
            values[name] = float(attrs[name])
        except ValueError:
            raise reader.error(f"{where}: {name}={attrs[name]!r} is not a number", line) from None
        if values[name] != values[name] or abs(values[name]) == float("inf"):
            raise reader.error(f"{where}: {name}={attrs[name]!r} is not finite", line)
    if "frame" not in attrs:
        raise reader.error(f"{where} has no frame=\"...\"", line)
    frame = _int(reader, attrs["frame"], f"{where}: frame", line)
    if frame < 0:
        raise reader.error(f"{where}: frame {frame} is negative", line)
    try:
        rotation = float(attrs.get("rotation", 0))
    except ValueError:
        raise reader.error(f"{where}: rotation={attrs['rotation']!r} is not a number", line) from None
    return Box(frame, values["xtl"], values["ytl"], values["xbr"], values["ybr"],
               outside=_flag(reader, attrs, "outside", "0", line), occluded=_flag(reader, attrs, "occluded", "0", line),
               keyframe=_flag(reader, attrs, "keyframe", "1", line), rotation=rotation,
               attributes=tuple(raw["attributes"]), line=line)


def _track(reader: _Reader, raw: dict[str, Any]) -> Track:
    boxes = sorted(raw["boxes"], key=lambda b: b.frame)
    for a, b in zip(boxes, boxes[1:]):
        if a.frame == b.frame:
            first, again = sorted((a.line, b.line))
            raise reader.error(f"track {raw['id']}: frame {a.frame} has two boxes (first at line {first})", again)
    return Track(raw["id"], raw["label"], tuple(boxes), raw["group"], raw["source"], raw["line"])


def _text(node: _Node | None, tag: str) -> tuple[str, int] | None:
    found = node.child(tag) if node is not None else None
    return None if found is None else (found.text.strip(), found.line)


def _meta_int(reader: _Reader, node: _Node | None, tag: str) -> int | None:
    found = _text(node, tag)
    if found is None or found[0] == "":
        return None
    value = _int(reader, found[0], f"<{tag}>", found[1])
    if value < 0:
        raise reader.error(f"<{tag}> {value} is negative", found[1])
    return value


def _labels(reader: _Reader, task: _Node) -> tuple[Label, ...]:
    labels = task.child("labels")
    if labels is None:
        raise reader.error(f"<{task.tag}> has no <labels>", task.line)
    out = []
    for node in labels.children:
        if node.tag != "label":
            continue
        name = _text(node, "name")
        if name is None:
            raise reader.error("<label> without a <name>", node.line)
        specs = []
        for attr in (node.child("attributes").children if node.child("attributes") is not None else []):
            attr_name = _text(attr, "name")
            if attr_name is None:
                raise reader.error(f"an <attribute> of label {name[0]!r} has no <name>", attr.line)
            input_type, type_line = _text(attr, "input_type") or ("text", attr.line)
            input_type = input_type.lower() or "text"
            if input_type not in INPUT_TYPES:
                raise reader.error(f"attribute {attr_name[0]!r}: unknown <input_type> {input_type!r} (expected one "
                                   f"of {', '.join(INPUT_TYPES)})", type_line)
            values = attr.child("values")
            specs.append(AttributeSpec(
                attr_name[0], input_type, (_text(attr, "default_value") or ("", 0))[0],
                tuple(v.strip() for v in values.text.split("\n") if v.strip()) if values is not None else (),
                (_text(attr, "mutable") or ("true", 0))[0].lower() != "false"))
        out.append(Label(name[0], tuple(specs)))
    return tuple(out)


def _annotations(reader: _Reader) -> VideoAnnotations:
    if reader.version is None:
        raise reader.error("no <version> in <annotations>", 1, hint="export as 'CVAT for video 1.1'")
    if reader.version[0] != VERSION:
        raise reader.error(f"<version> {reader.version[0]!r}: memvit reads CVAT XML {VERSION}", reader.version[1],
                           hint="export as 'CVAT for video 1.1'")
    if reader.meta is None:
        raise reader.error("no <meta> in <annotations>", 1)
    if reader.meta.child("project") is not None:
        raise reader.error("a project export: memvit reads one task at a time", reader.meta.child("project").line,
                           hint="export each task (Actions > Export task dataset > CVAT for video 1.1)")
    task = reader.meta.child("task") or reader.meta.child("job")
    if task is None:
        raise reader.error("<meta> holds neither <task> nor <job>", reader.meta.line)
    labels = _labels(reader, task)
    declared = {label.name: label for label in labels}
    frame_filter = (_text(task, "frame_filter") or ("", 0))
    step = 1
    if frame_filter[0]:
        match = re.fullmatch(r"step\s*=\s*(\d+)", frame_filter[0])
        if match is None or int(match.group(1)) < 1:
            raise reader.error(f"<frame_filter> {frame_filter[0]!r}: expected 'step=N'", frame_filter[1])
        step = int(match.group(1))
    size_node = task.child("original_size") or reader.meta.child("original_size")
    source = _text(task, "source") or _text(reader.meta, "source")
    tracks = []
    for track in reader.tracks:
        label = declared.get(track.label)
        if label is None:
            raise reader.error(f"track {track.id} has label {track.label!r}, which <labels> does not declare",
                               track.line)
        tracks.append(replace(track, boxes=_with_attributes(label, track.boxes)))
    ids = {}
    for track in tracks:
        if track.id in ids:
            raise reader.error(f"track id {track.id} is used twice (first at line {ids[track.id]})", track.line)
        ids[track.id] = track.line
    return VideoAnnotations(
        labels=labels, tracks=tuple(t for t in tracks if t.boxes), source=source[0] if source else None,
        width=_meta_int(reader, size_node, "width"), height=_meta_int(reader, size_node, "height"),
        size=_meta_int(reader, task, "size"), start_frame=_meta_int(reader, task, "start_frame") or 0,
        stop_frame=_meta_int(reader, task, "stop_frame"), frame_step=step,
        name=(_text(task, "name") or ("", 0))[0], kind=task.tag, skipped_shapes=reader.skipped)


def _with_attributes(label: Label, boxes: Sequence[Box]) -> tuple[Box, ...]:
    """Each box's full attribute set: the label's defaults, overridden by the boxes before it, then its own."""
    current = {spec.name: spec.default for spec in label.attributes}
    out = []
    for box in boxes:
        current.update(box.attributes)
        out.append(replace(box, attributes=tuple(current.items())))
    return tuple(out)


def read_video_annotations(path: PathLike) -> VideoAnnotations:
    """Read a "CVAT for video 1.1" export: a task's or a job's ``annotations.xml``, or the ZIP CVAT downloads
    holding it (its errors then name ``<zip>:annotations.xml``)."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    shown = os.fspath(path)
    try:
        with contextlib.ExitStack() as stack:
            if zipfile.is_zipfile(path):
                archive = stack.enter_context(zipfile.ZipFile(path))
                if ANNOTATIONS_XML not in archive.namelist():
                    raise CvatFormatError(path, 0, f"a ZIP without {ANNOTATIONS_XML}",
                                          "export the task as 'CVAT for video 1.1'")
                shown = f"{shown}:{ANNOTATIONS_XML}"
                source = stack.enter_context(archive.open(name=ANNOTATIONS_XML, mode="r"))
            else:
                source = stack.enter_context(open(path, "rb"))
            reader = _Reader(shown, parser)
            parser.StartElementHandler, parser.EndElementHandler = reader.start, reader.end
            parser.CharacterDataHandler = reader.chars
            parser.ParseFile(source)
    except expat.ExpatError as error:
        raise CvatFormatError(shown, error.lineno, f"not well-formed XML ({expat.ErrorString(error.code)}, "
                                                   f"column {error.offset + 1})") from None
    except (OSError, zipfile.BadZipFile) as error:
        raise CvatFormatError(shown, 0, f"cannot read it ({getattr(error, 'strerror', None) or error})") from None
    if not reader.root_seen:
        raise CvatFormatError(shown, 1, "empty file")
    return _annotations(reader)


# ----------------------------------------------------------------------------- writing


def _element(indent: int, tag: str, text: Any) -> str:
    return f"{'  ' * indent}<{tag}>{escape(str(text))}</{tag}>\n"


def _label_xml(label: Label) -> Iterable[str]:
    yield "        <label>\n"
    yield _element(5, "name", label.name)
    yield _element(5, "type", "any")
    yield "          <attributes>\n"
    for spec in label.attributes:
        yield "            <attribute>\n"
        yield _element(7, "name", spec.name)
        yield _element(7, "mutable", str(spec.mutable))
        yield _element(7, "input_type", spec.input_type)
        yield _element(7, "default_value", spec.default)
        yield _element(7, "values", "\n".join(spec.values))
        yield "            </attribute>\n"
    yield "          </attributes>\n"
    yield "        </label>\n"


def _box_xml(box: Box, decimals: int) -> Iterable[str]:
    fields = {"frame": box.frame, "keyframe": int(box.keyframe), "outside": int(box.outside),
              "occluded": int(box.occluded), "xtl": f"{box.xtl:.{decimals}f}", "ytl": f"{box.ytl:.{decimals}f}",
              "xbr": f"{box.xbr:.{decimals}f}", "ybr": f"{box.ybr:.{decimals}f}", "z_order": 0}
    if box.rotation:
        fields["rotation"] = f"{box.rotation:.2f}"
    opening = " ".join(f"{k}={quoteattr(str(v))}" for k, v in fields.items())
    if not box.attributes:
        yield f"    <box {opening}>\n    </box>\n"
        return
    yield f"    <box {opening}>\n"
    for name, value in box.attributes:
        yield f"      <attribute name={quoteattr(name)}>{escape(value)}</attribute>\n"
    yield "    </box>\n"


def video_annotations_xml(annotations: VideoAnnotations, *, decimals: int = 2) -> str:
    """``annotations`` as "CVAT for video 1.1" XML text, laid out as CVAT writes it (boxes with 2 decimals)."""
    a = annotations
    stop = a.last_frame if a.last_frame is not None else max((b.frame for t in a.tracks for b in t.boxes), default=0)
    size = a.size if a.size is not None else (stop - a.start_frame) // a.frame_step + 1
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n', _element(1, "version", VERSION),
             "  <meta>\n", f"    <{a.kind}>\n", _element(3, "id", 0), _element(3, "name", a.name),
             _element(3, "size", size), _element(3, "mode", "interpolation"), _element(3, "overlap", 0),
             _element(3, "bugtracker", ""), _element(3, "subset", "default"),
             _element(3, "start_frame", a.start_frame), _element(3, "stop_frame", stop),
             _element(3, "frame_filter", f"step={a.frame_step}" if a.frame_step != 1 else ""),
             "      <segments>\n        <segment>\n", _element(5, "id", 0), _element(5, "start", 0),
             _element(5, "stop", size - 1), _element(5, "url", ""), "        </segment>\n      </segments>\n",
             "      <labels>\n"]
    for label in a.labels:
        parts.extend(_label_xml(label))
    parts.append("      </labels>\n")
    if a.width is not None and a.height is not None:
        parts += ["      <original_size>\n", _element(4, "width", a.width), _element(4, "height", a.height),
                  "      </original_size>\n"]
    if a.source is not None:
        parts.append(_element(3, "source", a.source))
    parts += [f"    </{a.kind}>\n", "  </meta>\n"]
    for track in a.tracks:
        group = f" group_id={quoteattr(str(track.group))}" if track.group else ""
        parts.append(f"  <track id={quoteattr(str(track.id))} label={quoteattr(track.label)} "
                     f"source={quoteattr(track.source)}{group}>\n")
        for box in track.boxes:
            parts.extend(_box_xml(box, decimals))
        parts.append("  </track>\n")
    parts.append("</annotations>\n")
    return "".join(parts)


def write_video_annotations(path: PathLike, annotations: VideoAnnotations, *, decimals: int = 2) -> None:
    """Write :func:`video_annotations_xml` to ``path`` atomically."""
    write_text(path, video_annotations_xml(annotations, decimals=decimals))


def checkbox_label(name: str, actions: Sequence[str]) -> Label:
    """A label whose actions are checkboxes (mutable, default false): the layout memvit writes."""
    return Label(name, tuple(AttributeSpec(action, "checkbox", "false", ("false",), True) for action in actions))


__all__ = ["UNDEFINED", "VERSION", "AttributeSpec", "Box", "CvatFormatError", "Label", "Track", "VideoAnnotations",
           "checkbox_label", "read_video_annotations", "video_annotations_xml", "write_video_annotations"]
