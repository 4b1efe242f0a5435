# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Memory of one attention call on CPU: peak resident-set growth and bytes saved for backward.

Peak growth is read from the kernel (VmHWM, reset through /proc/self/clear_refs) in a worker
process started with glibc's mmap threshold lowered, so that freed buffers leave the resident
set at once and the high-water mark is the true peak of live memory, scratch buffers of the C++
kernel included.

    python -m benchmarks.memory --method kernel --batch 1 --mode fwd   # JSON, one line per shape
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys

import torch

WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_growth_mb(fn) -> float:
    """Peak RSS growth (MB) during fn(), relative to the RSS just before it."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = _status_kb("VmRSS")
    fn()
    return (_status_kb("VmHWM") - before) / 1024


def saved_for_backward_mb(fn, inputs: list[torch.Tensor]) -> float:
    """MB of tensors autograd saves for backward during fn(), beyond the inputs' own storage."""
    excluded = {t.untyped_storage().data_ptr() for t in inputs}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in excluded:
            seen[ptr] = max(seen.get(ptr, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values()) / 2**20


def measure_in_worker(method: str, batch: int, mode: str) -> dict[str, float]:
    """{shape name: peak MB} for every MeMViT-16 shape, measured in a fresh worker process."""
    env = {**os.environ, **WORKER_ENV}
    cmd = [sys.executable, "-m", "benchmarks.memory", "--method", method, "--batch", str(batch), "--mode", mode]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=True)
    return {row["shape"]: row["peak_mb"] for row in map(json.loads, done.stdout.splitlines())}


def main() -> None:
    from benchmarks.cases import METHODS, call_fn, cpu_shapes, make_case

    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=sorted(METHODS), required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--mode", choices=("fwd", "fwd+bwd"), default="fwd")
    args = parser.parse_args()
    for problem in cpu_shapes():
        case = make_case(problem, args.batch)
        fn = call_fn(case, args.method, args.mode)
        fn()  # warm-up: lazy initialisation, thread pools, compilation
        print(json.dumps({"shape": problem.name, "peak_mb": peak_growth_mb(fn)}), flush=True)


if __name__ == "__main__":
    main()
