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


def _summarise_model(rows: list[dict]) -> str:
    """The model benchmark (test_model_cpu.py): seconds, speed-ups and the fraction of the GEMM floor."""
    rates = {(r["dtype"], r["library"]): r["gflop"] / r["median"] for r in rows if r["model_row"] == "gemm"}
    gemm = {dtype: max(rate for (d, _), rate in rates.items() if d == dtype) for dtype, _ in rates}
    runs = {(r["model_row"], r["dtype"], r["implementation"]): r for r in rows if r["model_row"] != "gemm"}
    lines = [f"CPU: {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
             f"torch {torch.__version__}; {datetime.date.today().isoformat()}. MeMViT-16 (configs/ava_16.yaml), "
             "batch 1, memory filled; medians of 3 rounds, all in one run.", ""]
    if rates:
        lines.append("GEMM rates (2048^2 product): " + ", ".join(f"{d} {lib} {rate:.0f} GFLOP/s"
                                                                 for (d, lib), rate in rates.items())
                     + "; the floor of each dtype is counted at its faster rate.")
        lines.append("")
    lines += ["| phase | dtype | attention | s/clip | vs fp32 kernel | vs fp32 reference | floor s | of floor |",
              "|---|---|---|---|---|---|---|---|"]

    def speedup(base: dict | None, seconds: float) -> str:
        return f"{base['median'] / seconds:.2f}x" if base else "-"
    for (phase, dtype, impl), r in sorted(runs.items(), key=lambda kv: (kv[0][0] != "inference", kv[0][1:])):
        floor = r["gflop"] / gemm[dtype] if dtype in gemm else None
        cells = [phase, dtype, impl, f"{r['median']:.3f}", speedup(runs.get((phase, "fp32", "kernel")), r["median"]),
                 speedup(runs.get((phase, "fp32", "reference")), r["median"]),
                 f"{floor:.3f}" if floor else "-", f"{floor / r['median']:.0%}" if floor else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    for impl in ("kernel", "reference"):
        fp32, bf16 = runs.get(("inference", "fp32", impl)), runs.get(("inference", "bf16", impl))
        if fp32 and bf16 and "scores" in fp32 and "scores" in bf16:
            diff = max(abs(a - b) for a, b in zip(fp32["scores"], bf16["scores"]))
            lines += ["", f"bf16 against fp32 ({impl}): largest score difference {diff:.2e} "
                          f"over {len(fp32['scores'])} scores (target <= 1e-2)"]
    return "\n".join(lines)


def _write(terminalreporter, name: str, title: str, text: str) -> None:
    folder = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}-{datetime.date.today().isoformat()}.md")
    with open(path, "w") as out:
        out.write(f"# {title}\n\n" + text + "\n")
    terminalreporter.write_sep("=", f"{title}: ratios measured side by side")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"written to {path}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    rows = [{**bench.extra_info, "median": bench.stats.median} for bench in session.benchmarks
            if bench.stats is not None]
    op_rows = [r for r in rows if "method" in r]
    model_rows = [r for r in rows if "model_row" in r]
    if op_rows:
        _write(terminalreporter, "cpu-op", "CPU op benchmark", _summarise(op_rows))
    if model_rows:
        _write(terminalreporter, "cpu-model", "CPU model benchmark", _summarise_model(model_rows))
