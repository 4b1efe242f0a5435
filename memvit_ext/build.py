# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""What was built, and which implementation each device will use."""

from __future__ import annotations

import torch

from . import ops

# "sdpa": the augmented-QK form on torch's scaled_dot_product_attention (memvit_ext.reference.sdpa_attention).
_FALLBACK_LABELS = {"sdpa": "PyTorch SDPA", "reference": "PyTorch reference"}


def _describe(device: str, caps: dict) -> str:
    """What serves ``implementation="auto"`` on ``device``, and why (one line)."""
    fallback = _FALLBACK_LABELS[ops.fallback_of(device, ops._SDPA_DEVICES)]
    if device not in caps:
        if ops._C is None:
            return f"{fallback} (the C++ extension did not load)"
        return f"{fallback} (the extension was built without {device} kernels)"
    info = caps[device]
    dtypes = ", ".join(str(dtype).replace("torch.", "") for dtype in info["dtypes"])
    text = f"compiled {device.upper()} kernel for {dtypes}"
    if info.get("head_dims"):
        text += f", head_dim in {info['head_dims']}"
    path = ops.auto_path(device)
    if path.implementation != "kernel":  # built, but not serving "auto" (CUDA until validated on a GPU)
        return f"{fallback}: {path.reason} ({text} built; implementation='kernel' reaches it)"
    if device in ops._GATED_DEVICES:
        return f"{text} ({path.reason}); {fallback} for other inputs"
    return f"{text}; {fallback} for other inputs"


def build_info() -> dict:
    """A dict describing the build (CPU/CUDA parts, archs, versions) and the per-device choice."""
    built = ops._C.build_info() if ops._C is not None else {}
    caps = ops.kernel_capabilities()
    info = {
        "extension": "loaded" if ops._C is not None else f"not loaded ({ops._EXTENSION_ERROR})",
        "built_cpu_kernels": bool(built.get("cpu_kernels", False)),
        "built_cuda_kernels": bool(built.get("cuda_kernels", False)),
        "cuda_archs": built.get("cuda_archs") or None,
        "built_with_torch": built.get("torch_version") or None,
        "built_with_cuda": built.get("cuda_version") or None,
        "runtime_torch": torch.__version__,
        "runtime_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "implementation": {device: _describe(device, caps) for device in ("cpu", "cuda")},
        # Which implementation serves CUDA tensors with implementation="auto", and why: the kernels
        # serve by default only once validated on a GPU (ops.CUDA_KERNELS_VALIDATED) or opted into.
        "cuda_path": {"auto": ops.auto_path("cuda").implementation, "reason": ops.auto_path("cuda").reason,
                      "validated_by": ops.CUDA_KERNELS_VALIDATED},
    }
    if ops._C is not None and built.get("torch_version") not in (None, torch.__version__):
        info["warning"] = (f"extension built against torch {built.get('torch_version')} but running "
                           f"{torch.__version__}: rebuild with `pip install --no-build-isolation -e .`")
    return info
