# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Bad input gets a ValueError naming the argument and the expected shape, never a crash."""

from __future__ import annotations

import pytest
import torch

from memvit.models.shapes import preset_attention_problems
from memvit_ext import KVSegment, RelPos, memory_pooling_attention
from memvit_ext.testing import make_inputs

PROBLEM = preset_attention_problems("memvit_16_16x4")[14]  # 8 heads, q 8x7x7, kv 8x14x14, two 2x7x7 memory clips


@pytest.fixture
def inputs(gen):
    return make_inputs(PROBLEM, batch=2, generator=gen)


def call(inputs, **changes):
    args = {**inputs, **changes}
    q = args.pop("q")
    return memory_pooling_attention(q, **args)


def replace_segment(inputs, index, **fields):
    segments = list(inputs["segments"])
    segments[index] = segments[index]._replace(**fields)
    return segments


def test_q_rank(inputs):
    with pytest.raises(ValueError, match=r"q must be a 4-D tensor \(batch, heads, tokens, head_dim\); "
                                         r"got \(8, 393, 96\)"):
        call(inputs, q=inputs["q"][0])


def test_q_dtype(inputs):
    with pytest.raises(ValueError, match="q must be float16, bfloat16, float32 or float64; got torch.int64"):
        call(inputs, q=inputs["q"].long())


def test_q_tokens_do_not_match_grid(inputs):
    with pytest.raises(ValueError, match=r"q has 393 tokens but q_thw=\(8, 7, 8\).*"
                                         r"expected q of shape \(2, 8, 449, 96\)"):
        call(inputs, q_thw=(8, 7, 8))


def test_q_grid_not_three_ints(inputs):
    with pytest.raises(ValueError, match="q_thw must be three positive ints"):
        call(inputs, q_thw=(8, 49))


def test_segment_heads_mismatch(inputs):
    k = inputs["segments"][2].k
    with pytest.raises(ValueError, match=r"segments\[2\]\.k must have shape "
                                         r"\(batch=2, heads=8, tokens=1569, head_dim=96\)"):
        call(inputs, segments=replace_segment(inputs, 2, k=k[:, :4]))


def test_segment_head_dim_mismatch(inputs):
    v = inputs["segments"][0].v
    with pytest.raises(ValueError, match=r"segments\[0\]\.v must have shape .*head_dim=96.*got \(2, 8, 99, 64\)"):
        call(inputs, segments=replace_segment(inputs, 0, v=v[..., :64]))


def test_segment_grid_product_mismatch(inputs):
    with pytest.raises(ValueError, match=r"segments\[1\]\.k must have shape "
                                         r"\(batch=2, heads=8, tokens=129, head_dim=96\) for thw=\(2, 8, 8\)"):
        call(inputs, segments=replace_segment(inputs, 1, thw=(2, 8, 8)))


def test_segment_dtype_mismatch(inputs):
    seg = inputs["segments"][2]
    with pytest.raises(ValueError, match=r"segments\[2\]\.k has dtype torch.float64 but q has torch.float32"):
        call(inputs, segments=replace_segment(inputs, 2, k=seg.k.double()))


def test_segment_device_mismatch(inputs):
    seg = inputs["segments"][2]
    with pytest.raises(ValueError, match=r"segments\[2\]\.v is on meta but q is on cpu"):
        call(inputs, segments=replace_segment(inputs, 2, v=seg.v.to("meta")))


def test_segments_must_be_a_list(inputs):
    with pytest.raises(ValueError, match="segments must be a non-empty sequence of KVSegment"):
        call(inputs, segments=inputs["segments"][2])
    with pytest.raises(ValueError, match="segments must be a non-empty sequence"):
        call(inputs, segments=[])
    with pytest.raises(ValueError, match=r"segments\[0\] must be a KVSegment"):
        call(inputs, segments=[(inputs["segments"][2].k, inputs["segments"][2].v)])


def test_table_wrong_rows(inputs):
    rel = inputs["rel_pos"]
    with pytest.raises(ValueError, match=r"rel_pos.h has 25 rows but .* need 27: expected shape \(27, 96\)"):
        call(inputs, rel_pos=rel._replace(h=rel.h[:25]))
    with pytest.raises(ValueError, match=r"rel_pos.mem_w has 11 rows .* need 13"):
        call(inputs, rel_pos=rel._replace(mem_w=rel.mem_w[:11]))
    with pytest.raises(ValueError, match=r"rel_pos.mem_t has 15 rows .* need at least 20"):
        call(inputs, rel_pos=rel._replace(mem_t=rel.mem_t[:15]))


def test_table_wrong_dim(inputs):
    rel = inputs["rel_pos"]
    with pytest.raises(ValueError, match=r"rel_pos.t must be a 2-D tensor \(rows, head_dim=96\); got \(15, 64\)"):
        call(inputs, rel_pos=rel._replace(t=rel.t[:, :64]))


def test_memory_segments_with_different_grids_share_one_table(inputs, gen):
    # q is 7x7: a 9x9 memory clip needs 17-row tables, the 7x7 clips 13 rows
    seg = KVSegment(torch.randn(2, 8, 1 + 2 * 9 * 9, 96, generator=gen), torch.randn(2, 8, 163, 96, generator=gen),
                    (2, 9, 9))
    segments = [seg] + list(inputs["segments"][1:])
    with pytest.raises(ValueError, match="rel_pos.mem_h serves segments that need different table sizes"):
        call(inputs, segments=segments)


def test_mem_t_stride(inputs):
    with pytest.raises(ValueError, match="rel_pos.mem_t_stride must be a positive int; got 0"):
        call(inputs, rel_pos=inputs["rel_pos"]._replace(mem_t_stride=0))


def test_mask_shape(inputs):
    with pytest.raises(ValueError, match=r"attn_mask of shape \(393, 100\) does not broadcast to \(batch=2, heads=8, "
                                         r"queries=393, keys=1767\)"):
        call(inputs, attn_mask=torch.zeros(393, 100))
    with pytest.raises(ValueError, match="attn_mask must be bool or floating point"):
        call(inputs, attn_mask=torch.zeros(393, 1767, dtype=torch.int32))


def test_scale_and_implementation(inputs):
    with pytest.raises(ValueError, match="scale must be a finite float or None"):
        call(inputs, scale=float("nan"))
    with pytest.raises(ValueError, match="implementation must be 'auto', 'kernel', 'sdpa' or 'reference'"):
        call(inputs, implementation="fast")


def test_rel_pos_type(inputs):
    with pytest.raises(ValueError, match="rel_pos must be a RelPos or None"):
        call(inputs, rel_pos={"h": inputs["rel_pos"].h})


def test_direct_op_call_checks_arguments(inputs):
    """The dispatcher op (used by torch.compile and power users) checks its own arguments too."""
    q = inputs["q"]
    keys = [s.k for s in inputs["segments"]]
    values = [s.v for s in inputs["segments"]]
    kv_thw = [x for s in inputs["segments"] for x in s.thw]
    with pytest.raises(RuntimeError, match=r"keys\[2\] must have shape \(2, 8, 1569, 96\)"):
        torch.ops.memvit_ext.pooling_attention(q, keys[:2] + [keys[2][:, :, 1:]], values, None, kv_thw, [1, 1, 1],
                                               [-1] * 9, 0.1, True, True, None)
    with pytest.raises(RuntimeError, match="bin_offsets needs 3 ints per segment"):
        torch.ops.memvit_ext.pooling_attention(q, keys, values, None, kv_thw, [1, 1, 1], [-1] * 8, 0.1, True, True,
                                               None)


def test_unknown_rel_pos_device_is_named(inputs):
    rel = inputs["rel_pos"]
    with pytest.raises(ValueError, match="rel_pos.w is on meta but q is on cpu"):
        call(inputs, rel_pos=RelPos(**{**rel._asdict(), "w": rel.w.to("meta")}))
