# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""PackedLinear (oneDNN on a packed weight for float32 CPU inference) against float64 products."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from memvit.models.packed_linear import PackedLinear, pack_linear_layers
from memvit_ext.testing import ops_seen

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch without oneDNN")


def packed(in_features: int, out_features: int, gen: torch.Generator) -> PackedLinear:
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen))
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))
    assert pack_linear_layers(layer) == 1
    return layer


def exact(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return x.double() @ layer.weight.double().t() + layer.bias.double()


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b).norm() / b.norm()).item()


def test_inference_runs_on_onednn_and_equals_the_product(gen):
    layer = packed(96, 40, gen)
    x = torch.randn(3, 17, 96, generator=gen)[:, 1:]  # 3-D, not contiguous (cls token cut off)
    with torch.no_grad(), ops_seen() as seen:
        out = layer(x)
    assert "mkldnn._linear_pointwise" in " ".join(seen.names)
    assert out.shape == (3, 16, 40) and relative_error(out, exact(layer, x)) <= 1e-6


def test_weight_changes_are_followed(gen):
    """An optimizer step (in place) and a loaded state dict both reach the next inference."""
    layer = packed(32, 8, gen)
    x = torch.randn(5, 32, generator=gen)
    with torch.no_grad():
        layer(x)  # packs
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(x).square().sum().backward()
    optimizer.step()
    with torch.no_grad():
        assert relative_error(layer(x), exact(layer, x)) <= 1e-6
        other = packed(32, 8, gen)
        layer.load_state_dict(other.state_dict())
        assert relative_error(layer(x), exact(other, x)) <= 1e-6


@pytest.mark.parametrize("wide", [False, True], ids=["narrow", "wide"])
def test_training_gradients_equal_float64(wide, gen, monkeypatch):
    """With gradients: oneDNN forward and input gradient, the weight gradient on oneDNN for wide
    layers (threshold lowered here to reach that branch on small shapes) and on ATen otherwise."""
    from memvit.models import packed_linear

    monkeypatch.setattr(packed_linear, "WEIGHT_GRAD_MIN_FEATURES", 16 if wide else 10**6)
    layer = packed(48, 24, gen)
    x = torch.randn(2, 33, 48, generator=gen, requires_grad=True)
    grad = torch.randn(2, 33, 24, generator=gen)
    with ops_seen() as seen:
        out = layer(x)
        out.backward(grad)
    assert "mkldnn._linear_pointwise" in seen.names and ("aten.mm" in seen.names) == (not wide)
    x64 = x.detach().double().requires_grad_()
    w64 = layer.weight.detach().double().requires_grad_()
    b64 = layer.bias.detach().double().requires_grad_()
    want = torch.nn.functional.linear(x64, w64, b64)
    want.backward(grad.double())
    assert relative_error(out, want.detach()) <= 1e-6
    for got, truth in ((x.grad, x64.grad), (layer.weight.grad, w64.grad), (layer.bias.grad, b64.grad)):
        assert relative_error(got, truth) <= 1e-6


def test_bf16_autocast_inference_runs_on_a_packed_bf16_weight(gen):
    """Under CPU bf16 autocast without gradients: a bf16 weight packed once (autocast would cast
    and re-pack it every call), bf16 out, within bf16 rounding of the float64 product; with
    gradients autocast's own F.linear."""
    layer = packed(64, 32, gen)
    x = torch.randn(3, 10, 64, generator=gen)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), ops_seen() as seen:
        out = layer(x)
        again = layer(x)
    assert "mkldnn._linear_pointwise" in seen.names and out.dtype == torch.bfloat16
    assert torch.equal(out, again) and relative_error(out, exact(layer, x)) <= 1e-2
    with torch.autocast("cpu", dtype=torch.bfloat16), ops_seen() as seen:
        assert layer(x).dtype == torch.bfloat16
    assert "mkldnn._linear_pointwise" not in seen.names


def test_float64_keeps_f_linear(gen):
    layer = packed(16, 4, gen).double()
    with torch.no_grad(), ops_seen() as seen:
        layer(torch.randn(2, 16, generator=gen, dtype=torch.float64))
    assert "mkldnn._linear_pointwise" not in seen.names


def test_same_state_dict_and_copies_without_the_cache(gen):
    layer = packed(8, 8, gen)
    with torch.no_grad():
        layer(torch.randn(2, 8, generator=gen))
    assert "_packed_cache" in layer.__dict__
    assert list(layer.state_dict()) == ["weight", "bias"]
    twin = copy.deepcopy(layer)
    assert "_packed_cache" not in twin.__dict__
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = torch.randn(4, 8, generator=gen)
    with torch.no_grad():
        assert torch.equal(loaded(x), layer(x)) and torch.equal(twin(x), layer(x))


def test_the_model_packs_every_linear_and_keeps_its_outputs(gen):
    """create_memvit packs its Linear layers; a float32 CPU forward stays within 1e-5 of float64."""
    from test_model import TINY

    from memvit.models import create_memvit

    torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    model = create_memvit(**{**TINY, "head": "ava", "num_classes": 7}).eval()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears and all(type(m) is PackedLinear for m in linears)
    truth = copy.deepcopy(model).double()
    boxes = torch.tensor([[0, 2.0, 3, 40, 50]])
    with torch.no_grad():
        for _ in range(3):  # memory fills
            x = torch.randn(1, 3, 8, 64, 64, generator=gen)
            out, want = model(x, video_ids=[0], boxes=boxes), truth(x.double(), video_ids=[0], boxes=boxes.double())
            assert relative_error(out, want) <= 1e-5
