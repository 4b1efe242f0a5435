# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""CPU benchmark of the kernel op against its baselines on the real MeMViT-16 layer shapes.

    pytest benchmarks/test_op_cpu.py --benchmark-only          # ~15 min on 2 cores

Every method runs on the same inputs in the same process; the session summary (conftest.py)
prints per-shape and 16-layer ratios with peak and saved-for-backward memory, and writes them to
benchmarks/results/cpu-op-<date>.md. Set MEMVIT_BENCH_BATCHES=1 to run batch 1 only.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

import memvit_ext
from benchmarks.cases import FORWARD_ONLY, METHODS, call_fn, cpu_shapes, forward_with_graph, make_case
from benchmarks.memory import measure_in_worker, saved_for_backward_mb
from memvit_ext.testing import leaves

BATCHES = [int(b) for b in os.environ.get("MEMVIT_BENCH_BATCHES", "1,4").split(",")]
MODES = ["fwd", "fwd+bwd"]

pytestmark = pytest.mark.skipif("cpu" not in memvit_ext.kernel_capabilities(), reason="no compiled CPU kernel")


@pytest.fixture(scope="session")
def peak_memory():
    """Peak RSS growth per (method, batch, mode) -> {shape: MB}, measured lazily in workers."""
    cache: dict = {}

    def get(method: str, batch: int, mode: str) -> dict[str, float]:
        key = (method, batch, mode)
        if key not in cache:
            cache[key] = measure_in_worker(method, batch, mode)
        return cache[key]
    return get


def _rounds(fn) -> int:
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    return int(min(15, max(3, 3.0 / max(elapsed, 1e-6))))


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("problem", cpu_shapes(), ids=lambda p: p.name)
def test_op_cpu(benchmark, problem, batch, mode, method, peak_memory):
    if mode == "fwd+bwd" and method in FORWARD_ONLY:
        pytest.skip(f"{method} has no CPU backward")
    torch.set_num_threads(os.cpu_count() or 1)
    case = make_case(problem, batch)
    fn = call_fn(case, method, mode)
    fn()  # warm-up (and compilation for flex)
    benchmark.group = f"{problem.name} B={batch} {mode}"
    benchmark.extra_info.update(
        shape=problem.name, batch=batch, mode=mode, method=method, count=problem.count,
        gflop=problem.flops(batch) / 1e9 * (1 if mode == "fwd" else 3.5),
        peak_mb=peak_memory(method, batch, mode)[problem.name],
    )
    if mode == "fwd+bwd":
        benchmark.extra_info["saved_mb"] = saved_for_backward_mb(forward_with_graph(case, method), leaves(case.inputs))
    benchmark.pedantic(fn, rounds=_rounds(fn), iterations=1, warmup_rounds=1)
