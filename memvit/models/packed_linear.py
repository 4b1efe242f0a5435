# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Linear layers whose products on CPU run on oneDNN with packed weights.

ATen's float32 ``F.linear`` on CPU is MKL's sgemm; oneDNN's product with a pre-packed weight is
2.1-2.5x faster on MeMViT's shapes on the AMD EPYC this project measures on (350-450 against
160-200 GFLOP/s on 2 cores, ``benchmarks/RESULTS.md``), and the Linear layers are about 60% of
a MeMViT-16 clip in float32. Inference packs each weight once; training packs it per step (the
weights change) with its own backward. Inference under CPU bf16 autocast also runs on a weight
packed once in bf16 (autocast would cast and re-pack it at every call: ~90 MB less peak memory
on MeMViT-16). Everything else keeps ``F.linear``: training under autocast, float64, other
devices, tracing, scripting and compiling (exporters do not know the op). Same parameters and
state dict as ``nn.Linear``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _packed_op_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


_AVAILABLE = _packed_op_available()


def _onednn_dtype(x: Tensor, weight: Tensor) -> torch.dtype | None:
    """The dtype the product runs in on oneDNN here (float32, or bfloat16 under CPU bf16
    autocast), or None for F.linear."""
    if not (_AVAILABLE and x.device.type == "cpu" and weight.dtype == torch.float32
            and x.dtype in (torch.float32, torch.bfloat16)):
        return None
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return None
    if not torch.is_autocast_enabled("cpu"):
        return torch.float32 if x.dtype == torch.float32 else None
    return torch.bfloat16 if torch.get_autocast_dtype("cpu") == torch.bfloat16 else None


def _onednn_linear(x: Tensor, packed_weight: Tensor, bias: Tensor | None) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed_weight, bias, "none", [], "")


def _pack(weight: Tensor) -> Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)


# The weight gradient (out x tokens) @ (tokens x in) goes to oneDNN only when both feature sizes
# are at least this: it then needs the input transposed and packed each step, which on narrow
# layers (the quick start's 32-128 channels) costs more than oneDNN saves; measured 1.3-1.5x on
# MeMViT-16's 384-1536 channel layers and 0.3-0.5x on 32-96 channel ones.
WEIGHT_GRAD_MIN_FEATURES = 256


class _TrainingLinear(torch.autograd.Function):
    """Linear with gradients, on oneDNN: forward and input gradient on packed weights (2x MKL's
    sgemm on these shapes), the weight gradient on oneDNN for wide layers, on ATen otherwise."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        return _onednn_linear(x, _pack(weight), bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        out_features, in_features = weight.shape
        grad2 = grad.reshape(-1, out_features)
        d_x = d_w = d_b = None
        if ctx.needs_input_grad[0]:
            d_x = _onednn_linear(grad, _pack(weight.t().contiguous()), None)
        if ctx.needs_input_grad[1]:
            x2 = x.reshape(-1, in_features)
            if min(out_features, in_features) >= WEIGHT_GRAD_MIN_FEATURES:
                d_w = _onednn_linear(grad2.t(), _pack(x2.t().contiguous()), None)
            else:
                d_w = grad2.t() @ x2
        if ctx.needs_input_grad[2]:  # False without a bias
            d_b = grad2.sum(0)
        return d_x, d_w, d_b


class PackedLinear(nn.Linear):
    """``nn.Linear`` on oneDNN for float32 on CPU: without gradients on a weight packed once (and
    packed again when the weight changes: an optimizer step, a loaded state dict), with gradients
    through :class:`_TrainingLinear`."""

    def forward(self, x: Tensor) -> Tensor:
        dtype = _onednn_dtype(x, self.weight)
        training = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if dtype == torch.float32:
            if training:
                return _TrainingLinear.apply(x, self.weight, self.bias)
            return _onednn_linear(x, *self._packed(dtype))
        if dtype == torch.bfloat16 and not training:
            # Autocast would cast (and oneDNN re-pack) the float32 weight at every call.
            return _onednn_linear(x.to(dtype), *self._packed(dtype))
        return F.linear(x, self.weight, self.bias)

    def _packed(self, dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
        """The weight packed in ``dtype`` and the bias in it, made again when the weight changes."""
        key = (self.weight.data_ptr(), self.weight._version, dtype)
        cached = self.__dict__.get("_packed_cache")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                bias = None if self.bias is None else self.bias.detach().to(dtype)
                cached = (key, (_pack(self.weight.to(dtype)), bias))
            self.__dict__["_packed_cache"] = cached
        return cached[1]

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_packed_cache"}  # a cache: not copied, not pickled


def pack_linear_layers(model: nn.Module) -> int:
    """Make every plain ``nn.Linear`` of ``model`` a :class:`PackedLinear` in place (parameters,
    names and outputs unchanged); returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = PackedLinear
            count += 1
    return count
