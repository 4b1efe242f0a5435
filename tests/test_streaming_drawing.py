# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Labels on annotated frames stay readable where people stand close: the layout (a pure function of
rectangles) puts no label over another person's box or another label; and the person timeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from memvit.streaming.drawing import (
    cv2_measure,
    draw_detections,
    layout_labels,
    overlaps,
    panel_lines,
    plot_person_timeline,
)

NAMES = ["stand", "watch (a person)", "talk to (e.g., self, a person, a group)", "listen to (a person)",
         "carry/hold (an object)", "walk", "sit", "answer phone"]


def close_people(rng: np.random.Generator, count: int, width: int, height: int) -> np.ndarray:
    """``count`` standing people side by side, neighbours' boxes overlapping, in pixels."""
    w = width * 0.11
    xs = width * 0.08 + np.arange(count) * w * 0.85 + rng.uniform(-0.1, 0.1, count) * w
    tops = height * rng.uniform(0.25, 0.4, count)
    return np.stack([xs, tops, xs + w * rng.uniform(0.9, 1.1, count), height * rng.uniform(0.88, 0.98, count)], 1)


def labels_of(rng: np.random.Generator, count: int, k: int = 3) -> list[list[tuple[str, float]]]:
    return [[(NAMES[j], float(s)) for j, s in zip(rng.permutation(len(NAMES))[:k],
                                                   sorted(rng.uniform(0.2, 1.0, k), reverse=True))]
            for _ in range(count)]


def check_layout(layout, boxes, lines, tracks, width, height, reserved=()):
    """What the layout promises, checked on the rectangles it returns."""
    rects = [tuple(int(round(v)) for v in b) for b in boxes]
    labels = [r for r in layout.panels + layout.tags if r is not None]
    for i, (panel, tag) in enumerate(zip(layout.panels, layout.tags)):
        assert (panel is None) != (tag is None)  # a panel, or an id tag and a line in the side panel
        if panel is None:
            assert [t for j, t in layout.side_lines if j == i][:1] == [lines[i][0]]
            continue
        assert 0 <= panel[0] and 0 <= panel[1] and panel[2] <= width and panel[3] <= height
        assert not any(overlaps(panel, r) for j, r in enumerate(rects) if j != i), (i, panel)
        assert not any(overlaps(panel, r) for r in labels if r != panel)
        assert not any(overlaps(panel, r) for r in reserved)
    tags = [t for t in layout.tags if t is not None]
    assert not any(overlaps(a, b) for k, a in enumerate(tags) for b in tags[k + 1:])
    if layout.side is not None:
        assert not any(overlaps(layout.side, r) for r in labels + list(reserved))


@pytest.mark.parametrize("size", [(720, 1280), (360, 640), (270, 480)])
def test_labels_cover_no_one_else(gen, size):
    """Five or six close people with long AVA names: no label over another person's box, over another
    label or over the time stamp; what finds no place is in the side panel, its box tagged with its id."""
    rng = np.random.default_rng(int(gen.initial_seed()))
    height, width = size
    count = int(rng.integers(5, 7))
    boxes = close_people(rng, count, width, height)
    tracks = [int(t) for t in rng.choice(50, count, replace=False) + 1]
    lines = [panel_lines(t, labels) for t, labels in zip(tracks, labels_of(rng, count))]
    reserved = [(0, 0, 60, 24)]
    layout = layout_labels(boxes, lines, tracks, width, height, reserved=reserved)
    check_layout(layout, boxes, lines, tracks, width, height, reserved)
    assert sum(p is not None for p in layout.panels) >= (2 if height >= 720 else 1)  # some labels stay beside


def test_a_lone_person_gets_its_panel_above_at_full_size():
    boxes = np.array([[300.0, 200.0, 380.0, 460.0]])
    lines = [panel_lines(4, [("stand", 0.9), ("watch (a person)", 0.5)])]
    layout = layout_labels(boxes, lines, [4], 640, 480, scale=0.6)
    w = max(cv2_measure(t, 0.6)[0] for t in lines[0])
    x1, y1, x2, y2 = layout.panels[0]
    assert (x1, y2 <= 200, layout.scales[0], layout.side) == (300, True, 0.6, None)
    assert x2 - x1 > w and lines[0][0] == "#4 stand 0.90"


def test_a_crowd_too_dense_for_panels_goes_to_the_side_panel():
    """Twelve people filling the frame: panels shrink, then move to the side panel (``+N more`` when
    even that is too tall); every box shows its id."""
    width, height = 320, 180
    xs = np.linspace(0, width - 26, 12)
    boxes = np.stack([xs, np.full(12, 10.0), xs + 30, np.full(12, 175.0)], 1)
    tracks = list(range(1, 13))
    lines = [panel_lines(t, [(NAMES[2], 0.8), (NAMES[4], 0.6), (NAMES[1], 0.5)]) for t in tracks]
    layout = layout_labels(boxes, lines, tracks, width, height)
    check_layout(layout, boxes, lines, tracks, width, height)
    assert layout.side is not None and all(t is not None for t in layout.tags)
    assert layout.side[3] - layout.side[1] <= height and layout.side[2] - layout.side[0] <= width


def test_draw_detections_colours_boxes_by_track(gen):
    rng = np.random.default_rng(int(gen.initial_seed()))
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[0.1, 0.3, 0.3, 0.9], [0.6, 0.3, 0.8, 0.9]])
    out = draw_detections(image, boxes, labels_of(rng, 2), tracks=[1, 2], header="1.0s")
    swapped = draw_detections(image, boxes, labels_of(rng, 2), tracks=[2, 1], header="1.0s")
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    left_edge = (slice(120, 200), 32)  # on the first box's left side, below any label
    assert not np.array_equal(out[left_edge], swapped[left_edge])
    assert np.array_equal(draw_detections(image, np.zeros((0, 4)), []), image)


def test_person_timeline_is_capped(tmp_path, gen):
    """30 tracks: the 12 seen longest are drawn, so the picture is as tall as for 12."""
    rng = np.random.default_rng(int(gen.initial_seed()))
    times = [float(t) for t in range(20)]

    def people(count):
        out = {}
        for track in range(1, count + 1):
            first = int(rng.integers(0, 15))
            out[track] = [(k, [(NAMES[int(rng.integers(3))], 0.9), ("walk", 0.6)]) for k in range(first, 20)]
        return out

    for count in (12, 30):
        plot_person_timeline(str(tmp_path / f"p{count}.png"), times, people(count), title="test")
    sizes = [Image.open(tmp_path / f"p{c}.png").size for c in (12, 30)]
    assert sizes[0] == sizes[1] and sizes[0][0] >= 800
    plot_person_timeline(str(tmp_path / "empty.png"), [], {})
    assert Image.open(tmp_path / "empty.png").size[0] > 100
