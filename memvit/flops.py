# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Parameters and GFLOPs under the paper's counting protocol.

``python -m memvit.flops --cfg configs/k400_16.yaml`` prints the parameter count and the fvcore
GFLOPs of one clip with empty memory and with the memory filled, and the compute memory adds.

Protocol (the reference's ``get_model_stats``): eval mode, batch 1, one ``3 x T x S x S`` clip,
the model run clip after clip on the same video so the memory fills, the last run counted with
``fvcore.nn.FlopCountAnalysis`` (one multiply-add = one flop). fvcore counts from a JIT trace,
in which the attention is one node whichever implementation serves it (the compiled kernel's
op or the reference's op); :func:`attention_flop_jit` counts that node analytically, as the
reference counts its own ops, so both implementations give the same number.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .cli import user_errors_exit

ATTENTION_OPS = ("memvit_ext::pooling_attention", "memvit_ext::pooling_attention_reference",
                 "memvit_ext::pooling_attention_sdpa")
# Position of q_cls among the ops' arguments (q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets,
# scale, residual, q_cls, attn_mask).
_Q_CLS_ARGUMENT = 9


def attention_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle of the attention ops, in multiply-adds, as the reference's ops count:

    * ``q k^T`` and ``attn v`` over every key of every segment: ``2 * B * H * Nq * Nk * head_dim``;
    * the decomposed relative positions ``q . R``, one product per bin of the rel_bias (the
      reference's per-axis products: t, h, w of the current clip, h and w of the memory clips
      once, t of every memory time slot), for the non-cls queries:
      ``B * H * (Nq - cls) * bins * head_dim``.
    """
    from fvcore.nn.jit_handles import get_shape

    batch, heads, queries, head_dim = get_shape(inputs[0])
    keys_list = inputs[1].node()
    if keys_list.kind() != "prim::ListConstruct":
        raise RuntimeError(f"unexpected producer of the keys list in the trace: {keys_list.kind()}")
    keys = sum(get_shape(k)[2] for k in keys_list.inputs())
    flops = 2 * batch * heads * queries * keys * head_dim
    rel_bias = get_shape(inputs[3])
    if rel_bias is not None:
        q_cls = bool(inputs[_Q_CLS_ARGUMENT].toIValue())
        flops += batch * heads * (queries - int(q_cls)) * rel_bias[-1] * head_dim
    return flops


class _BoundIds(nn.Module):
    """``model(x, video_ids=ids, boxes=boxes)`` as a one-tensor-input module (what tracing needs)."""

    def __init__(self, model: nn.Module, video_ids: Sequence[Hashable] | None, boxes: Tensor | None) -> None:
        super().__init__()
        self.model, self.video_ids, self.boxes = model, video_ids, boxes

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, video_ids=self.video_ids, boxes=self.boxes)


def count_flops(model: nn.Module, clip: Tensor, video_ids: Sequence[Hashable] | None = None,
                boxes: Tensor | None = None) -> tuple[float, Counter]:
    """fvcore GFLOPs of one forward (it runs the model once, updating its memory) and the
    per-operator breakdown."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(_BoundIds(model, video_ids, boxes), (clip,))
    for op in ATTENTION_OPS:
        analysis.set_op_handle(op, attention_flop_jit)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        total = analysis.total()
    return total / 1e9, Counter({k: v / 1e9 for k, v in analysis.by_operator().items()})


def memory_clips_per_step(model: nn.Module, steps: int) -> list[int]:
    """How many memory clips the sampler attends at steps 0..steps-1 of one video."""
    from .models.memory import sample_memory

    state = model.memory
    if state is None:
        return [0] * steps
    return [len(sample_memory(min(s, state.keep_max_len - 1), state.sampler)) for s in range(steps)]


def clips_to_fill_memory(model: nn.Module) -> int:
    """How many clips of one video run before the sampler attends the most memory clips it ever
    will: the steady state benchmarks time (0 without memory)."""
    plan = memory_clips_per_step(model, 64)
    return plan.index(max(plan))


def params_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gflops_by_memory(model: nn.Module, clip: Tensor, boxes: Tensor | None = None,
                     log=None) -> dict[int, tuple[float, int]]:
    """GFLOPs with 0, 1, ... memory clips attended: ``{memory clips: (GFLOPs, earlier clips)}``.

    Runs one video clip after clip from an empty memory (``model.memory`` is reset first and
    left filled), counting the first step at which each number of memory clips is attended.
    """
    model.eval()
    if model.memory is not None:
        model.memory.reset()
    max_mem = model.memory.attn_max_len - 1 if model.memory is not None else 0
    plan = memory_clips_per_step(model, 64)
    targets = {n: plan.index(n) for n in range(max_mem + 1) if n in plan}
    last = max(targets.values())
    ids = ["video"] * clip.shape[0]
    results: dict[int, tuple[float, int]] = {}
    for step in range(last + 1):
        start = time.perf_counter()
        counted = [n for n, s in targets.items() if s == step]
        if counted:
            gflops, _ = count_flops(model, clip, ids if model.memory is not None else None, boxes)
            results[counted[0]] = (gflops, step)
        else:
            with torch.no_grad():
                model(clip, video_ids=ids, boxes=boxes)
        if log is not None:
            what = f"counted ({plan[step]} memory clips)" if counted else "filling memory"
            log(f"  clip {step + 1}/{last + 1}: {what}, {time.perf_counter() - start:.1f} s")
    return results


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    from .cli import command_parser, load_cfg, load_model
    from .config import input_shape

    parser = command_parser("python -m memvit.flops", __doc__.split("\n\n")[0])
    parser.add_argument("--test-crop", action="store_true", help="count at DATA.TEST_CROP_SIZE (default: train crop)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    cfg = load_cfg(args)
    model = load_model(cfg, seed=0, warn_random=False)  # FLOPs do not depend on the weights; seeded all the same
    torch.manual_seed(0)
    c, t, h, w = input_shape(cfg, train=not args.test_crop)
    clip = torch.rand(1, c, t, h, w)
    boxes = torch.tensor([[0.0, 0.0, 0.0, w - 1.0, h - 1.0]]) if model.is_detection else None
    head = "AVA (box block + RoI head)" if model.is_detection else "classification"
    params = params_count(model)
    print(f"config: {args.cfg}")
    memory = "off"
    if model.memory is not None:
        memory = f"on: {model.memory.sampler}, up to {model.memory.attn_max_len - 1} memory clips"
    print(f"model: {cfg.MVIT.DEPTH} blocks, {head}, {cfg.MODEL.NUM_CLASSES} classes; memory {memory}")
    print(f"params: {params:,} ({params / 1e6:.3f} M)")
    log(f"counting GFLOPs of a 1x{c}x{t}x{h}x{w} clip (fvcore, eval mode)...")
    results = gflops_by_memory(model, clip, boxes, log=log)
    print(f"GFLOPs (fvcore: one multiply-add = one flop; batch 1, {c}x{t}x{h}x{w}):")
    for n, (gflops, step) in sorted(results.items()):
        label = "memory empty" if n == 0 else f"{n} memory clip{'s' if n > 1 else ''}"
        print(f"  {label:<18} {gflops:9.3f}   (after {step} earlier clips of the video)")
    empty, filled = results[0][0], results[max(results)][0]
    if len(results) > 1:
        print(f"memory adds {100 * (filled - empty) / empty:.2f}% compute (filled {filled:.3f} vs empty {empty:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
