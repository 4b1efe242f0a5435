# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The dispatcher op: opcheck, fake kernels, autograd registration, torch.compile, dispatch choice."""

from __future__ import annotations

import warnings

import pytest
import torch
from oracle import relative_error

import memvit_ext
from memvit_ext import memory_pooling_attention, query_rel_bias
from memvit_ext.testing import AttentionProblem, leaves, make_inputs

SMALL = AttentionProblem("small", heads=2, q_thw=(2, 4, 4), kv_thw=(2, 2, 2), mem_thw=(1, 2, 2), n_mem=2,
                         head_dim=16, mem_t_stride=2, mem_t_rows=5)
HAS_CPU_KERNEL = "cpu" in memvit_ext.kernel_capabilities()


def op_args(inputs: dict, mask=None) -> tuple:
    segs = inputs["segments"]
    tables, offsets = query_rel_bias(inputs["q"], inputs["q_thw"], inputs["q_has_cls"], segs, inputs["rel_pos"])
    return (inputs["q"], [s.k for s in segs], [s.v for s in segs], tables, [x for s in segs for x in s.thw],
            [int(s.has_cls) for s in segs], offsets, 0.25, True, True, mask)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_mask", [False, True])
def test_opcheck_forward(dtype, with_mask, gen):
    inputs = make_inputs(SMALL, batch=2, dtype=dtype, generator=gen, requires_grad=True)
    mask = torch.randn(1, 1, 33, 19, generator=gen, dtype=dtype) if with_mask else None
    args = op_args(inputs, mask)
    args[3].detach_().requires_grad_()
    torch.library.opcheck(torch.ops.memvit_ext.pooling_attention.default, args)


def test_opcheck_backward(gen):
    inputs = make_inputs(SMALL, batch=2, generator=gen)
    args = op_args(inputs)
    out, lse = torch.ops.memvit_ext.pooling_attention(*args)
    grad = torch.randn(out.shape, generator=gen)
    bwd_args = (grad, *args[:4], out, lse, *args[4:])
    torch.library.opcheck(torch.ops.memvit_ext.pooling_attention_backward.default, bwd_args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


def test_fallback_kernels_match_the_dispatched_op(gen):
    """The CompositeExplicitAutograd kernels (used on backends with no compiled kernel) agree."""
    from memvit_ext import ops

    inputs = make_inputs(SMALL, generator=gen)
    args = op_args(inputs)
    out, lse = torch.ops.memvit_ext.pooling_attention(*args)
    assert out.shape == inputs["q"].shape and lse.shape == inputs["q"].shape[:3]
    ref_out, ref_lse = ops._pooling_attention_reference(*args)
    assert relative_error(out, ref_out) < 1e-5
    assert relative_error(lse, ref_lse) < 1e-5
    grad = torch.randn(out.shape, generator=gen)
    got = torch.ops.memvit_ext.pooling_attention_backward(grad, *args[:4], out, lse, *args[4:])
    want = ops._pooling_attention_backward_reference(grad, *args[:4], out, lse, *args[4:])
    assert relative_error(got[0], want[0]) < 1e-5 and relative_error(got[3], want[3]) < 1e-5
    for g, w in zip(got[1] + got[2], want[1] + want[2]):
        assert relative_error(g, w) < 1e-5


@pytest.mark.parametrize("implementation", ["kernel", "reference"])
def test_torch_compile_fullgraph(implementation, gen):
    if implementation == "kernel" and not HAS_CPU_KERNEL:
        pytest.skip("no compiled CPU kernel")
    inputs = make_inputs(SMALL, batch=2, generator=gen, requires_grad=True)

    def attention(q, segments, rel_pos):
        return memory_pooling_attention(q, SMALL.q_thw, segments, rel_pos=rel_pos, implementation=implementation)

    compiled = torch.compile(attention, fullgraph=True, backend="aot_eager")
    out = compiled(inputs["q"], inputs["segments"], inputs["rel_pos"])
    expected = attention(inputs["q"], inputs["segments"], inputs["rel_pos"])
    assert relative_error(out, expected) < 1e-6
    grad = torch.randn(out.shape, generator=gen)
    got = torch.autograd.grad(out, leaves(inputs), grad)
    want = torch.autograd.grad(expected, leaves(inputs), grad)
    for g, w in zip(got, want):
        assert relative_error(g, w) < 1e-6


@pytest.mark.slow
def test_torch_compile_inductor(gen):
    inputs = make_inputs(SMALL, batch=2, generator=gen, requires_grad=True)

    def attention(q, segments, rel_pos):
        return memory_pooling_attention(q, SMALL.q_thw, segments, rel_pos=rel_pos)

    out = torch.compile(attention, fullgraph=True)(inputs["q"], inputs["segments"], inputs["rel_pos"])
    assert relative_error(out, attention(inputs["q"], inputs["segments"], inputs["rel_pos"])) < 1e-5
    out.sum().backward()


def test_meta_tensors_give_shapes(gen):
    inputs = make_inputs(SMALL, batch=3, generator=gen, device="meta")
    out = memory_pooling_attention(inputs["q"], SMALL.q_thw, inputs["segments"], rel_pos=inputs["rel_pos"])
    assert out.shape == (3, 2, 33, 16) and out.device.type == "meta"


def test_auto_dispatch_warns_once_for_unserved_dtype(gen):
    if not HAS_CPU_KERNEL:
        pytest.skip("no compiled CPU kernel")
    inputs = make_inputs(SMALL, dtype=torch.float16, generator=gen)
    q = inputs.pop("q")
    from memvit_ext import ops

    ops._WARNED.clear()
    with pytest.warns(UserWarning, match="does not serve float16.*PyTorch reference"):
        out = memory_pooling_attention(q, **inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory_pooling_attention(q, **inputs)  # no second warning
    ref = memory_pooling_attention(q.float(), **{**inputs, "segments": [s._replace(k=s.k.float(), v=s.v.float())
                                                                         for s in inputs["segments"]],
                                               "rel_pos": inputs["rel_pos"]._replace(
                                                   **{n: getattr(inputs["rel_pos"], n).float()
                                                      for n in ("h", "w", "t", "mem_h", "mem_w", "mem_t")})})
    assert relative_error(out, ref) < 2e-3


def test_kernel_refusal_names_the_reason(gen):
    inputs = make_inputs(SMALL, dtype=torch.float16, generator=gen)
    q = inputs.pop("q")
    with pytest.raises(RuntimeError, match="implementation='kernel' but the cpu kernel does not serve float16"):
        memory_pooling_attention(q, **inputs, implementation="kernel")


def test_build_info_describes_the_build():
    info = memvit_ext.build_info()
    assert info["runtime_torch"] == torch.__version__
    if info["extension"] == "loaded":
        assert info["built_cpu_kernels"] is True
        assert info["built_with_torch"] == torch.__version__
        assert info["implementation"]["cpu"].startswith("compiled CPU kernel")
        if info["built_cuda_kernels"]:
            assert info["cuda_archs"] and info["built_with_cuda"] == torch.version.cuda
        else:
            assert info["implementation"]["cuda"].startswith("PyTorch reference")
