# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Session summary of the op benchmarks: ratios measured side by side in one run."""

from __future__ import annotations

import datetime
import os
from collections import defaultdict

import torch

from benchmarks import cpu_name

TARGETS = "kernel vs eager over the 16 layers: fwd >= 2x, fwd+bwd >= 2.2x; every shape fwd >= 1.2x; " \
          "kernel faster than augmented-QK; saved-for-backward >= 4x less than eager"


def _summarise(rows: list[dict]) -> str:
    """Markdown tables: per shape and 16-layer totals, for each (batch, mode)."""
    by_key: dict = defaultdict(dict)
    for row in rows:
        by_key[(row["batch"], row["mode"])].setdefault(row["shape"], {})[row["method"]] = row
    lines = [f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, float32, "
             f"{torch.get_num_threads()} threads; {datetime.date.today().isoformat()}",
             f"Targets: {TARGETS}.", ""]
    for (batch, mode), shapes in sorted(by_key.items()):
        methods = [m for m in ("eager", "reference", "augqk_sdpa", "sdpa_mask", "flex", "kernel")
                   if any(m in s for s in shapes.values())]
        lines.append(f"### batch {batch}, {mode} (median ms; speed-up of kernel; peak RSS growth MB)")
        lines.append("")
        head = "| shape | x | " + " | ".join(methods) + " | kernel vs eager | vs reference | vs augqk_sdpa | " \
               "peak MB eager / kernel"
        if mode == "fwd+bwd":
            head += " | saved MB eager / kernel"
        head += " |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        totals: dict = defaultdict(float)
        for shape, result in shapes.items():
            count = next(iter(result.values()))["count"]
            cells = []
            for m in methods:
                if m in result:
                    cells.append(f"{result[m]['median'] * 1e3:.1f}")
                    totals[m] += result[m]["median"] * count
                else:
                    cells.append("-")
            kernel = result.get("kernel", {}).get("median")

            def ratio(m, result=result, kernel=kernel):
                return f"{result[m]['median'] / kernel:.2f}x" if kernel and m in result else "-"
            peak = f"{result['eager']['peak_mb']:.0f} / {result['kernel']['peak_mb']:.0f}" \
                if "eager" in result and "kernel" in result else "-"
            line = f"| {shape} | {count} | " + " | ".join(cells) + \
                   f" | {ratio('eager')} | {ratio('reference')} | {ratio('augqk_sdpa')} | {peak}"
            if mode == "fwd+bwd":
                saved = (f"{result['eager']['saved_mb']:.1f} / {result['kernel']['saved_mb']:.1f}"
                         if "eager" in result and "kernel" in result else "-")
                line += f" | {saved}"
            lines.append(line + " |")
        if "kernel" in totals:
            cells = " | ".join(f"{totals[m] * 1e3:.0f}" for m in methods)
            net = f"| **16 layers** | | {cells} | **{totals['eager'] / totals['kernel']:.2f}x** | " \
                  f"{totals['reference'] / totals['kernel']:.2f}x | {totals['augqk_sdpa'] / totals['kernel']:.2f}x | |"
            lines.append(net + (" |" if mode == "fwd+bwd" else ""))
        lines.append("")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    rows = []
    for bench in session.benchmarks:
        if bench.stats is None or "method" not in bench.extra_info:
            continue
        rows.append({**bench.extra_info, "median": bench.stats.median})
    if not rows:
        return
    text = _summarise(rows)
    folder = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"cpu-op-{datetime.date.today().isoformat()}.md")
    with open(path, "w") as out:
        out.write("# CPU op benchmark\n\n" + text + "\n")
    terminalreporter.write_sep("=", "memvit_ext CPU op: ratios measured side by side")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"written to {path}")
