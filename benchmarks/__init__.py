# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Benchmarks: ratios measured side by side in one run (README, "Tests and benchmarks")."""

from __future__ import annotations

import platform


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows: every results file names its machine."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
