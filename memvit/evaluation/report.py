# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""What an AVA evaluation leaves behind: predictions, per-class AP table, bar chart, summary text.

The predictions CSV is in the official format so the run can be re-scored with either official
scorer; the per-class table and chart show where a model differs from another, which one mAP
number hides (AVA's 60 classes range from ~1 to ~90 AP).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.ava_files import AVA_GROUPS, BoxRow, BoxTable, LabelMap, write_boxes_csv
from ..files import atomic_path
from .ava_map import MapResult, group_map

GROUP_COLOURS = {"pose": "#4c72b0", "person-object": "#dd8452", "person-person": "#55a868"}


def format_summary(result: MapResult, label_map: LabelMap) -> str:
    """A few lines for a log: the mAP and the mAP of each AVA group, in percent."""
    scored = sum(not math.isnan(ap) for ap in result.per_class.values())
    lines = [f"AVA frame-mAP@{result.iou_threshold:g} ({result.mode}): {_pct(result.map)} "
             f"over {scored} of {len(result.per_class)} classes (the others have no ground truth)"]
    for group, value in group_map(result, label_map).items():
        n = sum(1 for c in result.per_class if label_map.groups[c] == group)
        lines.append(f"  {group:<14} {_pct(value):>6}  ({n} classes)")
    return "\n".join(lines)


def write_evaluation(out_dir: str | os.PathLike, result: MapResult, label_map: LabelMap,
                     predictions: Sequence[BoxRow] | BoxTable) -> dict[str, Path]:
    """Write ``predictions.csv``, ``per_class_ap.csv`` and ``per_class_ap.png`` into ``out_dir``.

    Returns their paths under the keys ``predictions``, ``per_class_ap`` and ``plot``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"predictions": out / "predictions.csv", "per_class_ap": out / "per_class_ap.csv",
             "plot": out / "per_class_ap.png"}
    with atomic_path(paths["predictions"]) as tmp:  # each file whole or not at all, whatever kills the writer
        write_boxes_csv(tmp, predictions)
    with atomic_path(paths["per_class_ap"]) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # quotes names with commas, e.g. "talk to (e.g., self, a person, a group)"
        writer.writerow(["id", "name", "group", "ap", "num_gt"])
        for c in sorted(result.per_class):
            ap = result.per_class[c]
            writer.writerow([c, label_map.names[c], label_map.groups[c], "nan" if math.isnan(ap) else f"{ap:.6f}",
                             result.num_gt[c]])
    plot_per_class_ap(paths["plot"], result, label_map)
    return paths


def plot_per_class_ap(path: str | os.PathLike, result: MapResult, label_map: LabelMap) -> None:
    """Horizontal bars of per-class AP, grouped and coloured by AVA group, best first within a group.

    Drawn on a bare Agg canvas (no pyplot), so it works headless and leaves the caller's
    matplotlib backend alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    groups = group_map(result, label_map)
    rows: list[tuple[int, str]] = []  # (class id, group), top to bottom
    ypos: list[float] = []
    y = 0.0
    for group in AVA_GROUPS:
        members = [c for c in result.per_class if label_map.groups[c] == group]
        members.sort(key=lambda c: (math.isnan(result.per_class[c]), -np.nan_to_num(result.per_class[c]), c))
        for c in members:
            rows.append((c, group))
            ypos.append(y)
            y += 1.0
        y += 0.8 if members else 0.0  # gap between groups
    height = 1.6 + 0.2 * max(len(rows), 1)
    fig = Figure(figsize=(9.0, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    values = [0.0 if math.isnan(result.per_class[c]) else 100.0 * result.per_class[c] for c, _ in rows]
    ax.barh(ypos, values, height=0.8, color=[GROUP_COLOURS[g] for _, g in rows])
    for yy, (c, _), v in zip(ypos, rows, values):
        ap = result.per_class[c]
        ax.text(v + 0.5, yy, "n/a" if math.isnan(ap) else f"{v:.1f}", va="center", fontsize=6)
    ax.set_yticks(ypos, [f"{_short(label_map.names[c])} [{c}]" for c, _ in rows], fontsize=6.5)
    ax.set_ylim(max(ypos, default=0.0) + 0.8, -0.8)
    ax.set_xlim(0, 105)
    ax.set_xlabel(f"AP@{result.iou_threshold:g} (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"AVA frame-mAP {_pct(result.map)} ({result.mode})", fontsize=10)
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=f"{g}: mAP {_pct(groups[g])}") for g in AVA_GROUPS],
              loc="lower right", fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100.0 * value:.2f}"


def _short(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
