# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The op's ``implementation="sdpa"``: the augmented-QK identity on ``F.scaled_dot_product_attention``.

It serves CUDA tensors by default while the fused CUDA kernels are not validated on a GPU (the
reference would hold ``Nq x Nk`` float32 logits and probabilities: 368 MB each for MeMViT-16's
first layer at batch 8). Checked here on the CPU, tiny shapes: forward against the independent
float64 oracle, every gradient against the reference op in float64, masks (bool, float, rows with
every key masked, which SDPA alone would answer with NaN), bfloat16, ``torch.compile(fullgraph=True)``,
and that a JIT trace shows it as one op node (what the flop counter keys on).
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from oracle import oracle, relative_error

from benchmarks import baselines
from memvit import flops
from memvit_ext import memory_pooling_attention, ops, reference
from memvit_ext.testing import AttentionProblem, leaves, make_inputs

MEMORY = AttentionProblem("memory", heads=2, q_thw=(2, 3, 3), kv_thw=(2, 2, 2), mem_thw=(1, 2, 2), n_mem=2,
                          head_dim=12, mem_t_stride=2, mem_t_rows=5)  # 12 + bins: the augmented width is padded
NO_MEMORY = AttentionProblem("no_memory", heads=3, q_thw=(2, 4, 3), kv_thw=(2, 2, 3), head_dim=8)
CASES = {  # name: (problem, rel_pos, cls)
    "memory": (MEMORY, True, True),
    "no_memory_no_cls": (NO_MEMORY, True, False),
    "no_rel_pos": (MEMORY, False, True),
}
MASKS = ("none", "bool_full_row", "float_full_row", "bool_per_row")
BATCH = 2


def inputs_for(case: str, gen, dtype=torch.float32) -> dict:
    problem, rel_pos, cls = CASES[case]
    return make_inputs(problem, batch=BATCH, dtype=dtype, requires_grad=True, generator=gen, rel_pos=rel_pos,
                       cls=cls)


def n_keys(inputs: dict) -> int:
    return sum(s.k.shape[2] for s in inputs["segments"])


def make_mask(kind: str, inputs: dict, gen) -> torch.Tensor | None:
    """Masks the op accepts, each with at least one row whose keys are all masked."""
    n_q, n_k = inputs["q"].shape[2], n_keys(inputs)
    if kind == "none":
        return None
    if kind == "bool_full_row":  # (B, 1, Nq, Nk), False = masked
        mask = torch.rand(BATCH, 1, n_q, n_k, generator=gen) > 0.4
        mask[..., 0] = True
        mask[0, :, 2] = False
        return mask
    if kind == "float_full_row":  # (Nq, Nk) additive: finite values and -inf, one row all -inf
        mask = torch.randn(n_q, n_k, generator=gen)
        mask[torch.rand(n_q, n_k, generator=gen) > 0.6] = float("-inf")
        mask[:, 1] = 0.5
        mask[3] = float("-inf")
        return mask
    mask = torch.ones(BATCH, 1, n_q, 1, dtype=torch.bool)  # broadcast over the keys: whole rows masked
    mask[1, :, 1] = False
    return mask


def run(inputs: dict, implementation: str, grad: torch.Tensor | None, attn_mask=None):
    q = inputs["q"]
    out = memory_pooling_attention(q, inputs["q_thw"], inputs["segments"], q_has_cls=inputs["q_has_cls"],
                                   rel_pos=inputs["rel_pos"], attn_mask=attn_mask, implementation=implementation)
    if grad is None:
        return out, None
    return out, torch.autograd.grad(out, leaves(inputs), grad)


def as_float64(inputs: dict) -> dict:
    """Detached float64 copies that require grad (the exact side)."""
    def exact(t):
        return t.detach().double().requires_grad_()

    rel = inputs["rel_pos"]
    if rel is not None:
        rel = rel._replace(**{n: exact(t) for n, t in rel._asdict().items() if isinstance(t, torch.Tensor)})
    return {**inputs, "q": exact(inputs["q"]), "rel_pos": rel,
            "segments": [s._replace(k=exact(s.k), v=exact(s.v)) for s in inputs["segments"]]}


def check_against_exact(inputs: dict, mask, gen, tol: float) -> None:
    grad = torch.randn(inputs["q"].shape, generator=gen)
    out, grads = run(inputs, "sdpa", grad.to(inputs["q"].dtype), mask)
    assert out.dtype == inputs["q"].dtype
    exact_inputs = as_float64(inputs)
    truth = oracle(exact_inputs["q"].detach(), inputs["q_thw"], exact_inputs["segments"], exact_inputs["rel_pos"],
                   q_has_cls=inputs["q_has_cls"], attn_mask=mask)
    assert relative_error(out, truth) <= tol
    _, exact_grads = run(exact_inputs, "reference", grad.double(), mask)
    for i, (g, r) in enumerate(zip(grads, exact_grads)):
        assert g.dtype == inputs["q"].dtype and torch.isfinite(g).all(), f"gradient {i}"
        assert relative_error(g, r) <= tol, f"gradient {i}: {relative_error(g, r):.3g}"


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("case", CASES)
def test_sdpa_float32_matches_the_oracle_and_every_gradient(case, mask_kind, gen):
    inputs = inputs_for(case, gen)
    check_against_exact(inputs, make_mask(mask_kind, inputs, gen), gen, 1e-5)


@pytest.mark.parametrize("mask_kind", ["none", "bool_full_row"])
def test_sdpa_bfloat16_stays_bfloat16_within_tolerance(mask_kind, gen):
    inputs = inputs_for("memory", gen, dtype=torch.bfloat16)
    check_against_exact(inputs, make_mask(mask_kind, inputs, gen), gen, 1e-2)  # the kernels' bf16 bound


@pytest.mark.parametrize("mask_kind", ["bool_full_row", "float_full_row", "bool_per_row"])
def test_fully_masked_rows_give_the_residual_only(mask_kind, gen):
    """SDPA alone answers NaN on such rows (and NaN gradients for every key); the op answers 0 + residual."""
    inputs = inputs_for("memory", gen)
    mask = make_mask(mask_kind, inputs, gen)
    out, _ = run(inputs, "sdpa", None, mask)
    full = mask if mask.dtype == torch.bool else torch.isfinite(mask)
    dead = ~full.any(dim=-1).expand(BATCH, out.shape[1], out.shape[2])
    assert dead.any()
    q = inputs["q"].detach()
    residual = torch.cat([torch.zeros_like(q[:, :, :1]), q[:, :, 1:]], dim=2)
    torch.testing.assert_close(out.detach()[dead], residual[dead], rtol=0, atol=0)


def nan_on_empty_rows_sdpa(q, k, v, attn_mask=None, scale=None):
    """SDPA as CUDA's memory-efficient kernel behaves: NaN on a row whose keys are all masked (a plain
    softmax; PyTorch's CPU kernels and math form answer 0 there, so the CPU alone would not show it)."""
    logits = (q @ k.transpose(-1, -2)) * scale
    if attn_mask is not None:
        logits = logits.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else logits + attn_mask
    return torch.softmax(logits, dim=-1) @ v


@pytest.mark.parametrize("mask_kind", ["bool_full_row", "float_full_row", "bool_per_row"])
def test_fully_masked_rows_are_handled_whatever_sdpa_answers_there(mask_kind, gen, monkeypatch):
    inputs = inputs_for("memory", gen)
    mask = make_mask(mask_kind, inputs, gen)
    grad = torch.randn(inputs["q"].shape, generator=gen)
    expected, expected_grads = run(inputs, "reference", grad, mask)
    monkeypatch.setattr(reference, "F", SimpleNamespace(scaled_dot_product_attention=nan_on_empty_rows_sdpa))
    out, grads = run(inputs, "sdpa", grad, mask)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for i, (g, e) in enumerate(zip(grads, expected_grads)):
        assert torch.isfinite(g).all(), f"gradient {i} has NaN"
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_auto_on_cuda_selects_sdpa_until_the_kernels_are_validated():
    cuda = {"cuda": {"dtypes": [torch.bfloat16, torch.float32], "head_dims": [64, 96, 128], "attn_mask": True}}
    assert ops.choose_auto_path("cuda", cuda).implementation == "sdpa"
    assert ops.choose_auto_path("cuda", {}).implementation == "sdpa"  # no CUDA kernel built
    assert ops.choose_auto_path("cuda", cuda, env_value="0", validated="benchmarks/results/x.md").implementation \
        == "sdpa"  # opted out of validated kernels
    assert ops.choose_auto_path("cuda", cuda, opt_in=True).implementation == "kernel"
    assert ops.choose_auto_path("cpu", {}).implementation == "reference"  # the CPU keeps its reference
    assert ops.fallback_of("cuda") == "sdpa" and ops.fallback_of("cpu") == "reference"


def test_unknown_implementation_names_sdpa():
    inputs = inputs_for("memory", torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="'auto', 'kernel', 'sdpa' or 'reference'; got 'flash'"):
        run(inputs, "flash", None)


def test_full_graph_compile_traces_the_sdpa_path(gen):
    inputs = inputs_for("memory", gen)
    mask = make_mask("bool_full_row", inputs, gen)

    def attention(q, k, table):
        segments = [*inputs["segments"][:-1], inputs["segments"][-1]._replace(k=k)]
        return memory_pooling_attention(q, inputs["q_thw"], segments, rel_pos=inputs["rel_pos"]._replace(h=table),
                                        attn_mask=mask, implementation="sdpa")

    args = (inputs["q"], inputs["segments"][-1].k, inputs["rel_pos"].h)
    compiled = torch.compile(attention, fullgraph=True, backend="aot_eager")
    out, expected = compiled(*args), attention(*args)
    torch.testing.assert_close(out, expected)
    grad = torch.randn(out.shape, generator=gen)
    for g, e in zip(torch.autograd.grad(out, args, grad), torch.autograd.grad(expected, args, grad)):
        torch.testing.assert_close(g, e)


def test_one_node_in_a_jit_trace_known_to_the_flop_counter(gen):
    """The flop counter (memvit.flops) keys on the op's node: the SDPA path must be one, and counted."""
    inputs = make_inputs(MEMORY, batch=BATCH, generator=gen)

    def traced(implementation):
        def attention(q):
            return memory_pooling_attention(q, inputs["q_thw"], inputs["segments"], rel_pos=inputs["rel_pos"],
                                            implementation=implementation)
        with warnings.catch_warnings():  # torch.jit.trace's deprecation and tracer warnings
            warnings.simplefilter("ignore")
            return torch.jit.trace(attention, (inputs["q"],), check_trace=False)

    kinds = [node.kind() for node in traced("sdpa").graph.nodes()]
    assert ops.OP_SDPA in kinds and ops.OP_SDPA in flops.ATTENTION_OPS
    assert not any("scaled_dot_product" in kind for kind in kinds)


def test_the_benchmark_baseline_is_the_op_path(gen):
    """benchmarks/baselines.py's augqk_sdpa calls the op's SDPA form (one implementation of the idea)."""
    inputs = make_inputs(MEMORY, batch=BATCH, generator=gen)
    with torch.no_grad():
        baseline = baselines.augqk_sdpa(inputs["q"], inputs["q_thw"], inputs["segments"], inputs["rel_pos"])
        op, _ = run(inputs, "sdpa", None)
    assert torch.equal(baseline, op)
