# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""GPU benchmark of the kernel op against today's strongest stock anchors, on the MeMViT layer shapes.

Side by side in one process, batch 8, bf16, forward and forward+backward, on the memory layers of
MeMViT-16 (two compressed memory clips; ``--models 24`` or ``all`` adds MeMViT-24):

  eager        the reference's data flow (materialised logits, bias added per slice)
  sdpa_mask    SDPA with the bias materialised as a (B, H, Nq, Nk) float mask
  augqk_sdpa   the augmented-QK identity on stock SDPA: the op's implementation="sdpa"
               (memvit_ext.reference.sdpa_attention), what CUDA tensors use until the kernels are validated
  flex_keys    FlexAttention (compiled), the bias as a score_mod, the memory as extra keys
  flex_mask    the same with the memory's key validity as a mask_mod / BlockMask (built per call)
  kernel       memvit_ext.memory_pooling_attention(implementation="kernel"): the Python pre-pass of
               the per-query tables + the CUDA kernels
  kernel_mask  the same with the key-validity mask as attn_mask (the like-for-like of flex_mask)
  kernel_core  the CUDA op alone (torch.ops.memvit_ext.pooling_attention on precomputed tables)

Every method goes from q, k/v per segment and the rel-pos tables to the output (and all input
gradients). Per row: ms (CUDA events, after warm-up, median of ``--reps``; the L2 flushed by a
256 MB write before every timed call), TFLOP/s (4 B H Nq Nk D forward, x3.5 for forward+backward),
peak memory above the inputs during one call, the relative error of the forward against the op's
float32 reference, whether two backward runs give identical bits, the first call's time (compiling
included, never in the medians), and any recompile seen during the timed calls. The key-validity
mask keeps every key (steady state, one video per row), so every method computes one function.

``--dry-run`` runs one tiny shape (float32, one rep) on the CPU (or ``--device cuda``), with flex in
its eager form unless ``--compile-flex``: it checks the script itself (tests/test_bench_gpu.py).
Flex has no CPU backward, so its forward+backward rows report that error there.

Writes benchmarks/results/<device>-<date>.json and .md (a dry run only with ``--out``); prints a short
table last; exits 1 when a kernel row fails or misses its accuracy bound.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import baselines  # noqa: E402
from memvit.files import write_json, write_text  # noqa: E402
from memvit_ext import memory_pooling_attention, query_rel_bias  # noqa: E402
from memvit_ext.testing import MEMVIT16_LAYERS, MEMVIT24_LAYERS, AttentionProblem, leaves, make_inputs  # noqa: E402

METHODS = ("eager", "sdpa_mask", "augqk_sdpa", "flex_keys", "flex_mask", "kernel", "kernel_mask", "kernel_core")
BASELINES = {"eager": "kernel", "sdpa_mask": "kernel", "augqk_sdpa": "kernel", "flex_keys": "kernel",
             "flex_mask": "kernel_mask"}  # baseline -> the kernel row it is compared with
TARGETS = {  # kernel vs baseline: (forward, forward+backward) minimum speed-ups, None = no target
    "eager": (5.0, 4.0),
    "sdpa_mask": (1.5, 1.5),
    "augqk_sdpa": (None, 1.2),
    "flex_keys": (None, 1.2),
    "flex_mask": (None, 1.2),
}
KERNEL_TOL = {torch.bfloat16: 2e-2, torch.float16: 2e-2, torch.float32: 1e-4}  # kernel vs float32 reference

P = AttentionProblem
# The memory layers of the presets (two compressed memory clips), from the op's own shape tables.
MEMVIT16_MEMORY_LAYERS = tuple(p for p in MEMVIT16_LAYERS if p.n_mem)
MEMVIT24_MEMORY_LAYERS = tuple(p for p in MEMVIT24_LAYERS if p.n_mem)
DRY_RUN_PROBLEM = P("tiny", heads=2, q_thw=(2, 4, 4), kv_thw=(2, 2, 2), mem_thw=(1, 2, 2), n_mem=2, head_dim=64,
                    mem_t_rows=7)


def memory_layers(models: str = "16") -> list[tuple[str, AttentionProblem]]:
    """The memory-layer shapes of MeMViT-16 ("16"), MeMViT-24 ("24") or both ("all")."""
    out = []
    if models in ("16", "all"):
        out += [("MeMViT-16", p) for p in MEMVIT16_MEMORY_LAYERS]
    if models in ("24", "all"):
        out += [("MeMViT-24", p) for p in MEMVIT24_MEMORY_LAYERS]
    return out


def kernel(q, q_thw, segments, rel_pos, attn_mask=None):
    """The public op on its kernel: an explicit choice, so it reaches the kernels whatever serves "auto"."""
    return memory_pooling_attention(q, q_thw, segments, rel_pos=rel_pos, attn_mask=attn_mask, implementation="kernel")


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


def method_fn(name: str, inputs: dict, key_mask: torch.Tensor, compile_flex: bool):
    """A callable ``(q, q_thw, segments, rel_pos) -> out`` for a method of METHODS."""
    if name == "kernel":
        return kernel
    if name == "kernel_mask":
        return functools.partial(kernel, attn_mask=key_mask[:, None, None, :])
    if name == "kernel_core":
        return KernelOnly(inputs)
    if name == "flex_keys":
        return functools.partial(baselines.flex_keys, compiled=compile_flex)
    if name == "flex_mask":
        return functools.partial(baselines.flex_mask, key_mask=key_mask, compiled=compile_flex)
    return getattr(baselines, name)


def detached(inputs: dict) -> tuple:
    rel = inputs["rel_pos"]
    rel = rel._replace(**{n: t.detach() for n, t in rel._asdict().items() if isinstance(t, torch.Tensor)})
    segs = [s._replace(k=s.k.detach(), v=s.v.detach()) for s in inputs["segments"]]
    return inputs["q"].detach(), inputs["q_thw"], segs, rel


def make_call(fn, inputs: dict, mode: str):
    """``(run, grads)``: run() is one forward (no grad) or one forward+backward with a fixed output
    gradient; grads() copies the input gradients of the last run (None for a forward)."""
    if mode == "fwd":
        args = detached(inputs)

        def forward():
            with torch.no_grad():
                return fn(*args)
        return forward, None
    args = (inputs["q"], inputs["q_thw"], inputs["segments"], inputs["rel_pos"])
    params = leaves(inputs) + ([fn.tables] if isinstance(fn, KernelOnly) else [])
    grad = {}

    def forward_backward():
        for p in params:
            p.grad = None
        out = fn(*args)
        if "g" not in grad:
            gen = torch.Generator().manual_seed(1)
            grad["g"] = torch.randn(out.shape, generator=gen).to(out)
        out.backward(grad["g"])
        return out

    def grads():
        return [None if p.grad is None else p.grad.clone() for p in params]
    return forward_backward, grads


class Clock:
    """Times calls: CUDA events with an L2 flush before each timed call on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.flush = torch.empty(256 * 2**20 // 4, dtype=torch.float32, device=device) if self.cuda else None

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def first_call_s(self, run) -> float:
        """The first call, compiling included (reported, never part of the medians)."""
        self.sync()
        start = time.perf_counter()
        run()
        self.sync()
        return time.perf_counter() - start

    def times_ms(self, run, warmup: int, reps: int) -> list[float]:
        for _ in range(warmup):
            run()
        self.sync()
        times = []
        for _ in range(reps):
            if self.cuda:
                self.flush.zero_()  # evict the inputs from L2 (not timed)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                run()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                begin = time.perf_counter()
                run()
                times.append((time.perf_counter() - begin) * 1e3)
        return times

    def peak_extra_mb(self, run) -> float | None:
        if not self.cuda:
            return None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20


def _graphs_compiled() -> int:
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - torch without dynamo
        return 0
    return int(counters["stats"]["unique_graphs"])


def _raise_recompile_limits() -> None:
    """Flex compiles one graph per shape and grad mode: more than dynamo's default 8 per function,
    after which it would silently run flex's eager form."""
    import torch._dynamo

    config = torch._dynamo.config
    for name, value in (("recompile_limit", 64), ("cache_size_limit", 64), ("accumulated_recompile_limit", 512),
                        ("accumulated_cache_size_limit", 512)):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), value))


def device_info(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "date": datetime.date.today().isoformat()}
    if device.type != "cuda":
        return {"device": "cpu", "threads": torch.get_num_threads(), **info}
    props = torch.cuda.get_device_properties(device)
    driver = "unknown"
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return {"device": props.name, "sms": props.multi_processor_count, "memory_gb": round(props.total_memory / 1e9, 1),
            "driver": driver, "cuda": torch.version.cuda, **info}


def float32_reference(inputs: dict) -> torch.Tensor:
    """The op's PyTorch reference on float32 copies: the oracle of every method's forward."""
    q, q_thw, segments, rel = detached(inputs)
    rel = rel._replace(**{n: t.float() for n, t in rel._asdict().items() if isinstance(t, torch.Tensor)})
    segments = [s._replace(k=s.k.float(), v=s.v.float()) for s in segments]
    with torch.no_grad():
        return memory_pooling_attention(q.float(), q_thw, segments, rel_pos=rel, implementation="reference")


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    out = out.float()
    return ((out - ref).norm() / ref.norm()).item()


def measure(name: str, fn, inputs: dict, mode: str, clock: Clock, args, reference: torch.Tensor) -> dict:
    """One row: times, TFLOP/s, peak memory, accuracy (forward) or determinism (forward+backward)."""
    run, grads = make_call(fn, inputs, mode)
    row = {"first_call_s": clock.first_call_s(run)}
    graphs = _graphs_compiled()
    times = clock.times_ms(run, args.warmup, args.reps)
    if _graphs_compiled() > graphs:
        row["recompiles"] = _graphs_compiled() - graphs  # the medians then include compiling: not valid
    ms = statistics.median(times)
    row.update(ms=ms, ms_min=min(times), ms_max=max(times), peak_mb=clock.peak_extra_mb(run))
    if mode == "fwd":
        row["err"] = relative_error(run(), reference)
    else:
        run()
        first = grads()
        run()
        row["deterministic"] = all((a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
                                   for a, b in zip(first, grads()))
    return row


def key_validity(problem: AttentionProblem, batch: int, device) -> torch.Tensor:
    """``(batch, keys)`` bool: every key valid (steady state, each row one video), so the masked methods
    compute the same function as the others while paying for their mask."""
    return torch.ones(batch, problem.keys, dtype=torch.bool, device=device)


def run_benchmark(args) -> dict:
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    info = device_info(device)
    clock = Clock(device)
    if args.compile_flex:
        _raise_recompile_limits()
    else:  # flex's eager form is what a dry run checks; its advice to compile is known
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
    rows, t_start = [], time.time()
    shapes = [("dry-run", DRY_RUN_PROBLEM)] if args.dry_run else memory_layers(args.models)
    if args.layers:
        shapes = [(m, p) for m, p in shapes if p.name in args.layers]
    for model, problem in shapes:
        gen = torch.Generator().manual_seed(0)
        inputs = make_inputs(problem, batch=args.batch, dtype=dtype, device=device, requires_grad=True, generator=gen)
        key_mask = key_validity(problem, args.batch, device)
        reference = float32_reference(inputs)
        flops = problem.flops(args.batch)
        shape = dict(model=model, layer=problem.name, heads=problem.heads, nq=problem.queries, nk=problem.keys,
                     d=problem.head_dim, batch=args.batch, count=problem.count)
        for mode in ("fwd", "fwdbwd"):
            for name in args.methods:
                row = dict(shape, method=name, mode=mode)
                if time.time() - t_start > args.budget_s and not name.startswith("kernel"):
                    row["skipped"] = "time budget"
                    rows.append(row)
                    continue
                try:
                    row.update(measure(name, method_fn(name, inputs, key_mask, args.compile_flex), inputs, mode,
                                       clock, args, reference))
                    row["tflops"] = flops * (1.0 if mode == "fwd" else 3.5) / row["ms"] / 1e9
                except Exception as error:  # a method that fails (OOM, unsupported) is reported, not fatal
                    row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
                    if clock.cuda:
                        torch.cuda.empty_cache()
                rows.append(row)
                print(json.dumps(row), flush=True)
        del inputs, reference
        if clock.cuda:
            torch.cuda.empty_cache()
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    return {"info": info, "args": settings, "rows": rows}


def kernel_failures(result: dict) -> list[str]:
    """Kernel rows that failed or missed their accuracy bound (what makes the run fail)."""
    tol = KERNEL_TOL[getattr(torch, result["args"]["dtype"])]
    bad = []
    for r in result["rows"]:
        if not r["method"].startswith("kernel"):
            continue
        where = f"{r['model']} {r['layer']} {r['method']} {r['mode']}"
        if "error" in r:
            bad.append(f"{where}: {r['error']}")
        elif r.get("err") is not None and not r["err"] <= tol:
            bad.append(f"{where}: relative error {r['err']:.3g} against the float32 reference (bound {tol:g})")
        elif r.get("deterministic") is False:
            bad.append(f"{where}: two backward runs differ")
    return bad


def ratios(rows: list[dict]) -> list[dict]:
    """Per (shape, mode): the kernel's time and its speed-up and memory ratio against each baseline."""
    table = {}
    for r in rows:
        table.setdefault((r["model"], r["layer"], r["mode"]), {})[r["method"]] = r
    out = []
    for (model, layer, mode), methods in table.items():
        k = methods.get("kernel", {})
        entry = dict(model=model, layer=layer, mode=mode, kernel_ms=k.get("ms"), kernel_tflops=k.get("tflops"),
                     kernel_deterministic=k.get("deterministic"))
        for base, against in BASELINES.items():
            b, f = methods.get(base, {}), methods.get(against, {})
            if f.get("ms") and b.get("ms"):
                entry[f"x_{base}"] = b["ms"] / f["ms"]
            if f.get("peak_mb") is not None and b.get("peak_mb"):
                entry[f"mem_vs_{base}"] = f["peak_mb"] / b["peak_mb"]
        out.append(entry)
    return out


def fmt(x, spec=".2f"):
    """``format(x, spec)``, or a dash as wide as the spec asks for when there is no value."""
    if x is None:
        return "-".rjust(int(re.match(r"\d*", spec).group() or 0))
    return format(x, spec)


def _status(r: dict) -> str:
    return "error" if "error" in r else r.get("skipped", "")


def markdown(result: dict) -> str:
    info, a = result["info"], result["args"]
    where = (f"{info['device']} ({info['sms']} SMs), driver {info['driver']}, CUDA {info['cuda']}"
             if "sms" in info else f"{info['device']} ({info.get('threads')} threads)")
    lines = [f"# GPU benchmark: {where}, torch {info['torch']}, {info['date']}", "",
             f"{a['dtype']}, batch {a['batch']}, median of {a['reps']} timings after {a['warmup']} warm-ups"
             + (" (CUDA events, L2 flushed before each)" if "sms" in info else "")
             + f"; flex {'compiled' if a['compile_flex'] else 'eager (not compiled)'}. ms per call; TFLOP/s = "
             "4BHNqNkD (x3.5 for fwd+bwd) / time; peak = memory allocated above the inputs during one call; err = "
             "relative error of the forward against the op's float32 reference; det = two backward runs give "
             "identical bits; first s = the first call, compiling included. The key-validity mask of flex_mask "
             "and kernel_mask keeps every key.", "",
             "| model | layer | H | Nq | Nk | mode | method | ms | TFLOP/s | peak MB | err | det | first s | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        note = _status(r) + (f" recompiled {r['recompiles']}x while timed" if r.get("recompiles") else "")
        det = r.get("deterministic")
        lines.append(f"| {r['model']} | {r['layer']} | {r['heads']} | {r['nq']} | {r['nk']} | {r['mode']} | "
                     f"{r['method']} | {fmt(r.get('ms'), '.3f')} | {fmt(r.get('tflops'), '.1f')} | "
                     f"{fmt(r.get('peak_mb'), '.0f')} | {fmt(r.get('err'), '.1e')} | "
                     f"{'-' if det is None else ('yes' if det else 'NO')} | {fmt(r.get('first_call_s'), '.1f')} | "
                     f"{note} |")
    lines += ["", "## kernel speed-up (x) and memory ratio (kernel peak / baseline peak)", "",
              "| model | layer | mode | kernel ms | x eager | x sdpa_mask | x augqk_sdpa | x flex_keys | "
              "x flex_mask (vs kernel_mask) | mem / eager | mem / sdpa_mask |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in ratios(result["rows"]):
        lines.append(f"| {e['model']} | {e['layer']} | {e['mode']} | {fmt(e['kernel_ms'], '.3f')} | "
                     + " | ".join(fmt(e.get(f"x_{b}")) for b in BASELINES)
                     + f" | {fmt(e.get('mem_vs_eager'))} | {fmt(e.get('mem_vs_sdpa_mask'))} |")
    lines += ["", "Targets (H100): fwd >= 5x and fwd+bwd >= 4x eager; >= 1.5x sdpa_mask; fwd+bwd >= 1.2x flex "
              "(keys and mask) and augqk; >= 150 TFLOP/s fwd on stage 1-2; kernel peak <= 20% of eager's; "
              "kernel backward deterministic.", ""]
    errs = [r for r in result["rows"] if "error" in r]
    if errs:
        lines += ["Errors:", ""] + [f"- {r['model']} {r['layer']} {r['method']} {r['mode']}: {r['error']}"
                                    for r in errs] + [""]
    failures = kernel_failures(result)
    lines.append(f"kernel rows: {'all passed' if not failures else 'FAILED: ' + '; '.join(failures)}")
    return "\n".join(lines) + "\n"


def short_table(result: dict) -> str:
    lines = ["model     layer  mode    kernel ms  TFLOP/s  x eager  x sdpa  x augqk  x flexK  x flexM  det  mem/eager"]
    for e in ratios(result["rows"]):
        det = e["kernel_deterministic"]
        lines.append(f"{e['model']:<9} {e['layer']:<6} {e['mode']:<7} {fmt(e['kernel_ms'], '9.3f')} "
                     f"{fmt(e['kernel_tflops'], '8.1f')} {fmt(e.get('x_eager'), '8.2f')} "
                     f"{fmt(e.get('x_sdpa_mask'), '7.2f')} {fmt(e.get('x_augqk_sdpa'), '8.2f')} "
                     f"{fmt(e.get('x_flex_keys'), '7.2f')} {fmt(e.get('x_flex_mask'), '8.2f')} "
                     f"{'  -' if det is None else (' yes' if det else '  NO')} {fmt(e.get('mem_vs_eager'), '10.2f')}")
    return "\n".join(lines)


CHECK_STEPS = {  # benchmarks/gpu_check.sh's steps, in order: all must exit 0 for "status: passed"
    "build": "build (setup.py build_ext --inplace)",
    "tests": "CUDA tests (tests/test_kernels_cuda.py -m cuda)",
    "memcheck": "compute-sanitizer memcheck (benchmarks/gpu_sanitize.py)",
    "racecheck": "compute-sanitizer racecheck (benchmarks/gpu_sanitize.py)",
    "bench": "benchmark, kernel rows accurate and deterministic (benchmarks/bench_gpu.py)",
}


def check_summary(exits: dict[str, str], notes: dict[str, str], info: dict, commit: str) -> str:
    """The results file of one benchmarks/gpu_check.sh run. Its last line, ``status: passed`` only
    when every step ran and exited 0, is what memvit_ext.ops.CUDA_KERNELS_VALIDATED may point at."""
    where = f"{info['device']}" + (f", driver {info['driver']}, CUDA {info['cuda']}" if "driver" in info else "")
    lines = [f"# GPU check: {where}, torch {info['torch']}, {info['date']}", "",
             f"`bash benchmarks/gpu_check.sh` on commit {commit}; its logs: gpu_check_logs.tgz beside the run's "
             "other outputs.", "", "| step | exit | note |", "|---|---|---|"]
    for step, title in CHECK_STEPS.items():
        note = notes.get(step, "").replace("|", "/")  # a note must not split its table row
        lines.append(f"| {title} | {exits.get(step, 'not run')} | {note} |")
    ran = all(exits.get(step) == "0" for step in CHECK_STEPS)
    failed = any(exits.get(step) not in ("0", "skipped", "not run", None) for step in CHECK_STEPS)
    status = "failed" if failed else ("passed" if ran and "sms" in info else "incomplete")  # "sms": a GPU ran it
    return "\n".join(lines + ["", f"status: {status}"]) + "\n"


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        step, sep, value = item.partition("=")
        if not sep or step not in CHECK_STEPS:
            sys.exit(f"bench_gpu.py: {flag} takes STEP=VALUE with STEP one of {', '.join(CHECK_STEPS)}; got {item!r}")
        out[step] = value
    return out


def write_check_summary(args: argparse.Namespace) -> Path:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info = device_info(device)
    slug = re.sub(r"[^a-z0-9]+", "-", info["device"].lower()).strip("-")
    path = Path(args.out or ROOT / "benchmarks" / "results") / f"gpu-check-{slug}-{info['date']}.md"
    write_text(path, check_summary(_pairs(args.check_summary, "--check-summary"),
                                   _pairs(args.check_note, "--check-note"), info, args.commit))
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="one tiny shape, float32, one rep, on the CPU unless --device cuda: checks the script")
    parser.add_argument("--device", default=None, help="cuda (default) or cpu; a dry run defaults to cpu")
    parser.add_argument("--dtype", default=None, choices=("bfloat16", "float16", "float32"),
                        help="default bfloat16 (float32 for a dry run)")
    parser.add_argument("--batch", type=int, default=None, help="default 8 (2 for a dry run)")
    parser.add_argument("--warmup", type=int, default=None, help="default 3 (1 for a dry run)")
    parser.add_argument("--reps", type=int, default=None, help="default 10 (1 for a dry run)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--models", default="16", choices=("16", "24", "all"))
    parser.add_argument("--layers", nargs="+", default=None, help="only these layers, e.g. blk0 blk4")
    parser.add_argument("--compile-flex", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile flex_attention (default: yes, except in a dry run)")
    parser.add_argument("--budget-s", type=float, default=300.0,
                        help="after this many seconds only the kernel rows are still measured")
    parser.add_argument("--out", default=None,
                        help="folder of the .json and .md results (default benchmarks/results; a dry run "
                             "writes only when given)")
    parser.add_argument("--check-summary", nargs="+", metavar="STEP=EXIT",
                        help="write the results file of a gpu_check.sh run instead of benchmarking "
                             f"(steps: {', '.join(CHECK_STEPS)}; EXIT a number or 'skipped')")
    parser.add_argument("--check-note", nargs="*", metavar="STEP=TEXT", help="a note per step of --check-summary")
    parser.add_argument("--commit", default="unknown", help="the commit checked (--check-summary)")
    args = parser.parse_args(argv)
    dry = args.dry_run
    defaults = dict(device="cpu" if dry else "cuda", dtype="float32" if dry else "bfloat16", batch=2 if dry else 8,
                    warmup=1 if dry else 3, reps=1 if dry else 10, compile_flex=not dry,
                    out=None if dry else str(ROOT / "benchmarks" / "results"))
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check_summary:
        path = write_check_summary(args)
        print(f"wrote {path}")
        print(path.read_text().splitlines()[-1])
        return 0
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_gpu.py: no CUDA device here; run it on a GPU machine (benchmarks/gpu_check.sh), "
                 "or check the script with --dry-run")
    result = run_benchmark(args)
    if args.out is not None:
        slug = re.sub(r"[^a-z0-9]+", "-", result["info"]["device"].lower()).strip("-")
        stem = Path(args.out) / f"{slug}-{result['info']['date']}"
        write_json(stem.with_suffix(".json"), result, indent=1, default=str)
        write_text(stem.with_suffix(".md"), markdown(result))
        print(f"wrote {stem}.json and {stem}.md")
    print(short_table(result))
    failures = kernel_failures(result)
    for failure in failures:
        print(f"FAILED kernel row: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
