# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The authors' MeMViT beside ours on the CPU: same weights, same clips, their scores and their speed.

    python benchmarks/reference_side_by_side.py --reference /path/to/MeMViT [--model 16|24] [--clips 3]
        [--train-steps 2] [--threads N] [--dtype fp32|bf16] [--out FILE.md [--overwrite]] [KEY VALUE ...]

``--reference`` is a checkout of facebookresearch/MeMViT (CC-BY-NC: never copied into this
repository; it is imported from where it lies). The AVA models: ours from ``configs/ava_16.yaml``
(``ava_24.yaml``), theirs from the checkout's ``configs/AVA/MeMViT_16_K400.yaml``
(``MeMViT_24_K600.yaml``) read by its own config code, with batch 1 and ``NUM_GPUS 0``; trailing
``KEY VALUE`` overrides apply to both configs (the test runs a two-block model this way).

Steps: our model (random weights, ``--seed``) is saved as a PySlowFast ``.pyth`` and loaded strictly
into both models; one video of random clips (test crop, four boxes each) runs clip after clip
from an empty memory, then ``--clips`` more with the memory filled (the clips the sampler needs,
:func:`memvit.flops.clips_to_fill_memory`); inference is timed on those, and ``--train-steps``
training steps (forward, BCE, backward, SGD step, memory filled first, as ``memvit.benchmark``).
Reported: medians in s/clip, the reference's time over ours, and the largest score difference
over every clip of the sequence (eval mode; training-mode outputs depend on dropout draws).

Why processes: both packages are called ``memvit``, so the two models never share a process.
Each side runs in its own subprocess (this file with ``--_worker``), which also gives both
the same fresh start. The reference's subprocess puts the checkout first on ``sys.path`` and,
for its imports that are not installed, first registers stand-ins (named in the report):
``detectron2.layers.ROIAlign`` as ``torchvision.ops.roi_align`` with the same arguments (what
detectron2's layer calls; it has no parameters) and ``simplejson`` as the standard ``json``.
Nothing in the reference's model path needs CUDA once ``NUM_GPUS`` is 0, so nothing is patched.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"16": ("configs/ava_16.yaml", "configs/AVA/MeMViT_16_K400.yaml"),
          "24": ("configs/ava_24.yaml", "configs/AVA/MeMViT_24_K600.yaml")}
# What makes the reference's config describe our run: one clip per step on the CPU.
REFERENCE_SETTINGS = ["NUM_GPUS", "0", "TRAIN.BATCH_SIZE", "1", "TEST.BATCH_SIZE", "1"]
VIDEO_IDS = [0]  # one video: every clip may attend the memory of the earlier ones
EXIT_MISSING_MODULE = 3


# ----------------------------------------------------------------- the workers (one per model)
class _RoIAlignStandIn(torch.nn.Module):
    """detectron2's ``ROIAlign(output_size, spatial_scale, sampling_ratio, aligned)``: torchvision's op."""

    def __init__(self, output_size: Any, spatial_scale: float, sampling_ratio: int, aligned: bool = True) -> None:
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import roi_align

        return roi_align(features, rois.to(features.dtype), self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)


def _install_stand_ins() -> list[str]:
    """Stand-ins for the reference's imports that are not installed; returns what was stood in for."""
    import importlib.util
    import types

    used = []
    if importlib.util.find_spec("detectron2") is None:
        detectron2, layers = types.ModuleType("detectron2"), types.ModuleType("detectron2.layers")
        layers.ROIAlign = _RoIAlignStandIn
        detectron2.layers = layers
        sys.modules.update({"detectron2": detectron2, "detectron2.layers": layers})
        used.append("detectron2.layers.ROIAlign (torchvision.ops.roi_align, same arguments)")
    if importlib.util.find_spec("simplejson") is None:
        sys.modules["simplejson"] = json
        used.append("simplejson (the standard json module)")
    return used


def _reference_model(job: dict) -> tuple[torch.nn.Module, Callable, Callable, list[str]]:
    stand_ins = _install_stand_ins()
    checkout = os.path.abspath(job["reference"])
    sys.path.insert(0, checkout)
    import importlib

    import memvit  # the reference's package, from the checkout

    if not os.path.abspath(memvit.__file__).startswith(checkout + os.sep):
        raise RuntimeError(f"'memvit' was imported from {memvit.__file__}, not from the checkout {checkout}")
    defaults, models = (importlib.import_module(f"memvit.{name}") for name in ("config.defaults", "models"))
    cfg = defaults.get_cfg()
    cfg.merge_from_file(os.path.join(checkout, job["reference_cfg"]))
    cfg.merge_from_list(REFERENCE_SETTINGS + list(job["overrides"]))
    torch.manual_seed(0)
    model = models.build_model(cfg)
    model.load_state_dict(torch.load(job["state"], map_location="cpu", weights_only=True)["model_state"], strict=True)
    forward = lambda clip, boxes: model([clip], video_names=VIDEO_IDS, bboxes=boxes)
    return model, forward, model.clear_memory, stand_ins


def _our_model(job: dict) -> tuple[torch.nn.Module, Callable, Callable, list[str]]:
    if ROOT not in sys.path:  # this checkout's package, also where it is not installed
        sys.path.insert(0, ROOT)
    from memvit.cli import load_model
    from memvit.config import load_config

    cfg = load_config(os.path.join(ROOT, job["our_cfg"]), job["overrides"])
    model = load_model(cfg, job["state"], implementation=job["implementation"])
    forward = lambda clip, boxes: model(clip, video_ids=VIDEO_IDS, boxes=boxes)
    reset = model.memory.reset if model.memory is not None else (lambda: None)
    return model, forward, reset, []


def run_worker(job_path: str, out_path: str) -> None:
    """One model through the clip sequence: eval scores and times, then timed training steps."""
    with open(job_path) as f:
        job = json.load(f)
    torch.set_num_threads(job["threads"])
    try:
        model, forward, reset, stand_ins = (_reference_model if job["side"] == "reference" else _our_model)(job)
    except ModuleNotFoundError as error:
        print(f"the {job['side']} model needs the module {error.name!r}, which is not installed", file=sys.stderr)
        raise SystemExit(EXIT_MISSING_MODULE) from None
    inputs = torch.load(job["inputs"], weights_only=True)
    clips, boxes, warmup = inputs["clips"], inputs["boxes"], job["warmup"]
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=job["dtype"] == "bf16")
    scores, inference_s = [], []
    model.eval()
    reset()
    with torch.no_grad(), autocast():
        for index, clip in enumerate(clips):
            start = time.perf_counter()
            scores.append(forward(clip[None], boxes).float())
            if index >= warmup:
                inference_s.append(time.perf_counter() - start)
    model.train()
    reset()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    with torch.no_grad(), autocast():
        for clip in clips[:warmup if job["train_steps"] else 0]:  # fill the memory
            forward(clip[None], boxes)
    train_s = []
    for step in range(job["train_steps"]):
        clip = clips[(warmup + step) % len(clips)]
        start = time.perf_counter()
        with autocast():
            out = forward(clip[None], boxes)
        torch.nn.functional.binary_cross_entropy(out.float(), torch.zeros_like(out, dtype=torch.float32)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        train_s.append(time.perf_counter() - start)
    torch.save({"scores": torch.stack(scores), "inference_s": inference_s, "train_s": train_s,
                "stand_ins": stand_ins, "threads": torch.get_num_threads()}, out_path)


# ----------------------------------------------------------------------------- the comparison
def _worker_result(tmp: str, name: str, job: dict) -> dict:
    """Run one worker subprocess; its result dict."""
    from memvit.cli import UserError
    from memvit.files import write_json

    job_path, out_path = os.path.join(tmp, f"{name}.json"), os.path.join(tmp, f"{name}.pt")
    write_json(job_path, job)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--_worker", job_path, out_path],
                          capture_output=True, text=True, cwd=tmp)
    if proc.returncode == EXIT_MISSING_MODULE:
        raise UserError(proc.stderr.strip().splitlines()[-1],
                        "install it in this environment (or add a stand-in to benchmarks/reference_side_by_side.py)")
    if proc.returncode != 0:
        raise RuntimeError(f"the {name} run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return torch.load(out_path, weights_only=True)


def _git_commit(path: str) -> str:
    proc = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown commit"


def compare(reference: str, model: str = "16", *, clips: int = 3, train_steps: int = 2, threads: int = 1,
            dtype: str = "fp32", implementation: str = "kernel", overrides: Sequence[str] = (), seed: int = 0,
            quiet: bool = False, command: str | None = None) -> tuple[str, float]:
    """Run both models; returns the markdown report and the largest fp32 score difference."""
    import datetime
    import tempfile

    from tqdm import tqdm

    from benchmarks import cpu_name
    from memvit.checkpoint import atomic_save, save_checkpoint
    from memvit.cli import example_inputs, load_model
    from memvit.config import load_config
    from memvit.flops import clips_to_fill_memory

    our_cfg, reference_cfg = MODELS[model]
    cfg = load_config(os.path.join(ROOT, our_cfg), overrides)
    with tempfile.TemporaryDirectory(prefix="memvit-side-by-side-") as tmp:
        net = load_model(cfg, seed=seed, warn_random=False)
        warmup = clips_to_fill_memory(net)
        generator = torch.Generator().manual_seed(seed)
        sequence = [example_inputs(net, cfg, train=False, generator=generator) for _ in range(warmup + clips)]
        boxes = sequence[0][1]
        shape = "x".join(str(n) for n in sequence[0][0].shape)
        state_path, inputs_path = os.path.join(tmp, "weights.pyth"), os.path.join(tmp, "inputs.pt")
        save_checkpoint(state_path, net, cfg=cfg)
        atomic_save({"clips": torch.cat([clip for clip, _ in sequence]), "boxes": boxes}, inputs_path)
        del net, sequence
        job = {"reference": os.path.abspath(reference), "reference_cfg": reference_cfg, "our_cfg": our_cfg,
               "overrides": list(overrides), "state": state_path, "inputs": inputs_path, "warmup": warmup,
               "train_steps": train_steps, "threads": threads, "implementation": implementation, "dtype": "fp32"}
        runs = [("reference", "fp32"), ("ours", "fp32")] + ([("ours", "bf16")] if dtype == "bf16" else [])
        results = {}
        for side, run_dtype in tqdm(runs, desc="models", unit="run", disable=quiet or not sys.stderr.isatty()):
            if not quiet:
                print(f"running {side} {run_dtype} ({warmup + clips} clips, {train_steps} training steps)...",
                      file=sys.stderr, flush=True)
            results[side, run_dtype] = _worker_result(tmp, f"{side}-{run_dtype}", {**job, "side": side,
                                                                                   "dtype": run_dtype})
    ref = results["reference", "fp32"]
    diffs = {key: (r["scores"] - ref["scores"]).abs().max().item() for key, r in results.items() if key[0] == "ours"}
    median = lambda seconds: statistics.median(seconds) if seconds else float("nan")
    columns = [key for key in results if key[0] == "ours"]
    header = "| phase | reference s/clip | " + " | ".join(
        f"ours {d} s/clip | reference/ours {d} | max abs score diff {d}" for _, d in columns) + " |"
    lines = [f"# MeMViT-{model} (AVA head), the reference beside memvit on the CPU", "",
             f"{datetime.date.today().isoformat()}: {cpu_name()} ({os.cpu_count()} cores), torch {torch.__version__}, "
             f"{ref['threads']} thread(s); batch 1, {shape} clips with {boxes.shape[0]} boxes, one video.",
             f"Reference: {os.path.abspath(reference)} ({_git_commit(reference)}), {reference_cfg} read by its own "
             f"config code + {' '.join(REFERENCE_SETTINGS)}. Ours: {our_cfg}, attention `{implementation}`."
             + (f" Both with the overrides `{' '.join(overrides)}`." if overrides else ""),
             f"Same weights (ours, seed {seed}, saved as a PySlowFast .pyth, loaded strictly by both). Memory filled "
             f"by {warmup} earlier clips before timing; medians of {clips} inference clip(s) and {train_steps} "
             "training step(s) (forward, BCE, backward, SGD step). Score differences: sigmoid scores of every box "
             f"of all {warmup + clips} clips in order (memory empty to filled), eval mode.",
             *([f"Command: `{command}`"] if command else []), "",
             header, "|---|---|" + "---|---|---|" * len(columns)]
    for phase, key in (("inference", "inference_s"), ("train step", "train_s")):
        if not ref[key]:
            continue
        cells = [f"{median(ref[key]):.3g}"]
        for column in columns:
            ours = median(results[column][key])
            diff = f"{diffs[column]:.1e}" if phase == "inference" else "n/a (dropout)"
            cells += [f"{ours:.3g}", f"{median(ref[key]) / ours:.2f}x", diff]
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    stand_ins = ref["stand_ins"]
    lines += ["", "Stand-ins for the reference's imports that are not installed: "
              + ("; ".join(stand_ins) if stand_ins else "none") + "."]
    return "\n".join(lines) + "\n", diffs["ours", "fp32"]


def main(argv: Sequence[str] | None = None) -> int:
    if ROOT not in sys.path:  # run as a script: `benchmarks` and `memvit` from this checkout
        sys.path.insert(0, ROOT)
    from memvit.cli import UserError, command_parser, user_errors_exit

    @user_errors_exit
    def run(argv: Sequence[str] | None) -> int:
        parser = command_parser("python benchmarks/reference_side_by_side.py", __doc__.split("\n\n")[0], cfg=False)
        parser.add_argument("--reference", required=True, help="a checkout of facebookresearch/MeMViT")
        parser.add_argument("--model", choices=sorted(MODELS), default="16", help="MeMViT-16 or MeMViT-24 (AVA)")
        parser.add_argument("--clips", type=int, default=3, help="timed inference clips after the memory is filled")
        parser.add_argument("--train-steps", type=int, default=2, help="timed training steps (0: none)")
        parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of each model")
        parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                            help="bf16: also run ours under bfloat16 autocast (the reference runs fp32)")
        parser.add_argument("--seed", type=int, default=0, help="of the random weights and clips")
        parser.add_argument("--implementation", default="kernel", help="our attention op (memvit_ext)")
        parser.add_argument("--tolerance", type=float, default=1e-4,
                            help="exit 1 when the fp32 scores differ by more than this")
        parser.add_argument("--out", help="also write the report to this markdown file")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
        parser.add_argument("--quiet", action="store_true", help="no progress output")
        argv_list = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv_list)
        builder = os.path.join(args.reference, "memvit", "models", "video_model_builder.py")
        if not os.path.isfile(builder):
            raise UserError(f"--reference {args.reference}: not a MeMViT checkout (no memvit/models/"
                            "video_model_builder.py)", "git clone https://github.com/facebookresearch/MeMViT")
        reference_cfg = os.path.join(args.reference, MODELS[args.model][1])
        if not os.path.isfile(reference_cfg):
            raise UserError(f"the checkout has no {MODELS[args.model][1]}", "use a checkout of the released code")
        if args.clips < 1 or args.train_steps < 0:
            raise UserError("--clips must be at least 1 (the scores are compared) and --train-steps at least 0")
        if args.out and os.path.exists(args.out) and not args.overwrite:
            raise UserError(f"--out {args.out} exists", "pass --overwrite to replace it")
        text, diff = compare(args.reference, args.model, clips=args.clips, train_steps=args.train_steps,
                             threads=args.threads, dtype=args.dtype, implementation=args.implementation,
                             overrides=args.opts, seed=args.seed, quiet=args.quiet,
                             command=shlex.join(["python", "benchmarks/reference_side_by_side.py", *argv_list]))
        print(text, end="")
        if args.out:
            from memvit.files import write_text

            write_text(args.out, text)
        if diff > args.tolerance:
            print(f"the fp32 scores differ by {diff:.2e} > --tolerance {args.tolerance:g}", file=sys.stderr)
            return 1
        return 0

    return run(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--_worker"]:  # a model's subprocess: imports nothing of ours before it knows its side
        run_worker(*sys.argv[2:4])
    else:
        raise SystemExit(main())
