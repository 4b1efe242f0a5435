# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The memory-augmented pooling attention op: its public function and its torch.library op.

Two layers:

* :func:`memory_pooling_attention` is the public function. It validates the inputs, computes
  the per-query relative-position bias (:mod:`memvit_ext.rel_pos`) and runs the attention
  core on the compiled kernel of the input's device, or on the pure-PyTorch reference when
  no kernel serves the inputs.
* ``torch.ops.memvit_ext.pooling_attention`` is the attention core as a dispatcher op. Its
  schema is defined here, in Python, so that the op (and the reference kernel registered for
  every device) exists even when the C++ extension is missing; ``memvit_ext._C`` adds CPU and
  CUDA kernels for the same schema when it loads. Fake (meta) kernels and an autograd formula
  are registered here, so the op composes with autograd and ``torch.compile``.
* ``torch.ops.memvit_ext.pooling_attention_reference`` is the PyTorch reference as an op of
  the same arguments (CompositeImplicitAutograd: it decomposes into ATen ops, and autograd and
  ``torch.compile`` see those). The public function calls it when the reference is chosen, so
  either implementation is one node of a traced graph, which is what flop counters key on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

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

_lib = torch.library.Library(LIBRARY, "DEF")
# kv_thw: (t, h, w) of each segment; kv_cls: 1 if the segment starts with a cls token;
# bin_offsets: first column in rel_bias of each segment's t, h, w bins (-1: no bias on that axis).
_ARGUMENTS = ("(Tensor q, Tensor[] keys, Tensor[] values, Tensor? rel_bias, int[] kv_thw, int[] kv_cls, "
              "int[] bin_offsets, float scale, bool residual, bool q_cls, Tensor? attn_mask)")
_lib.define("pooling_attention" + _ARGUMENTS + " -> (Tensor out, Tensor lse)")
_lib.define("pooling_attention_reference" + _ARGUMENTS + " -> Tensor")
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


def kernel_capabilities() -> dict:
    """What the compiled kernels serve, per device type: ``{'cpu': {'dtypes': [torch.float32, ...],
    'attn_mask': True}, 'cuda': {..., 'head_dims': [64, 96, 128]}}`` (read from the kernels' tables)."""
    return _CAPABILITIES


_WARNED: set[str] = set()


def _warn_once(reason: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        warnings.warn(f"memvit_ext: {reason}; using the PyTorch reference implementation", stacklevel=3)


def kernel_refusal(q: Tensor, attn_mask: Tensor | None) -> str | None:
    """Why no compiled kernel serves these inputs (None when one does)."""
    device = q.device.type
    caps = kernel_capabilities().get(device)
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
            PyTorch reference with a one-time warning), ``"kernel"`` (error if none serves) or
            ``"reference"``.

    Returns:
        ``(B, heads, Nq, head_dim)`` in q's dtype. Differentiable in q, every k and v, and every
        relative-position table.
    """
    check_inputs(q, q_thw, segments, q_has_cls, rel_pos, scale, attn_mask)
    if implementation not in ("auto", "kernel", "reference"):
        raise ValueError(f"implementation must be 'auto', 'kernel' or 'reference'; got {implementation!r}")
    scale = float(q.shape[-1] ** -0.5 if scale is None else scale)
    rel_bias, bin_offsets = query_rel_bias(q, q_thw, q_has_cls, segments, rel_pos)
    keys = [seg.k for seg in segments]
    values = [seg.v for seg in segments]
    kv_thw = [int(x) for seg in segments for x in seg.thw]
    kv_cls = [int(bool(seg.has_cls)) for seg in segments]
    mask = _as_additive_mask(attn_mask, compute_dtype(q.dtype))

    use_kernel = implementation == "kernel"
    if implementation == "auto":
        refusal = kernel_refusal(q, attn_mask)
        use_kernel = refusal is None
        if refusal is not None and q.device.type in kernel_capabilities():
            _warn_once(refusal)  # a kernel exists for this device but not for these inputs
    elif use_kernel:
        refusal = kernel_refusal(q, attn_mask)
        if refusal is not None:
            raise RuntimeError(f"memvit_ext: implementation='kernel' but {refusal}")

    args = (q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, bool(residual), bool(q_has_cls), mask)
    if use_kernel:
        return torch.ops.memvit_ext.pooling_attention(*args)[0]
    return torch.ops.memvit_ext.pooling_attention_reference(*args)
