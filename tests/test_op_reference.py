# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The PyTorch reference op against the independent float64 oracle, on real MeMViT layer shapes."""

from __future__ import annotations

import pytest
import torch
from oracle import oracle, relative_error

from memvit.models.shapes import preset_attention_problems
from memvit_ext import KVSegment, RelPos, memory_pooling_attention
from memvit_ext.rel_pos import (
    memory_temporal_index,
    reference_nonsquare_w_index,
    spatial_distance_index,
    temporal_distance_index,
)
from memvit_ext.testing import distinct, leaves, make_inputs

M16 = distinct(preset_attention_problems("memvit_16_16x4"))
M24 = distinct(preset_attention_problems("memvit_24_32x3"))
M24_FAST = [p for p in M24 if p.name in ("blk6", "blk22")]  # one stage-3 memory layer, one stage-4


def _check_against_oracle(inputs: dict, implementation: str, tol: float = 1e-5) -> None:
    q = inputs["q"]
    kwargs = {k: v for k, v in inputs.items() if k != "q"}
    out = memory_pooling_attention(q, **kwargs, implementation=implementation)
    assert out.dtype == q.dtype and out.shape == q.shape
    ref = oracle(q, kwargs["q_thw"], kwargs["segments"], kwargs["rel_pos"], q_has_cls=kwargs["q_has_cls"])
    assert relative_error(out, ref) <= tol
    grad = torch.randn_like(ref)
    params = leaves(inputs)
    got = torch.autograd.grad(out, params, grad.to(out.dtype))
    want = torch.autograd.grad(ref, params, grad)
    for i, (g, w) in enumerate(zip(got, want)):
        assert relative_error(g, w) <= tol, f"gradient {i} of {len(params)}"


@pytest.mark.parametrize("problem", M16 + M24_FAST, ids=lambda p: f"{p.name}-h{p.heads}-nq{p.queries}-nk{p.keys}")
def test_reference_matches_oracle_on_memvit_layers(problem, gen):
    _check_against_oracle(make_inputs(problem, requires_grad=True, generator=gen), "reference")


@pytest.mark.slow
@pytest.mark.parametrize("problem", M24, ids=lambda p: f"{p.name}-h{p.heads}-nq{p.queries}-nk{p.keys}")
def test_reference_matches_oracle_on_all_memvit24_layers(problem, gen):
    _check_against_oracle(make_inputs(problem, requires_grad=True, generator=gen), "reference")


@pytest.mark.parametrize("memory", [True, False])
def test_reference_without_memory_rel_pos_or_cls(memory, gen):
    problem = preset_attention_problems("memvit_16_16x4", memory=memory)[4]
    for rel_pos, cls in ((True, False), (False, True), (False, False)):
        inputs = make_inputs(problem, batch=2, requires_grad=True, generator=gen, rel_pos=rel_pos, cls=cls)
        _check_against_oracle(inputs, "reference")


def test_reference_gradcheck_float64(gen):
    """Small shapes: finite differences of every input, memory and main tables included."""
    d, H = 8, 2

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    q_thw, kv_thw, mem_thw = (2, 4, 4), (2, 2, 2), (1, 2, 2)
    q = randn(1, H, 1 + 32, d)
    segs = [KVSegment(randn(1, H, 5, d), randn(1, H, 5, d), mem_thw) for _ in range(2)]
    segs.append(KVSegment(randn(1, H, 9, d), randn(1, H, 9, d), kv_thw))
    rel = RelPos(h=randn(7, d), w=randn(7, d), t=randn(3, d), mem_h=randn(7, d), mem_w=randn(7, d),
                 mem_t=randn(2 + 3 * 1, d), mem_t_stride=3)

    def f(q, k0, v0, k1, v1, k2, v2, th, tw, tt, mh, mw, mt):
        segments = [KVSegment(k0, v0, mem_thw), KVSegment(k1, v1, mem_thw), KVSegment(k2, v2, kv_thw)]
        tables = RelPos(h=th, w=tw, t=tt, mem_h=mh, mem_w=mw, mem_t=mt, mem_t_stride=3)
        return memory_pooling_attention(q, q_thw, segments, rel_pos=tables, implementation="reference")

    args = (q, *[t for s in segs for t in (s.k, s.v)], *rel.tables())
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7, rtol=1e-5)


# ------------------------------------------------------------------ distance rules, hand-computed
def test_spatial_rows_hand_computed():
    # q 4 positions, k 2 (k stretched by 2): i - 2j + 2
    assert spatial_distance_index(4, 2).tolist() == [[2, 0], [3, 1], [4, 2], [5, 3]]
    # q 2, k 4 (q stretched by 2): 2i - j + 3
    assert spatial_distance_index(2, 4).tolist() == [[3, 2, 1, 0], [5, 4, 3, 2]]
    # equal sizes: i - j + 2, the usual table of 2*3-1 = 5 rows
    assert spatial_distance_index(3, 3).tolist() == [[2, 1, 0], [3, 2, 1], [4, 3, 2]]


def test_temporal_rows_hand_computed():
    assert temporal_distance_index(2, 2).tolist() == [[1, 0], [2, 1]]
    # two memory clips of 2 slots each, stride 4, query t in {0, 1}: i - 4j + 12
    assert memory_temporal_index(2, 0, 2, 4, 4).tolist() == [[12, 8], [13, 9]]
    assert memory_temporal_index(2, 2, 2, 4, 4).tolist() == [[4, 0], [5, 1]]


def test_nonsquare_rule_hand_computed():
    # q 2x4 (h x w), k 1x2: the h rows are i - 2j + 0 = {0, 1}; w uses the same ratio (2) and
    # offset (0): i - 2j, clamped into [0, 1]
    assert reference_nonsquare_w_index(2, 1, 4, 2).tolist() == [[0, 0], [1, 0], [1, 0], [1, 1]]


def test_reference_nonsquare_matches_oracle(gen):
    """A full-frame test-time grid (wider than tall) under the reference's rule."""
    d, H = 16, 2
    q_thw, kv_thw = (2, 6, 10), (2, 3, 5)

    def randn(*shape, std=1.0):
        return (torch.randn(*shape, generator=gen) * std).requires_grad_()

    q = randn(1, H, 1 + 120, d)
    seg = KVSegment(randn(1, H, 31, d), randn(1, H, 31, d), kv_thw)
    rows_h = 2 * 6 - 1
    rel = RelPos(h=randn(rows_h, d, std=0.3), w=randn(rows_h, d, std=0.3), t=randn(3, d, std=0.3),
                 reference_nonsquare=True)
    out = memory_pooling_attention(q, q_thw, [seg], rel_pos=rel, implementation="reference")
    assert relative_error(out, oracle(q, q_thw, [seg], rel)) <= 1e-5
    # The geometric rule differs on such a grid (w has its own ratio and a 19-row table).
    geometric = RelPos(h=rel.h, w=randn(19, d, std=0.3), t=rel.t)
    out2 = memory_pooling_attention(q, q_thw, [seg], rel_pos=geometric, implementation="reference")
    assert relative_error(out2, oracle(q, q_thw, [seg], geometric)) <= 1e-5


def test_attn_mask_bool_and_float(gen):
    problem = preset_attention_problems("memvit_16_16x4")[14]
    inputs = make_inputs(problem, batch=2, generator=gen)
    q = inputs.pop("q")
    n_keys = sum(s.k.shape[2] for s in inputs["segments"])
    keep = torch.rand(2, 1, q.shape[2], n_keys, generator=gen) > 0.3
    keep[:, :, :, -1] = True
    out = memory_pooling_attention(q, **inputs, attn_mask=keep, implementation="reference")
    ref = oracle(q, inputs["q_thw"], inputs["segments"], inputs["rel_pos"], attn_mask=keep)
    assert relative_error(out, ref) <= 1e-5
    additive = torch.randn(q.shape[2], n_keys, generator=gen)
    out = memory_pooling_attention(q, **inputs, attn_mask=additive, implementation="reference")
    ref = oracle(q, inputs["q_thw"], inputs["segments"], inputs["rel_pos"], attn_mask=additive)
    assert relative_error(out, ref) <= 1e-5


def test_fully_masked_rows_attend_nothing(gen):
    problem = preset_attention_problems("memvit_16_16x4")[15]
    inputs = make_inputs(problem, generator=gen, requires_grad=True)
    q = inputs.pop("q")
    n_keys = sum(s.k.shape[2] for s in inputs["segments"])
    keep = torch.ones(q.shape[2], n_keys, dtype=torch.bool)
    keep[5] = False
    out = memory_pooling_attention(q, **inputs, attn_mask=keep, implementation="reference")
    torch.testing.assert_close(out[:, :, 5], q[:, :, 5])  # residual only
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
