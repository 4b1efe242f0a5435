# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The fused CPU kernel against the reference op (the oracle), values and every gradient."""

from __future__ import annotations

import pytest
import torch
from oracle import oracle, relative_error

import memvit_ext
from memvit.models.shapes import preset_attention_problems
from memvit_ext import KVSegment, RelPos, memory_pooling_attention
from memvit_ext.testing import AttentionProblem, distinct, leaves, make_inputs

pytestmark = pytest.mark.skipif("cpu" not in memvit_ext.kernel_capabilities(), reason="no compiled CPU kernel")

M16 = distinct(preset_attention_problems("memvit_16_16x4"))
M16_NO_MEMORY = distinct(preset_attention_problems("memvit_16_16x4", memory=False))
M24 = distinct(preset_attention_problems("memvit_24_32x3"))
M24_FAST = [p for p in M24 if p.name in ("blk4", "blk6", "blk22", "blk23")]


def run(inputs: dict, implementation: str, grad: torch.Tensor | None = None, **extra):
    q = inputs["q"]
    kwargs = {k: v for k, v in inputs.items() if k != "q"}
    out = memory_pooling_attention(q, **kwargs, **extra, implementation=implementation)
    if grad is None:
        return out, None
    return out, torch.autograd.grad(out, leaves(inputs), grad)


def in_float64(inputs: dict) -> dict:
    """The same inputs, exactly, in float64: the reference on them is the truth a float32 run is
    measured against (the float32 reference has rounding errors of its own, large ones where a
    softmax is peaked)."""
    def up(t):
        return None if t is None else t.detach().double().requires_grad_(t.requires_grad)
    out = dict(inputs, q=up(inputs["q"]), segments=[s._replace(k=up(s.k), v=up(s.v)) for s in inputs["segments"]])
    if inputs["rel_pos"] is not None:
        out["rel_pos"] = inputs["rel_pos"]._replace(**{name: up(getattr(inputs["rel_pos"], name))
                                                       for name in ("h", "w", "t", "mem_h", "mem_w", "mem_t")})
    return out


def compare_with_reference(inputs: dict, tol: float, gen: torch.Generator, **extra) -> None:
    """Kernel against the reference op in float64 on the same values: output and every gradient."""
    grad = torch.randn(inputs["q"].shape, generator=gen).to(inputs["q"].dtype)
    out, grads = run(inputs, "kernel", grad, **extra)
    truth = in_float64(inputs)
    extra64 = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in extra.items()}
    ref, ref_grads = run(truth, "reference", grad.double(), **extra64)
    assert relative_error(out, ref) <= tol
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        if torch.count_nonzero(r) == 0:  # e.g. keys of a one-key softmax: rounding noise vs exact 0
            assert g.double().norm() <= tol * grad.double().norm(), f"gradient {i}"
        else:
            assert relative_error(g, r) <= tol, f"gradient {i}"


def ids(p: AttentionProblem) -> str:
    return f"{p.name}-h{p.heads}-nq{p.queries}-nk{p.keys}"


@pytest.mark.parametrize("problem", M16 + M24_FAST, ids=ids)
def test_kernel_matches_reference_float32(problem, gen):
    compare_with_reference(make_inputs(problem, requires_grad=True, generator=gen), 1e-5, gen)


@pytest.mark.slow
@pytest.mark.parametrize("problem", M24, ids=ids)
def test_kernel_matches_reference_float32_all_memvit24(problem, gen):
    compare_with_reference(make_inputs(problem, requires_grad=True, generator=gen), 1e-5, gen)


@pytest.mark.parametrize("problem", M16_NO_MEMORY[:3], ids=ids)
@pytest.mark.parametrize("rel_pos,cls", [(True, False), (False, True), (False, False)])
def test_kernel_without_memory_cls_or_rel_pos(problem, rel_pos, cls, gen):
    inputs = make_inputs(problem, batch=2, requires_grad=True, generator=gen, rel_pos=rel_pos, cls=cls)
    compare_with_reference(inputs, 1e-5, gen)


@pytest.mark.parametrize("problem", [M16[0], M16[4], M16[6]], ids=ids)
def test_kernel_bfloat16_against_float64(problem, gen):
    inputs = make_inputs(problem, dtype=torch.bfloat16, requires_grad=True, generator=gen)
    grad = torch.randn(inputs["q"].shape, generator=gen)
    out, grads = run(inputs, "kernel", grad.bfloat16())
    assert out.dtype == torch.bfloat16
    ref, ref_grads = run(in_float64(inputs), "reference", grad.double())
    assert relative_error(out, ref) <= 1e-2
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert g.dtype == torch.bfloat16
        assert relative_error(g, r) <= 1e-2, f"gradient {i}"


@pytest.mark.parametrize("implementation", ["kernel", "reference"])
def test_op_trains_under_bf16_autocast(implementation, gen):
    """As in a model under CPU autocast: q, k, v arrive in bf16 (Linear outputs), the tables are
    float32 parameters, backward runs after the autocast region. Both implementations, against
    float64 on the same values."""
    problem = M16[4]
    inputs = make_inputs(problem, batch=2, requires_grad=True, generator=gen)
    grad = torch.randn(inputs["q"].shape, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        as_bf16 = dict(inputs, q=inputs["q"].bfloat16(),
                       segments=[s._replace(k=s.k.bfloat16(), v=s.v.bfloat16()) for s in inputs["segments"]])
        out = memory_pooling_attention(as_bf16.pop("q"), **as_bf16, implementation=implementation)
    grads = torch.autograd.grad(out, leaves(inputs), grad.bfloat16())
    # the truth sees the bf16-rounded q, k, v the op saw
    def rounded_(t):
        return t.bfloat16().float()
    rounded = dict(inputs, q=rounded_(inputs["q"]),
                   segments=[s._replace(k=rounded_(s.k), v=rounded_(s.v)) for s in inputs["segments"]])
    ref, ref_grads = run(in_float64(rounded), "reference", grad.double())
    assert out.dtype == torch.bfloat16
    assert relative_error(out, ref) <= 1e-2
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert g.dtype == torch.float32  # leaves keep their dtype
        assert relative_error(g, r) <= 2e-2, f"gradient {i}"


def test_kernel_gradcheck_float64(gen):
    d = 8
    q_thw, kv_thw, mem_thw = (2, 3, 3), (2, 2, 3), (1, 2, 2)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    args = (randn(2, 2, 19, d), randn(2, 2, 5, d), randn(2, 2, 5, d), randn(2, 2, 13, d), randn(2, 2, 13, d),
            randn(5, d), randn(5, d), randn(3, d), randn(5, d), randn(5, d), randn(4, d))

    def f(q, mk, mv, k, v, th, tw, tt, mh, mw, mt):
        segments = [KVSegment(mk, mv, mem_thw), KVSegment(k, v, kv_thw)]
        rel = RelPos(h=th, w=tw, t=tt, mem_h=mh, mem_w=mw, mem_t=mt, mem_t_stride=2)
        return memory_pooling_attention(q, q_thw, segments, rel_pos=rel, implementation="kernel")

    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7, rtol=1e-5)


ODD = [
    AttentionProblem("one-token", heads=1, q_thw=(1, 1, 1), kv_thw=(1, 1, 1), head_dim=96),
    AttentionProblem("planes-not-multiple", heads=3, q_thw=(3, 5, 7), kv_thw=(3, 7, 9), mem_thw=(1, 4, 5), n_mem=3,
                     head_dim=96, mem_t_stride=2, mem_t_rows=12),
    AttentionProblem("plane-wider-than-chunk", heads=1, q_thw=(2, 6, 6), kv_thw=(2, 24, 24), head_dim=40),
    AttentionProblem("many-chunks", heads=2, q_thw=(4, 5, 5), kv_thw=(12, 9, 9), mem_thw=(2, 3, 3), n_mem=1,
                     head_dim=16, mem_t_stride=4, mem_t_rows=12),
    AttentionProblem("long-q-blocks", heads=1, q_thw=(3, 11, 13), kv_thw=(3, 3, 4), head_dim=96),
]


@pytest.mark.parametrize("problem", ODD, ids=lambda p: p.name)
@pytest.mark.parametrize("cls", [True, False])
def test_kernel_odd_sizes(problem, cls, gen):
    # float64 shows any indexing slip at once. In float32 a softmax over two keys that one key wins
    # is ill-conditioned for the table gradients (dS = p0 p1 (dP1 - dP0) is small beside dP): the
    # kernel keeps its digits (delta taken about the winning key), PyTorch's float32 softmax
    # backward does not, which is why the truth here is the reference in float64.
    compare_with_reference(make_inputs(problem, batch=2, dtype=torch.float64, requires_grad=True, generator=gen,
                                       cls=cls), 1e-10, gen)
    compare_with_reference(make_inputs(problem, batch=2, requires_grad=True, generator=gen, cls=cls), 2e-5, gen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_masks(dtype, gen):
    problem = M16[6]
    inputs = make_inputs(problem, batch=2, dtype=dtype, requires_grad=True, generator=gen)
    n_keys = problem.keys
    keep = torch.rand(2, 1, problem.queries, n_keys, generator=gen) > 0.5
    keep[:, :, 3] = False  # a fully masked row
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    compare_with_reference(inputs, tol, gen, attn_mask=keep)
    additive = torch.randn(problem.heads, 1, n_keys, generator=gen).to(dtype)  # broadcast over queries
    compare_with_reference(inputs, tol, gen, attn_mask=additive)
    out, _ = run(inputs, "kernel", attn_mask=keep)
    torch.testing.assert_close(out[:, :, 3], inputs["q"][:, :, 3])


def test_kernel_strided_inputs(gen):
    """Projected q/k/v come as (B, N, H, D) permuted views: read in place, same answer."""
    problem = M16[4]
    base = make_inputs(problem, batch=2, generator=gen)
    permuted = dict(base)
    permuted["q"] = base["q"].transpose(1, 2).contiguous().transpose(1, 2)
    permuted["segments"] = [s._replace(k=s.k.transpose(1, 2).contiguous().transpose(1, 2),
                                       v=s.v.transpose(1, 2).contiguous().transpose(1, 2)) for s in base["segments"]]
    assert not permuted["q"].is_contiguous()
    out, _ = run(permuted, "kernel")
    ref, _ = run(base, "reference")
    assert relative_error(out, ref) <= 1e-5


def test_kernel_backward_is_deterministic(gen):
    problem = M16[0]  # one head: the query blocks are split across threads and reduced
    inputs = make_inputs(problem, requires_grad=True, generator=gen)
    grad = torch.randn(inputs["q"].shape, generator=gen)
    _, first = run(inputs, "kernel", grad)
    _, second = run(inputs, "kernel", grad)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_kernel_against_float64_oracle(gen):
    """Also check the kernel directly against the independent oracle (not only the reference)."""
    problem = M16[6]
    inputs = make_inputs(problem, batch=2, requires_grad=True, generator=gen)
    out, _ = run(inputs, "kernel")
    ref = oracle(inputs["q"], problem.q_thw, inputs["segments"], inputs["rel_pos"])
    assert relative_error(out, ref) <= 1e-5


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_thread_counts(threads, gen):
    problem = M16[2]
    inputs = make_inputs(problem, requires_grad=True, generator=gen)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        compare_with_reference(inputs, 1e-5, gen)
    finally:
        torch.set_num_threads(previous)
