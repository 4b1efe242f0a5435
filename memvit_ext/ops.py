# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The memory-augmented pooling attention op: its public function and its torch.library op.

Two layers:

* :func:`memory_pooling_attention` is the public function. It validates the inputs, computes
  the per-query relative-position bias (:mod:`memvit_ext.rel_pos`) and runs the attention
  core on the compiled kernel of the input's device, or, when no kernel serves the inputs, on
  the pure-PyTorch reference (CPU) or the SDPA form (CUDA).
* ``torch.ops.memvit_ext.pooling_attention`` is the attention core as a dispatcher op. Its
  schema is defined here, in Python, so that the op (and the reference kernel registered for
  every device) exists even when the C++ extension is missing; ``memvit_ext._C`` adds CPU and
  CUDA kernels for the same schema when it loads. Fake (meta) kernels and an autograd formula
  are registered here, so the op composes with autograd and ``torch.compile``.
* ``torch.ops.memvit_ext.pooling_attention_reference`` is the PyTorch reference as an op of
  the same arguments (CompositeImplicitAutograd: it decomposes into ATen ops, and autograd and
  ``torch.compile`` see those). The public function calls it when the reference is chosen, so
  either implementation is one node of a traced graph, which is what flop counters key on.
* ``torch.ops.memvit_ext.pooling_attention_sdpa`` is the same identity on
  ``F.scaled_dot_product_attention`` (:func:`memvit_ext.reference.sdpa_attention`), also
  CompositeImplicitAutograd: PyTorch's fused attention kernels serve it and autograd runs through
  them. It is what serves CUDA tensors when the fused CUDA kernels do not (``implementation="sdpa"``).

Which implementation serves ``implementation="auto"`` on a device is decided once per device
type by :func:`choose_auto_path` (a pure function of the capabilities, the validation record
:data:`CUDA_KERNELS_VALIDATED`, :func:`use_cuda_kernels` and ``MEMVIT_CUDA_KERNELS``): the CUDA
kernels serve CUDA tensors by default only once they have passed ``benchmarks/gpu_check.sh`` on a
GPU; until then CUDA tensors go to the SDPA form (``pooling_attention_sdpa``) unless the kernels
are opted into.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from . import reference
from .checks import check_inputs
from .rel_pos import compute_dtype, query_rel_bias
from .segments import KVSegment, RelPos

LIBRARY = "memvit_ext"
OP = f"{LIBRARY}::pooling_attention"
OP_BACKWARD = f"{LIBRARY}::pooling_attention_backward"

OP_REFERENCE = f"{LIBRARY}::pooling_attention_reference"
OP_SDPA = f"{LIBRARY}::pooling_attention_sdpa"

_lib = torch.library.Library(LIBRARY, "DEF")
# kv_thw: (t, h, w) of each segment; kv_cls: 1 if the segment starts with a cls token;
# bin_offsets: first column in rel_bias of each segment's t, h, w bins (-1: no bias on that axis).
_ARGUMENTS = ("(Tensor q, Tensor[] keys, Tensor[] values, Tensor? rel_bias, int[] kv_thw, int[] kv_cls, "
              "int[] bin_offsets, float scale, bool residual, bool q_cls, Tensor? attn_mask)")
_lib.define("pooling_attention" + _ARGUMENTS + " -> (Tensor out, Tensor lse)")
_lib.define("pooling_attention_reference" + _ARGUMENTS + " -> Tensor")
_lib.define("pooling_attention_sdpa" + _ARGUMENTS + " -> Tensor")
_lib.define(
    "pooling_attention_backward(Tensor grad_out, Tensor q, Tensor[] keys, Tensor[] values, "
    "Tensor? rel_bias, Tensor out, Tensor lse, int[] kv_thw, int[] kv_cls, int[] bin_offsets, "
    "float scale, bool residual, bool q_cls, Tensor? attn_mask) "
    "-> (Tensor grad_q, Tensor[] grad_keys, Tensor[] grad_values, Tensor grad_rel_bias)"
)


def _empty_grad(like: Tensor) -> Tensor:
    return like.new_empty((0,))


# ---------------------------------------------------------------- reference kernels (any device)
@torch.library.impl(_lib, "pooling_attention", "CompositeExplicitAutograd")
def _pooling_attention_reference(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual,
                                 q_cls, attn_mask):
    out, lse = reference.attention_core(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale,
                                        residual, q_cls, attn_mask, need_lse=True)
    return out.contiguous(), lse.contiguous()


@torch.library.impl(_lib, "pooling_attention_reference", "CompositeImplicitAutograd")
def _pooling_attention_reference_op(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual,
                                    q_cls, attn_mask):
    out, _ = reference.attention_core(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual,
                                      q_cls, attn_mask)
    return out


@torch.library.impl(_lib, "pooling_attention_sdpa", "CompositeImplicitAutograd")
def _pooling_attention_sdpa_op(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls,
                               attn_mask):
    return reference.sdpa_attention(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls,
                                    attn_mask)


@torch.library.impl(_lib, "pooling_attention_backward", "CompositeExplicitAutograd")
def _pooling_attention_backward_reference(grad_out, q, keys, values, rel_bias, out, lse, kv_thw, kv_cls,
                                          bin_offsets, scale, residual, q_cls, attn_mask):
    d_q, d_keys, d_values, d_bias = reference.attention_core_backward(
        grad_out, q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls, attn_mask)
    d_keys = [g.contiguous() for g in d_keys]
    d_values = [g.contiguous() for g in d_values]
    return d_q.contiguous(), d_keys, d_values, (d_bias.contiguous() if d_bias is not None else _empty_grad(q))


# ---------------------------------------------------------------- fake kernels (torch.compile)
@torch.library.register_fake(OP)
def _pooling_attention_fake(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls,
                            attn_mask):
    B, H, Nq, _ = q.shape
    return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(
        (B, H, Nq), dtype=compute_dtype(q.dtype))


@torch.library.register_fake(OP_BACKWARD)
def _pooling_attention_backward_fake(grad_out, q, keys, values, rel_bias, out, lse, kv_thw, kv_cls,
                                     bin_offsets, scale, residual, q_cls, attn_mask):
    # Every kernel returns contiguous gradients, whatever the inputs' strides.
    def like(t):
        return torch.empty_like(t, memory_format=torch.contiguous_format)

    d_bias = like(rel_bias) if rel_bias is not None else _empty_grad(q)
    return like(q), [like(k) for k in keys], [like(v) for v in values], d_bias


# ---------------------------------------------------------------- autograd
def _setup_context(ctx, inputs, output):
    q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls, attn_mask = inputs
    out, lse = output
    ctx.n_segments = len(keys)
    ctx.has_bias = rel_bias is not None
    ctx.has_mask = attn_mask is not None
    ctx.args = (list(kv_thw), list(kv_cls), list(bin_offsets), scale, residual, q_cls)
    saved = [q, *keys, *values, out, lse]
    if rel_bias is not None:
        saved.append(rel_bias)
    if attn_mask is not None:
        saved.append(attn_mask)
    ctx.save_for_backward(*saved)
    ctx.mark_non_differentiable(lse)


def _backward(ctx, grad_out, _grad_lse):
    saved = list(ctx.saved_tensors)
    n = ctx.n_segments
    q, keys, values, out, lse = saved[0], saved[1:1 + n], saved[1 + n:1 + 2 * n], saved[1 + 2 * n], saved[2 + 2 * n]
    rest = saved[3 + 2 * n:]
    rel_bias = rest.pop(0) if ctx.has_bias else None
    attn_mask = rest.pop(0) if ctx.has_mask else None
    kv_thw, kv_cls, bin_offsets, scale, residual, q_cls = ctx.args
    d_q, d_keys, d_values, d_bias = torch.ops.memvit_ext.pooling_attention_backward(
        grad_out.contiguous(), q, keys, values, rel_bias, out, lse, kv_thw, kv_cls, bin_offsets, scale, residual,
        q_cls, attn_mask)
    return (d_q, list(d_keys), list(d_values), d_bias if ctx.has_bias else None,
            None, None, None, None, None, None, None)


torch.library.register_autograd(OP, _backward, setup_context=_setup_context)


# ---------------------------------------------------------------- compiled kernels
_EXTENSION_ERROR: str | None = None
try:  # registers CPU/CUDA kernels for the schemas above
    from . import _C  # type: ignore[attr-defined]
except ImportError as error:  # built without the extension, or a torch ABI mismatch
    _C = None
    _EXTENSION_ERROR = f"{type(error).__name__}: {error}"


def _registered_capabilities() -> dict:
    if _C is None:
        return {}
    caps = _C.capabilities()
    return {device: caps[device] for device in caps
            if torch._C._dispatch_has_kernel_for_dispatch_key(OP, device.upper())}


# Read once: the dispatch decision below must stay plain Python for torch.compile to trace it.
_CAPABILITIES = _registered_capabilities()


CUDA_KERNELS_ENV = "MEMVIT_CUDA_KERNELS"
# The results file of the benchmarks/gpu_check.sh run in which the CUDA kernels passed on a GPU
# (a path under benchmarks/results/, committed), or None while no such run exists. None keeps
# CUDA tensors on the SDPA form unless the kernels are opted into. To flip the default:
# commit the check's summary file (benchmarks/results/gpu-check-<device>-<date>.md, its last
# line "status: passed") and name it here; tests/test_op_dispatch.py checks that it says so.
CUDA_KERNELS_VALIDATED: str | None = None
_GATED_DEVICES = ("cuda",)  # devices whose kernels serve "auto" only once validated on the hardware
# Devices where the SDPA form (not the reference) serves "auto" when no compiled kernel does: PyTorch's
# fused attention kernels hold no Nq x Nk logits there (the reference's would exhaust a GPU's memory).
_SDPA_DEVICES = ("cuda",)
IMPLEMENTATIONS = ("auto", "kernel", "sdpa", "reference")
# What each non-kernel implementation is, in the words of the notices and of build_info().
FALLBACK_NAMES = {"sdpa": "the augmented-QK form on torch.nn.functional.scaled_dot_product_attention",
                  "reference": "the PyTorch reference implementation"}
_OPT_IN_CALL: bool | None = None  # set by use_cuda_kernels(); None: the environment decides


class AutoPath(NamedTuple):
    """Which implementation serves ``implementation="auto"`` on a device type, and why."""

    implementation: str  # "kernel", "sdpa" or "reference"
    reason: str  # one sentence, reported by kernel_capabilities() and build_info()
    notice: str | None  # shown once when this path first serves a call; None: nothing to say


def _parse_switch(value: str | None) -> bool | None:
    """``MEMVIT_CUDA_KERNELS``: 1/true/yes/on, 0/false/no/off, unset or empty; raises ValueError otherwise."""
    if value is None or value.strip() == "":
        return None
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def fallback_of(device_type: str, sdpa: Sequence[str] = ("cuda",)) -> str:
    """The implementation that serves ``device_type`` where no compiled kernel does: "sdpa" or "reference"."""
    return "sdpa" if device_type in sdpa else "reference"


def choose_auto_path(device_type: str, capabilities: dict, *, validated: str | None = None,
                     opt_in: bool | None = None, env_value: str | None = None,
                     gated: Sequence[str] = ("cuda",), sdpa: Sequence[str] = ("cuda",)) -> AutoPath:
    """The implementation that serves ``implementation="auto"`` on ``device_type`` (pure: no GPU, no globals).

    ``capabilities`` is :func:`kernel_capabilities`' table of compiled kernels; ``validated`` the
    results file that shows the device's kernels passed on real hardware (for CUDA:
    :data:`CUDA_KERNELS_VALIDATED`); ``opt_in`` the setting of :func:`use_cuda_kernels` (it
    overrides the environment); ``env_value`` the value of ``MEMVIT_CUDA_KERNELS``; ``gated`` the
    devices whose kernels wait for that validation (CUDA): a compiled kernel of another device
    serves it at once; ``sdpa`` the devices whose non-kernel path is the SDPA form (CUDA), the
    others' is the reference (:func:`fallback_of`). Per-input refusals (dtype, head dim) still apply
    afterwards (:func:`kernel_refusal`).
    """
    fallback = fallback_of(device_type, sdpa)
    serves = f"{FALLBACK_NAMES[fallback]} serves {device_type.upper()} tensors"
    if device_type not in capabilities:
        return AutoPath(fallback, f"no compiled kernel for {device_type} tensors, so {serves}", None)
    if device_type not in gated:
        return AutoPath("kernel", f"compiled {device_type.upper()} kernel", None)
    ignored = ""
    source = "memvit_ext.use_cuda_kernels"
    choice = opt_in
    if choice is None:
        try:
            choice = _parse_switch(env_value)
        except ValueError:
            ignored = f"{CUDA_KERNELS_ENV}={env_value!r} was ignored (it takes 1 or 0); "
        source = CUDA_KERNELS_ENV
    how = f"{CUDA_KERNELS_ENV}=1 or memvit_ext.use_cuda_kernels(True)"
    if choice is None and validated is not None:
        return AutoPath("kernel", f"{ignored}the CUDA kernels passed benchmarks/gpu_check.sh on a GPU ({validated})",
                        f"memvit_ext: {ignored.rstrip('; ')}" if ignored else None)
    if choice is None:
        reason = (f"{ignored}the fused CUDA kernels have not yet passed benchmarks/gpu_check.sh on a GPU, so "
                  f"{serves}; opt in to the kernels with {how}")
        return AutoPath(fallback, reason,
                        f"memvit_ext: {reason} (docs/cuda.md, 'Which implementation serves CUDA tensors')")
    flag = f"{source}({choice})" if source != CUDA_KERNELS_ENV else f"{source}={int(choice)}"
    if not choice:
        return AutoPath(fallback, f"the CUDA kernels are switched off by {flag}, so {serves}", None)
    if validated is not None:
        return AutoPath("kernel", f"the CUDA kernels are switched on by {flag}; they passed benchmarks/gpu_check.sh "
                        f"({validated})", None)
    reason = f"the CUDA kernels are switched on by {flag}; they have not yet passed benchmarks/gpu_check.sh on a GPU"
    return AutoPath("kernel", reason,
                    f"memvit_ext: CUDA tensors use the fused CUDA kernels: {reason}; compare with "
                    f"implementation={fallback!r} and report differences (docs/cuda.md, 'Which implementation "
                    "serves CUDA tensors')")


def _choose(device_type: str) -> AutoPath:
    return choose_auto_path(device_type, _CAPABILITIES, validated=CUDA_KERNELS_VALIDATED, opt_in=_OPT_IN_CALL,
                            env_value=os.environ.get(CUDA_KERNELS_ENV), gated=_GATED_DEVICES, sdpa=_SDPA_DEVICES)


def _refresh_auto_paths() -> None:
    global _AUTO_PATHS
    _AUTO_PATHS = {device: _choose(device) for device in sorted({"cpu", "cuda", *_CAPABILITIES})}


_AUTO_PATHS: dict[str, AutoPath] = {}


def auto_path(device_type: str) -> AutoPath:
    """What serves ``implementation="auto"`` on ``device_type`` now (see :func:`choose_auto_path`)."""
    path = _AUTO_PATHS.get(device_type)
    return path if path is not None else _choose(device_type)


def use_cuda_kernels(enabled: bool | None = True) -> AutoPath:
    """Opt CUDA tensors into the fused CUDA kernels (``True``), keep them on the SDPA form
    (``False``, ``implementation="sdpa"``), or go back to the default (``None``:
    ``MEMVIT_CUDA_KERNELS``, read again now, then :data:`CUDA_KERNELS_VALIDATED`). Affects
    ``implementation="auto"`` only; returns the new choice.

    The kernels serve CUDA by default only after they have passed ``benchmarks/gpu_check.sh`` on a
    GPU; until then whoever trains on a GPU with them opts in knowingly (docs/cuda.md).
    """
    global _OPT_IN_CALL
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"use_cuda_kernels takes True, False or None; got {enabled!r}")
    _OPT_IN_CALL = enabled
    _refresh_auto_paths()
    return auto_path("cuda")


_refresh_auto_paths()  # MEMVIT_CUDA_KERNELS is read at import (and again by use_cuda_kernels(None))


def kernel_capabilities() -> dict:
    """What the compiled kernels serve, per device type: ``{'cpu': {'dtypes': [torch.float32, ...],
    'attn_mask': True, 'auto': 'kernel', 'reason': ...}, 'cuda': {..., 'head_dims': [64, 96, 128]}}``
    (read from the kernels' tables). ``auto`` says which implementation serves ``implementation="auto"``
    on that device and ``reason`` why: the CUDA kernels wait for a GPU validation (:func:`choose_auto_path`)."""
    return {device: {**caps, "auto": auto_path(device).implementation, "reason": auto_path(device).reason}
            for device, caps in _CAPABILITIES.items()}


_WARNED: set[str] = set()


def _is_compiling() -> bool:
    check = getattr(torch.compiler, "is_compiling", None)
    return bool(check()) if check is not None else False


def _warn_once(message: str) -> None:
    """One warning per message; none while torch.compile traces (a warning would break a full graph)."""
    if message not in _WARNED and not _is_compiling():
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


def kernel_refusal(q: Tensor, attn_mask: Tensor | None) -> str | None:
    """Why no compiled kernel serves these inputs (None when one does)."""
    device = q.device.type
    caps = _CAPABILITIES.get(device)
    if caps is None:
        return f"no compiled kernel for {device} tensors" + (f" ({_EXTENSION_ERROR})" if _C is None else "")
    if q.dtype not in caps["dtypes"]:
        return f"the {device} kernel does not serve {str(q.dtype).replace('torch.', '')}"
    head_dims = caps.get("head_dims")
    if head_dims and q.shape[-1] not in head_dims:
        return f"the {device} kernel does not serve head_dim {q.shape[-1]} (it serves {head_dims})"
    if attn_mask is not None and not caps.get("attn_mask", False):
        return f"the {device} kernel does not take attn_mask"
    if attn_mask is not None and attn_mask.requires_grad:
        return "attn_mask requires grad, which the kernels do not give"
    return None


def _as_additive_mask(attn_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    if attn_mask is None:
        return None
    if attn_mask.dtype == torch.bool:
        return torch.zeros((), dtype=dtype, device=attn_mask.device).masked_fill(~attn_mask, float("-inf"))
    return attn_mask.to(dtype)


def memory_pooling_attention(
    q: Tensor,
    q_thw: Sequence[int],
    segments: Sequence[KVSegment],
    *,
    q_has_cls: bool = True,
    rel_pos: RelPos | None = None,
    scale: float | None = None,
    residual: bool = True,
    attn_mask: Tensor | None = None,
    implementation: str = "auto",
) -> Tensor:
    """Memory-augmented pooling attention: the attention core of a MeMViT / MViTv2 block.

    ``out = softmax(scale * q k^T + rel_pos_bias + attn_mask) v + q_residual`` where the keys and
    values are the concatenation of ``segments`` (memory clips oldest first, then the current
    clip), read in place: nothing is concatenated and no ``Nq x Nk`` bias is built by the caller.

    Args:
        q: ``(B, heads, Nq, head_dim)`` pooled, projected queries, ``Nq = prod(q_thw) + q_has_cls``.
        q_thw: the query token grid (t, h, w).
        segments: :class:`KVSegment` per clip, each with its own grid and optional cls token.
            All but the last are memory (memory tables, memory temporal rule); the last is the
            current clip (main tables). One segment means no memory.
        q_has_cls: whether q starts with a cls token (which gets no bias and no residual).
        rel_pos: decomposed relative-position tables (:class:`RelPos`); ``None`` for plain
            pooling attention. Bias is added for non-cls queries and non-cls keys.
        scale: logit scale, default ``head_dim ** -0.5``. The bias is not scaled.
        residual: add ``q`` to the output (MViTv2's residual pooling), except on the cls row.
        attn_mask: optional mask broadcastable to ``(B, heads, Nq, total keys)``: float (added to
            the logits) or bool (False = masked). Rows with every key masked attend to nothing.
        implementation: ``"auto"`` (compiled kernel when one serves the inputs, otherwise the
            PyTorch reference with a one-time warning, on CUDA the SDPA form; the CUDA kernels
            serve only once validated on a GPU or opted into, see :func:`use_cuda_kernels`),
            ``"kernel"`` (error if none serves), ``"sdpa"`` (the augmented-QK identity on
            ``F.scaled_dot_product_attention``, any device: PyTorch's fused attention kernels, no
            ``Nq x Nk`` logits on CUDA) or ``"reference"``.

    Returns:
        ``(B, heads, Nq, head_dim)`` in q's dtype. Differentiable in q, every k and v, and every
        relative-position table.
    """
    check_inputs(q, q_thw, segments, q_has_cls, rel_pos, scale, attn_mask)
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be 'auto', 'kernel', 'sdpa' or 'reference'; got {implementation!r}")
    scale = float(q.shape[-1] ** -0.5 if scale is None else scale)
    rel_bias, bin_offsets = query_rel_bias(q, q_thw, q_has_cls, segments, rel_pos)
    keys = [seg.k for seg in segments]
    values = [seg.v for seg in segments]
    kv_thw = [int(x) for seg in segments for x in seg.thw]
    kv_cls = [int(bool(seg.has_cls)) for seg in segments]

    chosen = implementation
    if implementation == "auto":
        path = auto_path(q.device.type)
        if path.notice is not None:
            _warn_once(path.notice)  # CUDA: why the SDPA form serves, or that unvalidated kernels do
        chosen = path.implementation
        if chosen == "kernel":
            refusal = kernel_refusal(q, attn_mask)
            if refusal is not None:  # a kernel exists for this device but not for these inputs
                chosen = fallback_of(q.device.type, _SDPA_DEVICES)
                _warn_once(f"memvit_ext: {refusal}; using {FALLBACK_NAMES[chosen]}")
    elif chosen == "kernel":
        refusal = kernel_refusal(q, attn_mask)
        if refusal is not None:
            raise RuntimeError(f"memvit_ext: implementation='kernel' but {refusal}")

    args = (q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, bool(residual), bool(q_has_cls))
    if chosen == "sdpa":  # takes the mask as given (bool or float): SDPA converts it to q's dtype
        return torch.ops.memvit_ext.pooling_attention_sdpa(*args, attn_mask)
    mask = _as_additive_mask(attn_mask, compute_dtype(q.dtype))
    if chosen == "kernel":
        return torch.ops.memvit_ext.pooling_attention(*args, mask)[0]
    return torch.ops.memvit_ext.pooling_attention_reference(*args, mask)
