# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Model benchmark: clips/s and peak memory of inference and of a training step.

``python -m memvit.benchmark --cfg configs/ava_16.yaml --batch 1 --clips 3 --train-steps 2``

Inference runs clip after clip with the memory filled first (the steady state: every memory
clip the sampler can attend is there); a training step is forward + backward + SGD step, also
with memory filled. Each (phase, attention implementation) runs in its own subprocess so its
peak memory is its own: on CPU the peak resident set size of that process (and how much it
grew over the model alone), on CUDA ``torch.cuda.max_memory_allocated``. The op's two
implementations, the compiled kernel and the PyTorch reference (``memvit_ext``'s
``implementation="kernel"`` / ``"reference"``), are measured side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import torch

from .cli import DTYPES, EXIT_USER_ERROR, UserError, command_parser, resolve_device, user_errors_exit

IMPLEMENTATIONS = ("kernel", "reference")


def _rss_mib() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _loss(model, out: torch.Tensor) -> torch.Tensor:
    if model.is_detection:
        return torch.nn.functional.binary_cross_entropy(out.float(), torch.zeros_like(out, dtype=torch.float32))
    return torch.nn.functional.cross_entropy(out.float(), torch.zeros(out.shape[0], dtype=torch.long,
                                                                       device=out.device))


def run_phase(cfg_path: str, overrides: Sequence[str], phase: str, impl: str, batch: int, steps: int,
              device: str, bf16: bool) -> dict:
    """Measure one phase in this process; returns seconds per step and memory figures."""
    from .cli import example_inputs, load_model
    from .config import load_config
    from .flops import clips_to_fill_memory

    cfg = load_config(cfg_path, overrides)
    dev = torch.device(device)
    model = load_model(cfg, seed=0, device=dev, implementation=impl, warn_random=False)
    clip, boxes = example_inputs(model, cfg, batch=batch, device=dev, generator=torch.Generator().manual_seed(0))
    ids = list(range(batch))
    warmup = clips_to_fill_memory(model)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)
    base_rss = _rss_mib()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    model.train(phase != "inference")
    with torch.no_grad(), autocast:  # fill the memory
        for _ in range(warmup):
            model(clip, video_ids=ids, boxes=boxes)
    if phase == "inference":
        with torch.no_grad(), autocast:
            for _ in range(steps):
                _sync(dev)
                start = time.perf_counter()
                model(clip, video_ids=ids, boxes=boxes)
                _sync(dev)
                times.append(time.perf_counter() - start)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        for _ in range(steps):
            _sync(dev)
            start = time.perf_counter()
            with autocast:
                out = model(clip, video_ids=ids, boxes=boxes)
            _loss(model, out).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            _sync(dev)
            times.append(time.perf_counter() - start)
    result = {"phase": phase, "impl": impl, "seconds": times, "warmup_clips": warmup}
    if dev.type == "cuda":
        result["peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        result["peak_mib"] = _peak_rss_mib()
        result["growth_mib"] = _peak_rss_mib() - base_rss
    return result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(cfg_path: str, overrides: Sequence[str], phase: str, impl: str = "kernel", *, batch: int = 1,
            steps: int = 2, device: str = "cpu", bf16: bool = False, threads: int | None = None) -> dict:
    """:func:`run_phase` in a fresh subprocess, so that its peak memory is its own."""
    cmd = [sys.executable, "-m", "memvit.benchmark", "--cfg", cfg_path, "--batch", str(batch), "--device", device,
           "--_phase", phase, "--_impl", impl, "--_steps", str(steps)]
    if threads:
        cmd += ["--threads", str(threads)]
    if bf16:
        cmd += ["--dtype", "bf16"]
    cmd += list(overrides)
    env = dict(os.environ)  # the child imports this package from where this process did
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        if proc.returncode == EXIT_USER_ERROR:
            raise UserError(f"benchmark phase {phase}/{impl}: {proc.stderr.strip().splitlines()[-1]}")
        raise RuntimeError(f"benchmark phase {phase}/{impl} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("python -m memvit.benchmark", __doc__.split("\n\n")[0], device=True)
    parser.add_argument("--batch", type=int, default=1, help="clips per batch (each row its own video)")
    parser.add_argument("--clips", type=int, default=3,
                        help="timed inference clips (after filling memory; 0: skip inference)")
    parser.add_argument("--train-steps", type=int, default=2, help="timed training steps (0: skip training)")
    parser.add_argument("--impl", choices=["both", *IMPLEMENTATIONS], default="both")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32",
                        help="bf16: bfloat16 autocast, as train/eval/infer --dtype bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--_phase", help=argparse.SUPPRESS)
    parser.add_argument("--_impl", help=argparse.SUPPRESS)
    parser.add_argument("--_steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.device = str(resolve_device(args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._phase:  # a measuring subprocess
        result = run_phase(args.cfg, args.opts, args._phase, args._impl, args.batch, args._steps, args.device,
                           args.dtype == "bf16")
        print(json.dumps(result))
        return 0

    from .config import load_config, model_kwargs

    model_kwargs(load_config(args.cfg, args.opts))  # a bad config is the user's, said here, not in a child
    impls = list(IMPLEMENTATIONS) if args.impl == "both" else [args.impl]
    phases = [(name, steps) for name, steps in (("inference", args.clips), ("train step", args.train_steps))
              if steps > 0]
    if not phases:
        raise UserError("nothing to measure: --clips and --train-steps are both 0")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"memvit benchmark: {args.cfg} {' '.join(args.opts)}".rstrip())
    print(f"  device {args.device} ({device_name}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch}, {'bf16 autocast' if args.dtype == 'bf16' else 'fp32'}")
    rows = []
    for phase, steps in phases:
        for impl in impls:
            print(f"  measuring {phase} with the {impl} attention ({steps} timed steps)...", file=sys.stderr,
                  flush=True)
            result = measure(args.cfg, args.opts, "inference" if phase == "inference" else "train", impl,
                             batch=args.batch, steps=steps, device=args.device, bf16=args.dtype == "bf16",
                             threads=args.threads)
            seconds = sorted(result["seconds"])[len(result["seconds"]) // 2]  # median
            rows.append((phase, impl, seconds, result))
    memory_label = "peak GPU MiB" if args.device.startswith("cuda") else "peak RSS MiB (phase growth)"
    print(f"  {'phase':<11} {'attention':<9} {'clips/s':>8} {'s/step':>8}  {memory_label}")
    for phase, impl, seconds, result in rows:
        memory = f"{result['peak_mib']:.0f}"
        if "growth_mib" in result:
            memory += f" (+{result['growth_mib']:.0f})"
        print(f"  {phase:<11} {impl:<9} {args.batch / seconds:8.3f} {seconds:8.3f}  {memory}")
    if len(impls) == 2:
        for phase, _ in phases:
            kernel = next(s for p, i, s, _ in rows if p == phase and i == "kernel")
            reference = next(s for p, i, s, _ in rows if p == phase and i == "reference")
            print(f"  {phase}: the kernel is {reference / kernel:.2f}x the reference's speed")
    warmup = rows[0][3]["warmup_clips"]
    print(f"  (memory filled by {warmup} earlier clips before timing; medians of the timed steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
