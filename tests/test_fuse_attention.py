# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""fuse_attention: models we did not write (PyTorchVideo MViT, timm MViTv2) on the op, same outputs and gradients."""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from pytorchvideo.layers.attention import MultiScaleAttention as PyTorchVideoAttention
from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

import memvit
from memvit.models import FusedMultiScaleAttention, add_memory, set_attention_implementation

timm_mvitv2 = pytest.importorskip("timm.models.mvitv2")  # pinned in requirements/ci.txt
from memvit.models.fuse_timm import FusedTimmMultiScaleAttention  # noqa: E402  (needs timm)

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-5  # max abs difference, fp32


def small_ptv(pool_first: bool = False, pooling_mode: str = "conv", cls: bool = True) -> torch.nn.Module:
    """mvit_base_16x4's layout (q strides, adaptive kv strides, dims and heads x2), 4x32x32 input."""
    return create_multiscale_vision_transformers(
        spatial_size=32, temporal_size=4, depth=4, patch_embed_dim=16, num_heads=1, cls_embed_on=cls,
        embed_dim_mul=[[1, 2.0], [3, 2.0]], atten_head_mul=[[1, 2.0], [3, 2.0]],
        pool_q_stride_size=[[1, 1, 2, 2], [3, 1, 2, 2]], pool_kv_stride_adaptive=[1, 4, 4], pool_kvq_kernel=[3, 3, 3],
        pooling_mode=pooling_mode, pool_first=pool_first, head_num_classes=10, head_dropout_rate=0.0)


def small_timm(cls: bool = False, mode: str = "conv", heads: int | tuple[int, ...] = 2, pool_first: bool = False,
               img: int = 64) -> torch.nn.Module:
    """mvitv2_tiny's layout (q stride 2 per stage, adaptive kv stride, dims and heads x2), small."""
    cfg = timm_mvitv2.MultiScaleVitCfg(depths=(1, 2, 1), embed_dim=16, num_heads=heads, use_cls_token=cls, mode=mode,
                                       pool_first=pool_first, stride_q=((1, 1), (2, 2), (2, 2)))
    return timm_mvitv2.MultiScaleVit(cfg, img_size=img, num_classes=10)


def with_strong_rel_pos(model: torch.nn.Module) -> torch.nn.Module:
    """Relative-position tables as large as the logits (timm initialises them at std 0.02)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.5)
    return model


def assert_same_forward_and_backward(original: torch.nn.Module, x: torch.Tensor, check_backward: bool = True) -> None:
    fused = copy.deepcopy(original)
    report = memvit.fuse_attention(fused)
    assert report.fused and not report.left
    assert fused.state_dict().keys() == original.state_dict().keys()
    original.eval(), fused.eval()
    with torch.no_grad():
        want, got = original(x), fused(x)
    assert (got - want).abs().max() <= TOL
    if not check_backward:
        return
    original.train(), fused.train()
    for model in (original, fused):
        model.zero_grad()
        model(x).square().sum().backward()
    for (name, p), q in zip(original.named_parameters(), fused.parameters()):
        assert p.grad is not None and q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("pool_first", [False, True])
def test_pytorchvideo_mvit_same_outputs_and_gradients(pool_first):
    torch.manual_seed(1)
    original = small_ptv(pool_first)
    assert_same_forward_and_backward(original, torch.randn(2, 3, 4, 32, 32))


@pytest.mark.parametrize("pooling_mode, cls", [("max", True), ("conv", False)])
def test_pytorchvideo_mvit_other_pooling_and_no_cls(pooling_mode, cls):
    torch.manual_seed(2)
    assert_same_forward_and_backward(small_ptv(pooling_mode=pooling_mode, cls=cls), torch.randn(2, 3, 4, 32, 32),
                                     check_backward=False)


@pytest.mark.parametrize("cls", [False, True])
def test_timm_mvitv2_same_outputs_and_gradients(cls):
    torch.manual_seed(3)
    original = with_strong_rel_pos(small_timm(cls=cls))
    x = torch.randn(2, 3, 64, 64)
    assert_same_forward_and_backward(original, x)
    without_tables = copy.deepcopy(original)  # the test sees the relative positions
    with torch.no_grad():
        for name, p in without_tables.named_parameters():
            if "rel_pos" in name:
                p.zero_()
        assert (without_tables.eval()(x) - original.eval()(x)).abs().max() > 100 * TOL


@pytest.mark.parametrize("mode, heads", [("avg", 2), ("max", 2), ("conv_unshared", (1, 1, 1))])
def test_timm_mvitv2_pooling_modes(mode, heads):
    """conv_unshared pools all channels at once, which timm's attention runs with one head only."""
    torch.manual_seed(4)
    original = with_strong_rel_pos(small_timm(cls=True, mode=mode, heads=heads))
    assert_same_forward_and_backward(original, torch.randn(2, 3, 64, 64), check_backward=False)


def test_timm_mvitv2_input_smaller_and_wider_than_built():
    """Tables built for 64x64 read from their first rows; each axis with its own ratios."""
    torch.manual_seed(5)
    original = with_strong_rel_pos(small_timm())
    assert_same_forward_and_backward(original, torch.randn(1, 3, 48, 64), check_backward=False)


def test_timm_create_model_mvitv2_tiny():
    import timm

    torch.manual_seed(6)
    original = with_strong_rel_pos(timm.create_model("mvitv2_tiny", pretrained=False, img_size=64, num_classes=10))
    fused = copy.deepcopy(original)
    report = memvit.fuse_attention(fused)
    assert len(report.fused) == 10 and set(report.fused.values()) == {"timm MultiScaleAttention"}
    assert all(isinstance(fused.get_submodule(name), FusedTimmMultiScaleAttention) for name in report.fused)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (fused.eval()(x) - original.eval()(x)).abs().max() <= TOL


def test_report_lists_swapped_modules_and_implementation_is_set():
    model = small_ptv()
    report = memvit.fuse_attention(model, implementation="reference")
    assert list(report.fused) == [f"blocks.{i}.attn" for i in range(4)]
    assert all(isinstance(model.blocks[i].attn, FusedMultiScaleAttention) for i in range(4))
    assert {model.blocks[i].attn.implementation for i in range(4)} == {"reference"}
    set_attention_implementation(model, "sdpa")  # the model-wide switch reaches fused modules
    assert {model.blocks[i].attn.implementation for i in range(4)} == {"sdpa"}
    again = memvit.fuse_attention(model)
    assert not again.fused and again.already == list(report.fused)
    assert "nothing to swap: 4 already run it" in str(again)
    with pytest.raises(ValueError, match="implementation must be one of"):
        memvit.fuse_attention(model, implementation="fast")


def test_nothing_to_swap_is_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="memvit.models.fuse"):
        report = memvit.fuse_attention(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.MultiheadAttention(4, 2)))
    assert not report.fused and not report.left and not report.already
    assert "nothing to swap: found none of" in str(report)
    assert "nothing to swap" in caplog.text


def test_timm_pool_first_is_left_alone_and_reported(caplog):
    model = small_timm(pool_first=True)
    with caplog.at_level(logging.WARNING, logger="memvit.models.fuse"):
        report = memvit.fuse_attention(model)
    assert not report.fused and len(report.left) == 4
    assert all("pool-first" in why for why in report.left.values())
    assert all(type(model.get_submodule(name)) is timm_mvitv2.MultiScaleAttentionPoolFirst for name in report.left)
    assert "left as is stages.0.blocks.0.attn" in caplog.text


def test_subclass_is_left_alone_and_the_rest_fused():
    class Custom(PyTorchVideoAttention):
        def forward(self, x, thw_shape):
            out, thw = super().forward(x, thw_shape)
            return 2 * out, thw

    model = small_ptv()
    custom = Custom(32, num_heads=2, kernel_q=(3, 3, 3), kernel_kv=(3, 3, 3), stride_kv=(1, 2, 2))
    model.blocks[2].attn = custom
    report = memvit.fuse_attention(model)
    assert list(report.fused) == ["blocks.0.attn", "blocks.1.attn", "blocks.3.attn"]
    assert list(report.left) == ["blocks.2.attn"] and "subclasses" in report.left["blocks.2.attn"]
    assert model.blocks[2].attn is custom


def test_add_memory_and_fuse_share_the_module():
    """add_memory's attention is the fused module with memory; without memory both compute the same."""
    torch.manual_seed(7)
    original = small_ptv().eval()
    fused, wrapped = copy.deepcopy(original), add_memory(copy.deepcopy(original))
    memvit.fuse_attention(fused)
    assert isinstance(wrapped.mvit.blocks[0].attn, FusedMultiScaleAttention)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert (wrapped(x) - fused(x)).abs().max() <= TOL
