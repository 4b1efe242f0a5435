# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Forward time of models we did not write, as built and after ``memvit.fuse_attention``, side by side.

    python -m benchmarks.bench_fuse [--rounds 5] [--threads 2] [--out FILE.md]      # ~1 min on 2 cores

Models (random weights, float32, eval, batch 1): PyTorchVideo's ``mvit_base_16x4`` (MViT v1,
16 blocks; its hub configuration) on a ``--ptv-input`` clip (default 16x224x224, the input it
was designed for) and timm's ``mvitv2_tiny`` (MViTv2, 10 blocks,
decomposed relative positions, residual pooling) on ``--timm-input`` images (default 224, its
training size, and 384: the attention's share grows with the token count).
Each round times one forward of the original and one of the fused copy, in alternating order;
reported: the median over the rounds of each and their ratio, and the largest output
difference. On a machine shared with other work the numbers are noisy: take the ratio, not
the milliseconds.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import statistics
import sys
import time

import torch

import memvit
from benchmarks import cpu_name


def models(ptv_input: tuple[int, int], timm_inputs: list[int]) -> list[tuple[str, torch.nn.Module, torch.Tensor]]:
    """(name, model, input) for each model family fuse_attention serves."""
    import timm
    from pytorchvideo.models.hub.vision_transformers import mvit_video_base_config
    from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

    frames, side = ptv_input
    # mvit_base_16x4's architecture (its hub config) built for this input size
    ptv = create_multiscale_vision_transformers(**{**mvit_video_base_config, "temporal_size": frames,
                                                   "spatial_size": side})
    found = [(f"PyTorchVideo mvit_base_16x4, {frames}x{side}x{side}", ptv, torch.randn(1, 3, frames, side, side))]
    for size in timm_inputs:
        vit = timm.create_model("mvitv2_tiny", pretrained=False, img_size=size)
        found.append((f"timm mvitv2_tiny, {size}x{size}", vit, torch.randn(1, 3, size, size)))
    return found


def time_forward(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    parser.add_argument("--ptv-input", type=int, nargs=2, default=(16, 224), metavar=("FRAMES", "SIDE"))
    parser.add_argument("--timm-input", type=int, nargs="+", default=[224, 384], metavar="SIDE")
    parser.add_argument("--out", help="write the table (markdown) here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lines = [f"fuse_attention, forward, {datetime.date.today().isoformat()}: {cpu_name()}, {os.cpu_count()} cores, "
             f"{args.threads} thread(s), torch {torch.__version__}; float32, batch 1, random weights; median of "
             f"{args.rounds} interleaved rounds.", "",
             "| model | fused modules | original ms | fused ms | speed-up | max abs diff |",
             "|---|---|---|---|---|---|"]
    for name, original, x in models(tuple(args.ptv_input), args.timm_input):
        original.eval()
        fused = copy.deepcopy(original)
        report = memvit.fuse_attention(fused)
        with torch.no_grad():
            diff = (original(x) - fused(x)).abs().max().item()  # also the warm-up
        times: dict[str, list[float]] = {"original": [], "fused": []}
        for i in range(args.rounds):
            order = [("original", original), ("fused", fused)]
            for label, model in order if i % 2 == 0 else order[::-1]:
                times[label].append(time_forward(model, x))
            print(f"{name}: round {i + 1}: original {times['original'][-1] * 1e3:.0f} ms, "
                  f"fused {times['fused'][-1] * 1e3:.0f} ms", file=sys.stderr)
        a, b = statistics.median(times["original"]), statistics.median(times["fused"])
        lines.append(f"| {name} | {len(report.fused)} | {a * 1e3:.0f} | {b * 1e3:.0f} | {a / b:.2f}x | {diff:.1e} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text + "\n")  # a benchmark's own report, not a user's file
    return 0


if __name__ == "__main__":
    sys.exit(main())
