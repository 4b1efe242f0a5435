# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Pictures of streamed detections: boxes with their top labels on frames, and a score timeline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..files import atomic_path

# Colour-blind-safe qualitative palette (Okabe-Ito), RGB.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167),
)


def draw_detections(image: np.ndarray, boxes: np.ndarray, labels: Sequence[Sequence[tuple[str, float]]],
                    *, header: str | None = None) -> np.ndarray:
    """A copy of an RGB frame with each normalised box drawn and its ``(name, score)`` labels beside it.

    Sizes scale with the frame so that labels stay legible from 240p to 4K.
    """
    import cv2

    out = np.ascontiguousarray(image).copy()
    height, width = out.shape[:2]
    scale = max(0.3, min(height, width) / 720 * 0.8)
    thick = max(1, round(2 * scale))
    font = cv2.FONT_HERSHEY_SIMPLEX
    line_height = int(cv2.getTextSize("Ag", font, scale, 1)[0][1] * 1.8) + 1
    for index, (box, box_labels) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), labels)):
        colour = PALETTE[index % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in np.asarray(box) * [width, height, width, height])
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, thick, cv2.LINE_AA)
        lines = [f"{name} {score:.2f}" for name, score in box_labels]
        if not lines:
            continue
        text_w = max(cv2.getTextSize(t, font, scale, 1)[0][0] for t in lines) + 6
        top = y1 + thick if y1 + thick + line_height * len(lines) <= height else max(0, y2 - line_height * len(lines))
        left = min(max(0, x1 + thick), max(0, width - text_w))
        overlay = out.copy()
        cv2.rectangle(overlay, (left, top), (left + text_w, top + line_height * len(lines)), (0, 0, 0), -1)
        cv2.addWeighted(overlay, 0.55, out, 0.45, 0, dst=out)
        for k, text in enumerate(lines):
            baseline = top + line_height * (k + 1) - line_height // 4
            cv2.putText(out, text, (left + 3, baseline), font, scale, colour if k == 0 else (255, 255, 255), 1,
                        cv2.LINE_AA)
    if header:
        cv2.putText(out, header, (4, line_height), font, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, header, (4, line_height), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


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
