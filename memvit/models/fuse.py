# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""``fuse_attention``: run the attention of models we did not write on ``memvit_ext``'s op.

One call swaps, in place, every attention module it can reproduce exactly for one whose
attention core is the fused op (no memory), keeping parameters and state-dict keys:

* PyTorchVideo's ``MultiScaleAttention`` (``create_multiscale_vision_transformers``, MViT v1)
  -> :class:`memvit.models.add_memory.FusedMultiScaleAttention` (the module ``add_memory``
  extends with memory);
* timm's MViTv2 ``MultiScaleAttention`` (``timm.models.mvitv2``, decomposed relative positions,
  residual pooling, images as one-frame clips) -> :class:`memvit.models.fuse_timm.FusedTimmMultiScaleAttention`.

A module of these kinds that the op cannot reproduce (a subclass, a pooling mode, timm's
pool-first attention) is left as it is, listed in the returned :class:`FuseReport` with the
reason, and logged: never swapped for something that computes otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pytorchvideo.layers.attention import MultiScaleAttention as PyTorchVideoAttention
from torch import nn

from memvit_ext.ops import IMPLEMENTATIONS

from .add_memory import FusedMultiScaleAttention, pytorchvideo_refusal
from .attention import MemoryAttention

logger = logging.getLogger(__name__)
KNOWN = "PyTorchVideo's MultiScaleAttention and timm's MViTv2 MultiScaleAttention"


@dataclass
class FuseReport:
    """What :func:`fuse_attention` did, by module name (as ``model.named_modules()`` names them).

    ``fused``: swapped modules and what they were; ``left``: attention modules left as they are
    and why; ``already``: modules that already run the op (MeMViT's own, or fused before).
    """

    fused: dict[str, str] = field(default_factory=dict)
    left: dict[str, str] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"fuse_attention: {len(self.fused)} attention module(s) now run memvit_ext's op"]
        if not self.fused and not self.left:
            lines[0] += (f"; nothing to swap: found none of {KNOWN}" if not self.already else
                         f"; nothing to swap: {len(self.already)} already run it")
        lines += [f"  fused {name} ({kind})" for name, kind in self.fused.items()]
        lines += [f"  left as is {name}: {why}" for name, why in self.left.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Adapter:
    label: str
    refusal: Callable[[nn.Module], str | None]
    fuse: Callable[[nn.Module, str], MemoryAttention]


def _adapter_for(module: nn.Module) -> _Adapter | None:
    if isinstance(module, PyTorchVideoAttention):
        return _Adapter("pytorchvideo MultiScaleAttention", pytorchvideo_refusal,
                        lambda attn, name: FusedMultiScaleAttention(attn, memory_name=name))
    if "timm.models.mvitv2" in sys.modules:  # a timm model is loaded: timm is not our dependency
        from . import fuse_timm

        if isinstance(module, fuse_timm.ATTENTION_TYPES):
            return _Adapter(f"timm {type(module).__name__}", fuse_timm.timm_refusal,
                            fuse_timm.FusedTimmMultiScaleAttention)
    return None


def fuse_attention(model: nn.Module, implementation: str = "auto") -> FuseReport:
    """Swap, in place, the attention modules of ``model`` that the op reproduces; return the report.

    ``implementation``: which implementation of ``memvit_ext.memory_pooling_attention`` the
    fused modules use (``"auto"``, ``"kernel"``, ``"sdpa"``, ``"reference"``; switch later with
    :func:`memvit.models.set_attention_implementation`). Outputs and gradients are those of the
    original modules up to rounding; the report is also logged (``memvit.models.fuse``).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    report = FuseReport()
    for name, module in list(model.named_modules()):
        if isinstance(module, MemoryAttention):
            report.already.append(name)
            continue
        adapter = _adapter_for(module)
        if adapter is None:
            continue
        reason = adapter.refusal(module)
        if reason is None and not name:
            reason = "the model itself is the attention module: fuse the model that contains it"
        if reason is not None:
            report.left[name] = reason
            continue
        fused = adapter.fuse(module, name)
        fused.implementation = implementation
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, fused)
        report.fused[name] = adapter.label
    if report.left or not (report.fused or report.already):
        logger.warning("%s", report)
    else:
        logger.info("%s", report)
    return report
