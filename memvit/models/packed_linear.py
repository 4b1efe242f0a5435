# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Linear layers whose float32 inference on CPU runs on oneDNN with the weight packed once.

ATen's float32 ``F.linear`` on CPU is MKL's sgemm; oneDNN's product with a pre-packed weight is
2.1-2.5x faster on MeMViT's shapes on the AMD EPYC this project measures on (350-450 against
160-200 GFLOP/s on 2 cores, ``benchmarks/RESULTS.md``), and the Linear layers are about 60% of
a MeMViT-16 clip in float32. Everything else keeps ``F.linear``: gradients (the packed op has no
backward), autocast (bf16 already runs on oneDNN), float64, other devices, tracing, scripting and
compiling (exporters do not know the op). Same parameters and state dict as ``nn.Linear``.
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


def _packs(x: Tensor, weight: Tensor) -> bool:
    return (
        _AVAILABLE
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
    )


class PackedLinear(nn.Linear):
    """``nn.Linear``; without gradients on CPU in float32, oneDNN on a weight packed once (and
    packed again when the weight changes: an optimizer step, a loaded state dict)."""

    def forward(self, x: Tensor) -> Tensor:
        if _packs(x, self.weight):
            return torch.ops.mkldnn._linear_pointwise(x, self._packed_weight(), self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def _packed_weight(self) -> Tensor:
        key = (self.weight.data_ptr(), self.weight._version)
        cached = self.__dict__.get("_packed")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), None))
            self.__dict__["_packed"] = cached
        return cached[1]

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_packed"}  # a cache: not copied, not pickled


def pack_linear_layers(model: nn.Module) -> int:
    """Make every plain ``nn.Linear`` of ``model`` a :class:`PackedLinear` in place (parameters,
    names and outputs unchanged); returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = PackedLinear
            count += 1
    return count
