# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""AVA evaluation: frame-mAP as the official scorers compute it, and the files and plot of a run."""

from .ava_map import MapResult, average_precision, frame_map, group_map
from .report import format_summary, write_evaluation

__all__ = ["MapResult", "average_precision", "format_summary", "frame_map", "group_map", "write_evaluation"]
