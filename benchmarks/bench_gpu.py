# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""GPU benchmark of the kernel op against its baselines on the real MeMViT layer shapes.

Side by side in one process, batch 8, bf16, forward and forward+backward, on the memory
layers of MeMViT-16 and MeMViT-24 (stage 1 to 4, two compressed memory segments):

  eager       the reference's data flow (materialised logits, bias added per slice)
  sdpa_mask   SDPA with the bias materialised as a (B, H, Nq, Nk) mask
  flex        FlexAttention (compiled) with a score_mod gathering the same per-query tables
  augqk_sdpa  the augmented-QK identity on stock SDPA
  kernel       memvit_ext.memory_pooling_attention(implementation="kernel"): the Python pre-pass
              of the per-query tables + the CUDA kernels
  kernel_core the CUDA op alone (torch.ops.memvit_ext.pooling_attention on precomputed tables)

Timing: CUDA events around each call, after warm-up, median of `--reps`; the L2 is flushed
(a 256 MB write) before every timed call. Peak memory: max_memory_allocated above the inputs
during one call. FLOPs: 4 B H Nq Nk D forward; forward+backward counted as 3.5x forward (the
FlashAttention convention; our backward actually does 7 matrix products, not 5).

Writes benchmarks/results/<device>-<date>.json and .md; prints a short table last.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import baselines  # noqa: E402

try:  # the layer shapes come from the model, which needs PyTorchVideo
    from memvit.models.shapes import preset_attention_problems  # noqa: E402
except ImportError as error:  # pragma: no cover - the GPU machine without carried wheels
    raise SystemExit(f"bench_gpu.py needs memvit's model package ({error}); carry PyTorchVideo's wheels in .whl/ "
                     "(docs/cuda.md, 'Running the GPU check')") from error
from memvit_ext import memory_pooling_attention, query_rel_bias  # noqa: E402
from memvit_ext.testing import AttentionProblem, leaves, make_inputs  # noqa: E402

METHODS = ("eager", "sdpa_mask", "flex", "augqk_sdpa", "kernel", "kernel_core")
TARGETS = {  # kernel vs baseline: (forward, forward+backward) minimum speed-ups, None = no target
    "eager": (5.0, 4.0),
    "sdpa_mask": (1.5, 1.5),
    "flex": (None, 1.2),
    "augqk_sdpa": (None, 1.2),
}


def memory_layers() -> list[tuple[str, AttentionProblem]]:
    """The distinct memory-layer shapes of each model (stage 1 to 4), first layer of each."""
    out = []
    for model, layers in (("MeMViT-16", preset_attention_problems("memvit_16_16x4")),
                          ("MeMViT-24", preset_attention_problems("memvit_24_32x3"))):
        seen = set()
        for layer in layers:
            key = (layer.heads, layer.q_thw, layer.kv_thw, layer.mem_thw)
            if layer.n_mem and key not in seen:
                seen.add(key)
                out.append((model, layer))
    return out


def kernel(q, q_thw, segments, rel_pos):
    return memory_pooling_attention(q, q_thw, segments, rel_pos=rel_pos, implementation="kernel_core")


class KernelOnly:
    """The dispatcher op on tables computed once (what the pre-pass costs is left out)."""

    def __init__(self, inputs: dict):
        q, segments = inputs["q"], inputs["segments"]
        with torch.no_grad():
            tables, offsets = query_rel_bias(q, inputs["q_thw"], True, segments, inputs["rel_pos"])
        self.tables = tables.detach().requires_grad_(True)
        self.static = ([x for s in segments for x in s.thw], [int(s.has_cls) for s in segments], offsets,
                       q.shape[-1] ** -0.5, True, True, None)

    def __call__(self, q, q_thw, segments, rel_pos):
        kv_thw, kv_cls, offsets, scale, residual, q_cls, mask = self.static
        tables = self.tables if q.requires_grad else self.tables.detach()
        out, _ = torch.ops.memvit_ext.pooling_attention(q, [s.k for s in segments], [s.v for s in segments], tables,
                                                        kv_thw, kv_cls, offsets, scale, residual, q_cls, mask)
        return out


def method_fn(name: str, inputs: dict):
    if name == "kernel":
        return kernel
    if name == "kernel_core":
        return KernelOnly(inputs)
    return getattr(baselines, name)


def detached(inputs: dict) -> tuple:
    from memvit_ext.segments import KVSegment, RelPos

    rel = inputs["rel_pos"]
    rel = RelPos(*(t.detach() if t is not None else None for t in rel.tables()), mem_t_stride=rel.mem_t_stride)
    segs = [KVSegment(s.k.detach(), s.v.detach(), s.thw, s.has_cls) for s in inputs["segments"]]
    return inputs["q"].detach(), inputs["q_thw"], segs, rel


def make_call(name: str, inputs: dict, mode: str):
    fn = method_fn(name, inputs)
    if mode == "fwd":
        args = detached(inputs)

        def run():
            with torch.no_grad():
                return fn(*args)
        return run
    args = (inputs["q"], inputs["q_thw"], inputs["segments"], inputs["rel_pos"])
    params = leaves(inputs) + ([fn.tables] if isinstance(fn, KernelOnly) else [])
    grad = {}

    def run():
        for p in params:
            p.grad = None
        out = fn(*args)
        if "g" not in grad:
            grad["g"] = torch.randn_like(out)
        out.backward(grad["g"])
        return out
    return run


def time_call(run, warmup: int, reps: int, flush: torch.Tensor) -> list[float]:
    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        flush.zero_()  # evict the inputs from L2 (not timed)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def peak_extra_mb(run) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def device_info() -> dict:
    props = torch.cuda.get_device_properties(0)
    driver = "unknown"
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return {"device": props.name, "sms": props.multi_processor_count, "memory_gb": round(props.total_memory / 1e9, 1),
            "driver": driver, "cuda": torch.version.cuda, "torch": torch.__version__,
            "date": datetime.date.today().isoformat()}


def accuracy(inputs: dict) -> float:
    """Relative error of the kernel forward against eager in float32 (sanity check per shape)."""
    args = detached(inputs)
    with torch.no_grad():
        out = kernel(*args).float()
        f32 = [args[0].float(), args[1],
               [type(s)(s.k.float(), s.v.float(), s.thw, s.has_cls) for s in args[2]],
               type(args[3])(*(t.float() if t is not None else None for t in args[3].tables()),
                             mem_t_stride=args[3].mem_t_stride)]
        ref = baselines.eager(*f32)
    return ((out - ref).norm() / ref.norm()).item()


def run_benchmark(args) -> dict:
    info = device_info()
    flush = torch.empty(256 * 2**20 // 4, dtype=torch.float32, device="cuda")
    rows, t_start = [], time.time()
    shapes = [(m, p) for m, p in memory_layers() if args.models == "all" or m.endswith(args.models)]
    for model, problem in shapes:
        gen = torch.Generator().manual_seed(0)
        inputs = make_inputs(problem, batch=args.batch, dtype=torch.bfloat16, device="cuda", requires_grad=True,
                             generator=gen)
        shape = dict(model=model, layer=problem.name, heads=problem.heads, nq=problem.queries, nk=problem.keys,
                     d=problem.head_dim, batch=args.batch)
        err = accuracy(inputs)
        flops = problem.flops(args.batch)
        for mode in ("fwd", "fwdbwd"):
            for name in args.methods:
                over = time.time() - t_start > args.budget_s
                row = dict(shape, method=name, mode=mode, kernel_vs_eager_fp32_err=err)
                if over and name != "kernel":
                    row["skipped"] = "time budget"
                    rows.append(row)
                    continue
                try:
                    run = make_call(name, inputs, mode)
                    times = time_call(run, args.warmup, args.reps, flush)
                    ms = statistics.median(times)
                    row.update(ms=ms, ms_min=min(times), ms_max=max(times), peak_mb=peak_extra_mb(run),
                               tflops=flops * (1.0 if mode == "fwd" else 3.5) / ms / 1e9)
                except Exception as error:  # a baseline that fails (OOM, unsupported) is reported, not fatal
                    row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
                    torch.cuda.empty_cache()
                rows.append(row)
                print(json.dumps(row), flush=True)
        del inputs
        torch.cuda.empty_cache()
    return {"info": info, "args": vars(args), "rows": rows}


def ratios(rows: list[dict]) -> list[dict]:
    """Per (shape, mode): kernel speed-up and memory ratio against each baseline."""
    table = {}
    for r in rows:
        table.setdefault((r["model"], r["layer"], r["mode"]), {})[r["method"]] = r
    out = []
    for (model, layer, mode), methods in table.items():
        f = methods.get("kernel", {})
        entry = dict(model=model, layer=layer, mode=mode, kernel_ms=f.get("ms"), kernel_tflops=f.get("tflops"))
        for base in ("eager", "sdpa_mask", "flex", "augqk_sdpa"):
            b = methods.get(base, {})
            if f.get("ms") and b.get("ms"):
                entry[f"x_{base}"] = b["ms"] / f["ms"]
            if f.get("peak_mb") is not None and b.get("peak_mb"):
                entry[f"mem_vs_{base}"] = f["peak_mb"] / b["peak_mb"]
        k = methods.get("kernel", {})
        if k.get("ms"):
            entry["kernel_ms"] = k["ms"]
            entry["kernel_tflops"] = k["tflops"]
        out.append(entry)
    return out


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def markdown(result: dict) -> str:
    info = result["info"]
    lines = [f"# GPU benchmark: {info['device']} ({info['sms']} SMs), driver {info['driver']}, CUDA {info['cuda']}, "
             f"torch {info['torch']}, {info['date']}", "",
             f"bf16, batch {result['args']['batch']}, median of {result['args']['reps']} CUDA-event timings after "
             f"{result['args']['warmup']} warm-ups, L2 flushed before each. ms per call; TFLOP/s = 4BHNqNkD "
             "(x3.5 for fwd+bwd) / time; peak = extra allocated memory during one call.", ""]
    rows = result["rows"]
    for mode in ("fwd", "fwdbwd"):
        lines += [f"## {'forward' if mode == 'fwd' else 'forward + backward'}", "",
                  "| model | layer | H | Nq | Nk | " + " | ".join(f"{m} ms" for m in METHODS)
                  + " | kernel TFLOP/s | kernel_core TFLOP/s | kernel peak MB | eager peak MB |",
                  "|---|---|---|---|---|" + "---|" * (len(METHODS) + 4)]
        keys = []
        for r in rows:
            if r["mode"] == mode and (r["model"], r["layer"]) not in keys:
                keys.append((r["model"], r["layer"]))
        for model, layer in keys:
            by = {r["method"]: r for r in rows if r["mode"] == mode and r["model"] == model and r["layer"] == layer}
            any_row = next(iter(by.values()))
            cells = [fmt(by.get(m, {}).get("ms"), ".3f") if "ms" in by.get(m, {}) else
                     ("err" if "error" in by.get(m, {}) else "skip") for m in METHODS]
            lines.append(f"| {model} | {layer} | {any_row['heads']} | {any_row['nq']} | {any_row['nk']} | "
                         + " | ".join(cells)
                         + f" | {fmt(by.get('kernel', {}).get('tflops'), '.1f')} | "
                         f"{fmt(by.get('kernel', {}).get('tflops'), '.1f')} | "
                         f"{fmt(by.get('kernel', {}).get('peak_mb'), '.0f')} | "
                         f"{fmt(by.get('eager', {}).get('peak_mb'), '.0f')} |")
        lines.append("")
    lines += ["## kernel speed-up (x) and memory ratio against each baseline", "",
              "| model | layer | mode | x eager | x sdpa_mask | x flex | x augqk | mem / eager |",
              "|---|---|---|---|---|---|---|---|"]
    for e in ratios(rows):
        lines.append(f"| {e['model']} | {e['layer']} | {e['mode']} | {fmt(e.get('x_eager'))} | "
                     f"{fmt(e.get('x_sdpa_mask'))} | {fmt(e.get('x_flex'))} | {fmt(e.get('x_augqk_sdpa'))} | "
                     f"{fmt(e.get('mem_vs_eager'))} |")
    lines += ["", "Targets (H100): fwd >= 5x and fwd+bwd >= 4x eager; >= 1.5x sdpa_mask; fwd+bwd >= 1.2x flex and "
              "augqk; >= 150 TFLOP/s fwd on stage 1-2; kernel peak <= 20% of eager's.", ""]
    errs = [r for r in rows if "error" in r]
    if errs:
        lines += ["Errors:", ""] + [f"- {r['model']} {r['layer']} {r['method']} {r['mode']}: {r['error']}"
                                    for r in errs] + [""]
    return "\n".join(lines)


def short_table(result: dict) -> str:
    lines = ["model     layer  mode    kernel ms  TFLOP/s  x eager  x sdpa  x flex  x augqk  mem/eager"]
    for e in ratios(result["rows"]):
        lines.append(f"{e['model']:<9} {e['layer']:<6} {e['mode']:<7} {fmt(e['kernel_ms'], '8.3f')} "
                     f"{fmt(e['kernel_tflops'], '8.1f')} {fmt(e.get('x_eager'), '8.2f')} "
                     f"{fmt(e.get('x_sdpa_mask'), '7.2f')} {fmt(e.get('x_flex'), '7.2f')} "
                     f"{fmt(e.get('x_augqk_sdpa'), '8.2f')} {fmt(e.get('mem_vs_eager'), '10.2f')}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--models", default="all", choices=("all", "16", "24"))
    parser.add_argument("--budget-s", type=float, default=300.0,
                        help="after this many seconds only the kernel op is still measured")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA device")
    result = run_benchmark(args)
    slug = re.sub(r"[^a-z0-9]+", "-", result["info"]["device"].lower()).strip("-")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{slug}-{result['info']['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    stem.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {stem}.json and {stem}.md")
    print(short_table(result))


if __name__ == "__main__":
    main()
