# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``python -m memvit_ext``: what was built, then the op on the real MeMViT-16 layer shapes.

Checks the compiled kernel against the PyTorch reference on each layer and times both
(forward, and forward+backward), so a new install shows at once that it works and what it buys.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from . import build_info, kernel_capabilities, memory_pooling_attention
from .testing import MEMVIT16_LAYERS, leaves, make_inputs


def _median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions per case (median)")
    parser.add_argument("--info-only", action="store_true", help="print the build info and stop")
    args = parser.parse_args(argv)

    print(json.dumps(build_info(), indent=2))
    if args.info_only:
        return
    device = torch.device(args.device)
    implementations = (["reference"] + (["sdpa"] if device.type == "cuda" else [])  # sdpa: CUDA's default today
                       + (["kernel"] if device.type in kernel_capabilities() else []))
    print(f"\nMeMViT-16 attention layers (batch 1, float32, {device}, {torch.get_num_threads()} threads); "
          f"times in ms, median of {args.repeat}")
    header = f"{'layer':>6} {'heads':>5} {'Nq':>6} {'Nk':>5} {'x':>2}"
    for impl in implementations:
        header += f" | {impl + ' fwd':>14} {impl + ' fwd+bwd':>17}"
    print(header + (" | max |kernel - reference|" if "kernel" in implementations else ""))
    totals = {impl: [0.0, 0.0] for impl in implementations}
    for problem in MEMVIT16_LAYERS:
        inputs = make_inputs(problem, device=device, requires_grad=True)
        q = inputs.pop("q")
        line = f"{problem.name:>6} {problem.heads:>5} {problem.queries:>6} {problem.keys:>5} {problem.count:>2}"
        outputs = {}
        for impl in implementations:
            def forward(impl=impl, q=q, inputs=inputs):
                with torch.no_grad():
                    return memory_pooling_attention(q, **inputs, implementation=impl)

            def forward_backward(impl=impl, q=q, inputs=inputs):
                out = memory_pooling_attention(q, **inputs, implementation=impl)
                torch.autograd.grad(out, leaves({"q": q, **inputs}), torch.ones_like(out))

            outputs[impl] = forward()
            t_fwd, t_bwd = _median_time(forward, args.repeat), _median_time(forward_backward, args.repeat)
            totals[impl][0] += t_fwd * problem.count
            totals[impl][1] += t_bwd * problem.count
            line += f" | {t_fwd * 1e3:14.1f} {t_bwd * 1e3:17.1f}"
        if "kernel" in implementations:
            line += f" | {(outputs['kernel'] - outputs['reference']).abs().max().item():.2e}"
        print(line, flush=True)
    line = f"{'total':>6} {'':>5} {'':>6} {'':>5} {'':>2}"
    for impl in implementations:
        line += f" | {totals[impl][0] * 1e3:14.1f} {totals[impl][1] * 1e3:17.1f}"
    print(line)
    if "kernel" in implementations:
        print(f"kernel speed-up over the reference: forward x{totals['reference'][0] / totals['kernel'][0]:.2f}, "
              f"forward+backward x{totals['reference'][1] / totals['kernel'][1]:.2f}")


if __name__ == "__main__":
    main()
