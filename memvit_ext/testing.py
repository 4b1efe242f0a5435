# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Attention problems (the op's shapes) and random inputs for them.

Used by the tests and the benchmarks. The problems of the real MeMViT layers: the tables
:data:`MEMVIT16_LAYERS` and :data:`MEMVIT24_LAYERS` below, equal (tested) to what
``memvit.models.shapes.preset_attention_problems`` reads from the built models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .segments import KVSegment, RelPos


@dataclass(frozen=True)
class AttentionProblem:
    name: str
    heads: int
    q_thw: tuple[int, int, int]
    kv_thw: tuple[int, int, int]
    mem_thw: tuple[int, int, int] | None = None  # grid of one compressed memory clip
    n_mem: int = 0
    head_dim: int = 96
    mem_t_stride: int = 4
    mem_t_rows: int = 23  # rows of rel_pos_mem_t (3 * T - 1 for ATTN_MAX_LEN 3)
    count: int = 1  # how many layers of a network have this shape

    @property
    def queries(self) -> int:
        return 1 + self.q_thw[0] * self.q_thw[1] * self.q_thw[2]

    @property
    def keys(self) -> int:
        n = 1 + self.kv_thw[0] * self.kv_thw[1] * self.kv_thw[2]
        if self.mem_thw is not None:
            n += self.n_mem * (1 + self.mem_thw[0] * self.mem_thw[1] * self.mem_thw[2])
        return n

    def flops(self, batch: int = 1) -> int:
        """Forward FLOPs of QK^T and PV (2 per multiply-add)."""
        return 4 * batch * self.heads * self.queries * self.keys * self.head_dim


P = AttentionProblem
# The distinct attention layers of the released presets at their training clip sizes, in steady
# state (two compressed memory clips in the memory layers): what memvit.models.shapes reads from
# the built models (tests/test_bench_gpu.py checks these tables against it). Written out so the op's
# own tools (python -m memvit_ext, the GPU benchmark) need neither the model nor PyTorchVideo.
MEMVIT16_LAYERS: tuple[AttentionProblem, ...] = (
    P("blk0", heads=1, q_thw=(8, 56, 56), kv_thw=(8, 7, 7), mem_thw=(2, 4, 4), n_mem=2),
    P("blk1", heads=2, q_thw=(8, 28, 28), kv_thw=(8, 14, 14)),
    P("blk2", heads=2, q_thw=(8, 28, 28), kv_thw=(8, 7, 7), mem_thw=(2, 4, 4), n_mem=2),
    P("blk3", heads=4, q_thw=(8, 14, 14), kv_thw=(8, 14, 14)),
    P("blk4", heads=4, q_thw=(8, 14, 14), kv_thw=(8, 7, 7), mem_thw=(2, 4, 4), n_mem=2, count=5),
    P("blk5", heads=4, q_thw=(8, 14, 14), kv_thw=(8, 7, 7), count=5),
    P("blk14", heads=8, q_thw=(8, 7, 7), kv_thw=(8, 14, 14), mem_thw=(2, 7, 7), n_mem=2),
    P("blk15", heads=8, q_thw=(8, 7, 7), kv_thw=(8, 7, 7)),
)
MEMVIT24_LAYERS: tuple[AttentionProblem, ...] = tuple(P(**{**kw, "mem_t_rows": 47}) for kw in (
    dict(name="blk0", heads=1, q_thw=(16, 56, 56), kv_thw=(16, 7, 7), mem_thw=(4, 4, 4), n_mem=2),
    dict(name="blk1", heads=1, q_thw=(16, 56, 56), kv_thw=(16, 7, 7)),
    dict(name="blk2", heads=2, q_thw=(16, 28, 28), kv_thw=(16, 14, 14), mem_thw=(4, 7, 7), n_mem=2),
    dict(name="blk3", heads=2, q_thw=(16, 28, 28), kv_thw=(16, 7, 7)),
    dict(name="blk4", heads=2, q_thw=(16, 28, 28), kv_thw=(16, 7, 7), mem_thw=(4, 4, 4), n_mem=2),
    dict(name="blk5", heads=4, q_thw=(16, 14, 14), kv_thw=(16, 14, 14)),
    dict(name="blk6", heads=4, q_thw=(16, 14, 14), kv_thw=(16, 7, 7), mem_thw=(4, 4, 4), n_mem=2, count=8),
    dict(name="blk7", heads=4, q_thw=(16, 14, 14), kv_thw=(16, 7, 7), count=7),
    dict(name="blk21", heads=8, q_thw=(16, 7, 7), kv_thw=(16, 14, 14)),
    dict(name="blk22", heads=8, q_thw=(16, 7, 7), kv_thw=(16, 7, 7), mem_thw=(4, 4, 4), n_mem=2),
    dict(name="blk23", heads=8, q_thw=(16, 7, 7), kv_thw=(16, 7, 7)),
))


def distinct(layers: list[AttentionProblem]) -> list[AttentionProblem]:
    """Merge layers of identical shape, counting them (the 16 layers of MeMViT-16 are 8 shapes)."""
    seen: dict[tuple, AttentionProblem] = {}
    for layer in layers:
        key = (layer.heads, layer.q_thw, layer.kv_thw, layer.mem_thw, layer.n_mem)
        if key in seen:
            first = seen[key]
            seen[key] = AttentionProblem(**{**first.__dict__, "count": first.count + 1})
        else:
            seen[key] = layer
    return list(seen.values())


def make_inputs(problem: AttentionProblem, batch: int = 1, dtype=torch.float32, device="cpu",
                requires_grad: bool = False, generator: torch.Generator | None = None,
                rel_pos: bool = True, cls: bool = True, table_std: float = 0.3) -> dict:
    """Random q, segments and tables of a problem: kwargs of memory_pooling_attention (+ 'q')."""
    def randn(*shape, std=1.0):
        t = torch.randn(*shape, generator=generator, dtype=torch.float32) * std
        return t.to(device=device, dtype=dtype).requires_grad_(requires_grad)

    H, d = problem.heads, problem.head_dim
    c = int(cls)
    def tokens(thw):
        return c + thw[0] * thw[1] * thw[2]

    grids = [problem.mem_thw] * problem.n_mem + [problem.kv_thw]
    segments = [KVSegment(randn(batch, H, tokens(g), d), randn(batch, H, tokens(g), d), g, cls) for g in grids]
    tables = None
    if rel_pos:
        qt, qh, qw = problem.q_thw
        kt, kh, kw = problem.kv_thw
        def table(rows):
            return randn(rows, d, std=table_std)
        mem = {}
        if problem.n_mem:
            mt, mh, mw = problem.mem_thw
            mem = dict(mem_h=table(2 * max(qh, mh) - 1), mem_w=table(2 * max(qw, mw) - 1),
                       mem_t=table(problem.mem_t_rows))
        tables = RelPos(h=table(2 * max(qh, kh) - 1), w=table(2 * max(qw, kw) - 1), t=table(2 * max(qt, kt) - 1),
                        mem_t_stride=problem.mem_t_stride, **mem)
    return dict(q=randn(batch, H, tokens(problem.q_thw), d), q_thw=problem.q_thw, segments=segments,
                q_has_cls=cls, rel_pos=tables)


def leaves(inputs: dict) -> list[torch.Tensor]:
    """The differentiable inputs of make_inputs(...): q, each k, each v, each present table."""
    out = [inputs["q"]] + [s.k for s in inputs["segments"]] + [s.v for s in inputs["segments"]]
    if inputs["rel_pos"] is not None:
        out += [t for t in inputs["rel_pos"].tables() if t is not None]
    return out


def ops_seen():
    """A dispatch mode that records the names of the dispatcher ops that run inside it (``.names``):
    the tests tell which implementation served a call by them. The kernel op shows as
    memvit_ext.pooling_attention; the reference and SDPA ops decompose into ATen ops first (SDPA's
    as a fused scaled_dot_product kernel, or its math form's _safe_softmax; the reference's
    softmax is plain _softmax)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpsSeen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    return OpsSeen()
