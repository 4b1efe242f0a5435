# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Pictures of streamed detections: boxes and labels on frames, the score timeline, the person timeline.

Label placement is a pure function (:func:`layout_labels`: rectangles in, rectangles out) so that
it can be tested; :func:`draw_labels` draws what it decides. A person's label panel goes where it
covers no one else's box and no other label: beside its box (above, right, left, below, each slid
along the box's edge), the font shrunk step by step when nothing fits; then higher above the box;
then inside the box's top (over its own person). When still nothing fits, the box shows only its
track id and its labels go to a side panel, where it covers the least (labels first, then people).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..files import atomic_path

# Colour-blind-safe qualitative palette (Okabe-Ito without black), RGB; a track keeps its colour.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167),
)
Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, ends excluded
Measure = Callable[[str, float], tuple[int, int]]  # text, font scale -> width, height in pixels
SHRINK = (1.0, 0.8, 0.65)  # font scales tried, as fractions of the frame's base scale
MIN_SCALE = 0.3  # the smallest legible Hershey scale


def track_colour(track: int) -> tuple[int, int, int]:
    """The colour of a track id (stable: the same id, the same colour in every frame)."""
    return PALETTE[(int(track) - 1) % len(PALETTE)]


def base_scale(height: int, width: int) -> float:
    """The label font scale of a frame: legible from 240p to 4K."""
    return max(MIN_SCALE, min(height, width) / 720 * 0.8)


def cv2_measure(text: str, scale: float) -> tuple[int, int]:
    """Width and height of ``text`` in OpenCV's Hershey simplex at ``scale`` (the font drawn)."""
    import cv2

    (width, height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return width, height


def line_height(scale: float, measure: Measure = cv2_measure) -> int:
    return int(measure("Ag", scale)[1] * 1.8) + 1


def overlaps(a: Rect, b: Rect) -> bool:
    """Whether two rectangles share pixels (touching edges do not)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _area(a: Rect, b: Rect) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


@dataclass(frozen=True)
class LabelLayout:
    """Where the labels of a frame go (pixels): per box its panel or, when its labels are in the side
    panel, an id tag on the box; the side panel's rectangle and lines."""

    panels: list[Rect | None]
    tags: list[Rect | None]
    scales: list[float]  # per box: the font scale of its panel or tag
    side: Rect | None
    side_lines: list[tuple[int, str]]  # (box index, text) per line of the side panel
    side_scale: float


def panel_lines(track: int, labels: Sequence[tuple[str, float]]) -> list[str]:
    """A box's panel: ``#id`` and its best label on the first line, one label a line after."""
    texts = [f"{name} {score:.2f}" for name, score in labels] or [""]
    return [f"#{track} {texts[0]}".rstrip()] + texts[1:]


def _panel_size(lines: Sequence[str], scale: float, measure: Measure) -> tuple[int, int]:
    return max(measure(t, scale)[0] for t in lines) + 8, line_height(scale, measure) * len(lines) + 2


def _inside(rect: Rect, width: int, height: int) -> bool:
    return rect[0] >= 0 and rect[1] >= 0 and rect[2] <= width and rect[3] <= height


def _candidates(box: Rect, w: int, h: int, gap: int, where: str) -> list[Rect]:
    """Panel positions by preference: ``beside`` the box (above, right, left, below, each slid along the
    edge), ``higher`` (two or three panel heights above it, over a neighbour's panel) or ``inside`` its top."""
    x1, y1, x2, y2 = box
    along_x, along_y = (x1, x2 - w, (x1 + x2 - w) // 2), (y1, y2 - h, (y1 + y2 - h) // 2)
    if where == "beside":
        spots = ([(x, y1 - h - gap) for x in along_x] + [(x2 + gap, y) for y in along_y]
                 + [(x1 - w - gap, y) for y in along_y] + [(x, y2 + gap) for x in along_x])
    elif where == "higher":
        spots = [(x, y1 - m * (h + gap)) for m in (2, 3) for x in along_x]
    else:
        spots = [(x1 + gap, y1 + gap), (x2 - w - gap, y1 + gap)]
    return [(x, y, x + w, y + h) for x, y in spots]


def _free(rect: Rect, blocked: Sequence[Rect]) -> bool:
    return not any(overlaps(rect, other) for other in blocked)


def layout_labels(boxes: np.ndarray, lines: Sequence[Sequence[str]], tracks: Sequence[int], width: int, height: int,
                  *, scale: float | None = None, reserved: Sequence[Rect] = (),
                  measure: Measure = cv2_measure) -> LabelLayout:
    """Place each box's label panel (its ``lines``) so that it covers no other box, no other panel or
    tag and nothing ``reserved`` (e.g. the time stamp), inside the frame; see the module docstring.

    ``boxes`` are pixel ``(K, 4)``. Every box is tried at the largest font, in the order given, then
    the ones left at the next smaller font, and so on.
    """
    base = base_scale(height, width) if scale is None else scale
    scales = sorted({max(MIN_SCALE, base * f) for f in SHRINK}, reverse=True)
    rects: list[Rect] = [tuple(int(round(v)) for v in box) for box in np.asarray(boxes).reshape(-1, 4)]
    gap = max(1, round(2 * base))  # the box line's thickness
    grown = [(x1 - gap, y1 - gap, x2 + gap, y2 + gap) for x1, y1, x2, y2 in rects]
    placed: list[Rect] = list(reserved)
    panels: list[Rect | None] = [None] * len(rects)
    used = [base] * len(rects)
    for where, s in [(where, s) for where in ("beside", "higher", "inside") for s in scales]:
        for i in (i for i, p in enumerate(panels) if p is None):
            others = [g for j, g in enumerate(grown) if j != i]
            w, h = _panel_size(lines[i], s, measure)
            spot = next((c for c in _candidates(rects[i], w, h, gap, where)
                         if _inside(c, width, height) and _free(c, others) and _free(c, placed)), None)
            if spot is not None:
                panels[i], used[i] = spot, s
                placed.append(spot)
    tags: list[Rect | None] = [None] * len(rects)
    for i in (i for i, p in enumerate(panels) if p is None):  # an id tag at a corner: off labels, then off boxes
        s = scales[-1]
        w, h = _panel_size([f"#{tracks[i]}"], s, measure)
        x1, y1, x2, y2 = rects[i]
        corners = [(x1, y1 - h - gap), (x1 + gap, y1 + gap), (x2 - w - gap, y1 + gap), (x1, y2 + gap),
                   (x1 + gap, y2 - h - gap), (x2 - w - gap, y2 - h - gap)]
        spots = [_clamp((x, y, x + w, y + h), width, height) for x, y in corners]
        others = [g for j, g in enumerate(grown) if j != i]
        tags[i] = min(spots, key=lambda c: (sum(_area(c, p) for p in placed), sum(_area(c, o) for o in others)))
        used[i] = s
        placed.append(tags[i])
    side, side_lines, side_scale = _side_panel([i for i, p in enumerate(panels) if p is None], lines, grown, placed,
                                               width, height, scales, measure)
    return LabelLayout(panels, tags, used, side, side_lines, side_scale)


def _clamp(rect: Rect, width: int, height: int) -> Rect:
    w, h = rect[2] - rect[0], rect[3] - rect[1]
    x, y = min(max(0, rect[0]), max(0, width - w)), min(max(0, rect[1]), max(0, height - h))
    return x, y, x + w, y + h


def _side_panel(listed: list[int], lines: Sequence[Sequence[str]], boxes: Sequence[Rect], placed: Sequence[Rect],
                width: int, height: int, scales: Sequence[float],
                measure: Measure) -> tuple[Rect | None, list[tuple[int, str]], float]:
    """The panels that found no place, listed together where they cover nothing, else the least labels,
    then the least box area: every line, each person's first line only, at each font size; a list taller
    than the frame keeps the persons that fit (``+N more``)."""
    if not listed:
        return None, [], scales[-1]
    full = [(i, text if k == 0 else f"  {text}") for i in listed for k, text in enumerate(lines[i])]
    best = [(i, lines[i][0]) for i in listed]
    options = []
    for rows in (full, best):
        for s in scales:
            w, h = _panel_size([t for _, t in rows], s, measure)
            if w <= width and h <= height:
                rect, cost = _spot(w, h, boxes, placed, width, height)
                if cost == (0, 0):
                    return rect, rows, s
                options.append((cost, len(options), rect, rows, s))
    if options:
        _, _, rect, rows, s = min(options)
        return rect, rows, s
    s = scales[-1]
    fit = max(1, (height - 2) // line_height(s, measure) - 1)
    rows = best[:fit] + ([(-1, f"+{len(best) - fit} more")] if len(best) > fit else [])
    rows = [(i, _cut(t, width - 8, s, measure)) for i, t in rows]
    w, h = _panel_size([t for _, t in rows], s, measure)
    return _spot(min(w, width), min(h, height), boxes, placed, width, height)[0], rows, s


def _cut(text: str, room: int, scale: float, measure: Measure) -> str:
    if measure(text, scale)[0] <= room:
        return text
    while len(text) > 1 and measure(text + "..", scale)[0] > room:
        text = text[:-1]
    return text + ".."


def _spot(w: int, h: int, boxes: Sequence[Rect], placed: Sequence[Rect], width: int,
          height: int) -> tuple[Rect, tuple[int, int]]:
    """Where a ``w`` x ``h`` panel covers the least label area, then the least box area: the corners
    first, then a grid over the frame; with its cost ``(label area, box area)``."""
    step = max(4, min(w, h) // 3)
    xs, ys = range(0, width - w + 1, step), range(0, height - h + 1, step)
    spots = [(width - w, 0), (width - w, height - h), (0, height - h), (0, 0)] + [(x, y) for y in ys for x in xs]
    best: tuple[tuple[int, int], Rect] | None = None
    for x, y in spots:
        rect = (x, y, x + w, y + h)
        cost = (sum(_area(rect, p) for p in placed), sum(_area(rect, b) for b in boxes))
        if best is None or cost < best[0]:
            best = (cost, rect)
            if cost == (0, 0):
                break
    return best[1], best[0]


@dataclass(frozen=True)
class FrameLabels:
    """What :func:`draw_labels` draws on frames of one size: decided once per keyframe, drawn on each
    frame shown with it."""

    size: tuple[int, int]  # height, width
    boxes: np.ndarray  # (K, 4) pixels
    tracks: list[int]
    lines: list[list[str]]
    layout: LabelLayout
    scale: float
    header: str | None


def plan_labels(height: int, width: int, boxes: np.ndarray, labels: Sequence[Sequence[tuple[str, float]]], *,
                tracks: Sequence[int] | None = None, header: str | None = None) -> FrameLabels:
    """Boxes (normalised), their ``(name, score)`` labels and track ids (default 1, 2, ... by box) laid
    out on a ``height`` x ``width`` frame by :func:`layout_labels`, the ``header`` kept free at the top left."""
    pixels = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * [width, height, width, height]
    tracks = list(range(1, len(pixels) + 1)) if tracks is None else [int(t) for t in tracks]
    scale = base_scale(height, width)
    reserved = [(0, 0, cv2_measure(header, scale)[0] + 10, line_height(scale) + 4)] if header else []
    lines = [panel_lines(t, box_labels) for t, box_labels in zip(tracks, labels)]
    layout = layout_labels(pixels, lines, tracks, width, height, scale=scale, reserved=reserved)
    return FrameLabels((height, width), pixels, tracks, lines, layout, scale, header)


def draw_labels(image: np.ndarray, plan: FrameLabels) -> np.ndarray:
    """A copy of an RGB frame with the planned boxes (in their track's colour), panels, tags and side panel."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    layout, scale = plan.layout, plan.scale
    thick = max(1, round(2 * scale))
    for box, track in zip(plan.boxes, plan.tracks):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), track_colour(track), thick, cv2.LINE_AA)
    for i, track in enumerate(plan.tracks):
        if layout.panels[i] is not None:
            _draw_panel(out, layout.panels[i], [(track, t) for t in plan.lines[i]], layout.scales[i])
        elif layout.tags[i] is not None:
            _draw_tag(out, layout.tags[i], f"#{track}", track_colour(track), layout.scales[i])
    if layout.side is not None:
        rows = [(plan.tracks[i] if i >= 0 else None, text) for i, text in layout.side_lines]
        _draw_panel(out, layout.side, rows, layout.side_scale, border=False)
    if plan.header:
        y = line_height(scale) - 2
        cv2.putText(out, plan.header, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, plan.header, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def draw_detections(image: np.ndarray, boxes: np.ndarray, labels: Sequence[Sequence[tuple[str, float]]],
                    *, tracks: Sequence[int] | None = None, header: str | None = None) -> np.ndarray:
    """A copy of an RGB frame with each normalised box drawn in its track's colour and its ``#track``
    and ``(name, score)`` labels placed by :func:`layout_labels` (:func:`plan_labels`, then
    :func:`draw_labels`). Sizes scale with the frame so that labels stay legible from 240p to 4K."""
    height, width = image.shape[:2]
    return draw_labels(image, plan_labels(height, width, boxes, labels, tracks=tracks, header=header))


def _shade(out: np.ndarray, rect: Rect, alpha: float = 0.6) -> None:
    x1, y1, x2, y2 = rect
    region = out[max(0, y1):max(0, y2), max(0, x1):max(0, x2)]
    region[:] = (region.astype(np.float32) * (1 - alpha)).astype(np.uint8)


def _draw_panel(out: np.ndarray, rect: Rect, rows: Sequence[tuple[int | None, str]], scale: float,
                border: bool = True) -> None:
    """White text rows on a dark translucent panel (framed in the colour of its track); a row starting a
    person (``#id ...``) shows its id on a chip of its track's colour."""
    import cv2

    _shade(out, rect)
    step = line_height(scale)
    x1, y1, x2, y2 = rect
    if border and rows and rows[0][0] is not None:
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), track_colour(rows[0][0]), 1)
    for k, (track, text) in enumerate(rows):
        x = x1 + 4
        if track is not None and text.startswith("#"):
            chip, _, text = text.partition(" ")
            right = x1 + 1 + cv2_measure(chip, scale)[0] + 8
            _draw_tag(out, (x1 + 1, y1 + step * k + 1, right, y1 + step * (k + 1)), chip, track_colour(track), scale)
            x = right + 1
        cv2.putText(out, text, (x, y1 + step * (k + 1) - step // 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    1, cv2.LINE_AA)


def _draw_tag(out: np.ndarray, rect: Rect, text: str, colour: tuple[int, int, int], scale: float) -> None:
    """A filled chip in the track's colour with its id, in black or white, whichever reads better."""
    import cv2

    x1, y1, x2, y2 = rect
    cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    ink = (0, 0, 0) if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 140 else (255, 255, 255)
    step = line_height(scale)
    cv2.putText(out, text, (x1 + 4, y1 + step - step // 4), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, 1, cv2.LINE_AA)


def plot_timeline(path: str, times: Sequence[float], scores: np.ndarray, names: Sequence[str], *, top: int = 12,
                  title: str | None = None) -> None:
    """Save a heat map of per-class scores over time: the ``top`` classes by peak score, one row each.

    ``scores`` is ``(keyframes, classes)``: per keyframe, the highest score of any box.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = np.asarray(scores, dtype=np.float64).reshape(len(times), -1)
    fig_rows = max(1, min(top, scores.shape[1]))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.28 * fig_rows), dpi=100)
    if len(times) == 0:
        ax.text(0.5, 0.5, "no keyframes processed", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        order = np.argsort(-scores.max(axis=0), kind="stable")[:fig_rows]
        times = np.asarray(times, dtype=np.float64)
        edges = _cell_edges(times)
        mesh = ax.pcolormesh(edges, np.arange(len(order) + 1), scores[:, order].T, vmin=0.0, vmax=1.0,
                             cmap="viridis", shading="flat")
        ax.set_yticks(np.arange(len(order)) + 0.5, [names[i] for i in order], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("time (s)")
        fig.colorbar(mesh, ax=ax, pad=0.01, label="score")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # same suffix: matplotlib still picks the format from the name
        fig.savefig(tmp)
    plt.close(fig)


def _cell_edges(times: np.ndarray) -> np.ndarray:
    """Cell borders halfway between keyframes (which may be irregular), half a gap beyond the ends."""
    if len(times) == 1:
        return np.array([times[0] - 0.5, times[0] + 0.5])
    mids = (times[1:] + times[:-1]) / 2
    return np.concatenate([[2 * times[0] - mids[0]], mids, [2 * times[-1] - mids[-1]]])


def plot_person_timeline(path: str, times: Sequence[float],
                         people: Mapping[int, Sequence[tuple[int, Sequence[tuple[str, float]]]]], *,
                         threshold: float = 0.5, max_tracks: int = 12, lanes: int = 3,
                         title: str | None = None) -> None:
    """Save who did what, when: a band per track (``#id``), a grey bar where the track has a box and, in
    up to ``lanes`` lanes (best label on top), its labels scoring ``>= threshold`` as coloured segments.

    ``people`` maps a track id to ``(keyframe index in times, [(name, score), ...] best first)`` per
    keyframe it is seen at. Only the ``max_tracks`` tracks seen at the most keyframes are drawn (the
    title says so), ordered by first appearance; the ten commonest actions get colours, others grey.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = sorted(people, key=lambda t: (-len(people[t]), t))[:max_tracks]
    shown = sorted(longest, key=lambda t: (min(k for k, _ in people[t]) if people[t] else 0, t))
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.2 * lanes * max(1, len(shown))), dpi=100)
    if not times or not shown:
        ax.text(0.5, 0.5, "no person tracked", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        edges = _cell_edges(np.asarray(times, dtype=np.float64))
        runs: list[tuple[int, int, str, int, int]] = []  # (row, lane, name, first keyframe, last keyframe)
        for row, track in enumerate(shown):
            seen = dict(people[track])
            for first, last in _runs(dict.fromkeys(seen)):
                ax.broken_barh([(edges[first], edges[last + 1] - edges[first])], (row + 0.04, 0.92),
                               color="0.9", zorder=1)
            for lane in range(lanes):
                at = {k: labels[lane][0] for k, labels in seen.items()
                      if len(labels) > lane and labels[lane][1] >= threshold}
                runs += [(row, lane, at[first], first, last)
                         for first, last in _runs(at)]
        totals: dict[str, float] = {}
        for _, _, name, first, last in runs:
            totals[name] = totals.get(name, 0.0) + edges[last + 1] - edges[first]
        common = sorted(totals, key=lambda n: (-totals[n], n))[:10]
        colours = {name: plt.get_cmap("tab10")(k) for k, name in enumerate(common)}
        span = edges[-1] - edges[0]
        height = 0.84 / lanes
        for row, lane, name, first, last in runs:
            start, width = edges[first], edges[last + 1] - edges[first]
            y = row + 0.08 + lane * height
            ax.broken_barh([(start, width)], (y, height * 0.9), color=colours.get(name, "0.6"), zorder=2)
            if width / span * 8.5 * 72 > 4.2 * len(name):  # the name fits in the segment (7 pt text, 8.5 in axes)
                ax.text(start + width / 2, y + height * 0.45, name, ha="center", va="center", fontsize=7,
                        clip_on=True, zorder=3)
        handles = [matplotlib.patches.Patch(color=colours[n], label=n) for n in common]
        if len(totals) > len(common):
            handles.append(matplotlib.patches.Patch(color="0.6", label="other"))
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1), frameon=False)
        ax.set_ylim(len(shown), 0)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_yticks(np.arange(len(shown)) + 0.5, [f"#{t}" for t in shown], fontsize=8)
        ax.set_xlabel("time (s)")
    note = f"actions scoring >= {threshold:g}, best on top"
    if len(people) > len(shown):
        note += f"; the {len(shown)} tracks seen longest of {len(people)}"
    ax.set_title(f"{title}\n{note}" if title else note, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _runs(values: Mapping[int, object]) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` of consecutive keyframe indices with equal values."""
    out: list[tuple[int, int]] = []
    for k in sorted(values):
        if out and out[-1][1] == k - 1 and values[out[-1][1]] == values[k]:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
    return out
