# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Pure-PyTorch attention core: the fallback on every device and the oracle of the kernels.

It computes what the compiled kernels compute, from the same inputs (q, per-segment k/v,
the per-query rel_bias from :mod:`memvit_ext.rel_pos`):

    out = softmax(scale * q k^T + rel_bias @ onehot^T + mask) v + q_residual

written as the "augmented-QK" identity: ``[scale*q | rel_bias] @ [k | onehot]^T`` is one matrix
product that yields the logits with the decomposed bias already added, because every key
selects exactly one bin per axis. That is exact (up to rounding), differentiable, and faster
than adding the bias slice by slice (see docs/op.md). Half and bfloat16 inputs compute in
float32; the output has the input dtype.

:func:`sdpa_attention` is the same identity handed to ``F.scaled_dot_product_attention``, so
PyTorch's fused attention kernels serve it without materialising the ``Nq x Nk`` logits: the
default on CUDA while the fused CUDA kernels are not validated (``implementation="sdpa"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .rel_pos import compute_dtype, key_bin_onehot


def residual_of(q: Tensor, q_cls: bool) -> Tensor:
    """The residual-pooling term: q itself, except that the cls query row adds nothing."""
    if not q_cls:
        return q
    return torch.cat([torch.zeros_like(q[:, :, :1]), q[:, :, 1:]], dim=2)


def attention_logits(q: Tensor, keys: Sequence[Tensor], rel_bias: Tensor | None, kv_thw: Sequence[int],
                     kv_cls: Sequence[int], bin_offsets: Sequence[int], scale: float,
                     attn_mask: Tensor | None) -> Tensor:
    """``scale * q k^T + bias + mask`` over the concatenated keys, in the compute dtype."""
    dtype = compute_dtype(q.dtype)
    k = torch.cat([key.to(dtype) for key in keys], dim=2)
    q = q.to(dtype) * scale
    if rel_bias is not None:
        onehot = key_bin_onehot(kv_thw, kv_cls, bin_offsets, rel_bias.shape[-1], q.device, dtype)
        q = torch.cat([q, rel_bias.to(dtype)], dim=-1)
        k = torch.cat([k, onehot.expand(k.shape[0], k.shape[1], -1, -1)], dim=-1)
    logits = q @ k.transpose(-1, -2)
    if attn_mask is not None:
        logits = logits + attn_mask.to(dtype)
    return logits


def softmax_rows(logits: Tensor, masked: bool) -> Tensor:
    """Softmax over keys; with a mask, a row whose keys are all ``-inf`` gets all zeros."""
    if not masked:
        return torch.softmax(logits, dim=-1)
    has_key = torch.isfinite(logits).any(dim=-1, keepdim=True)
    return torch.softmax(torch.where(has_key, logits, torch.zeros_like(logits)), dim=-1) * has_key


def attention_core(
    q: Tensor,
    keys: Sequence[Tensor],
    values: Sequence[Tensor],
    rel_bias: Tensor | None,
    kv_thw: Sequence[int],
    kv_cls: Sequence[int],
    bin_offsets: Sequence[int],
    scale: float,
    residual: bool,
    q_cls: bool,
    attn_mask: Tensor | None = None,
    need_lse: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Returns ``(out, lse)``; ``lse`` (logsumexp of each logit row, float32/64) only on request.

    Rows whose keys are all masked out (``-inf``) attend to nothing: their attention term is 0.
    """
    logits = attention_logits(q, keys, rel_bias, kv_thw, kv_cls, bin_offsets, scale, attn_mask)
    probs = softmax_rows(logits, masked=attn_mask is not None)
    v = torch.cat([value.to(probs.dtype) for value in values], dim=2)
    out = probs @ v
    if residual:
        out = out + residual_of(q.to(out.dtype), q_cls)
    lse = torch.logsumexp(logits.detach(), dim=-1) if need_lse else None
    return out.to(q.dtype), lse


def _sdpa_mask(attn_mask: Tensor | None, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
    """The mask SDPA gets, and per row whether any key is left (None without a mask).

    SDPA answers NaN for a row whose keys are all masked (and NaN gradients for every key); such
    rows get an all-zero mask here instead and their output is zeroed afterwards, as the reference does.
    """
    if attn_mask is None:
        return None, None
    if attn_mask.dtype == torch.bool:
        has_key = attn_mask.any(dim=-1, keepdim=True)
        return attn_mask | ~has_key, has_key
    mask = attn_mask.to(dtype)  # SDPA takes bool or q's dtype
    has_key = torch.isfinite(mask).any(dim=-1, keepdim=True)
    return torch.where(has_key, mask, torch.zeros_like(mask)), has_key


def sdpa_attention(
    q: Tensor,
    keys: Sequence[Tensor],
    values: Sequence[Tensor],
    rel_bias: Tensor | None,
    kv_thw: Sequence[int],
    kv_cls: Sequence[int],
    bin_offsets: Sequence[int],
    scale: float,
    residual: bool,
    q_cls: bool,
    attn_mask: Tensor | None = None,
) -> Tensor:
    """:func:`attention_core` on ``F.scaled_dot_product_attention``: ``sdpa([scale*q | rel_bias],
    [k | onehot], v, scale=1)`` plus the residual, in ordinary differentiable ops.

    Why: SDPA's fused kernels never hold the ``Nq x Nk`` float32 logits and probabilities the
    reference materialises (on CUDA the memory-efficient kernel is the candidate: flash needs q/k as
    wide as v, and these are wider; which kernel serves is not yet measured on a GPU, and SDPA's
    math fallback would hold the logits again), and autograd runs through them
    (the bias gradient is the rel_bias slice of ``d q_aug``). Inputs stay in their dtype (SDPA's
    kernels accumulate in float32); the augmented width is zero-padded to a multiple of 8 for
    those kernels. ``attn_mask``: bool (False = masked) or float (added); rows whose keys are
    all masked give a zero attention term.
    """
    dtype = q.dtype
    k = torch.cat(list(keys), dim=2)
    v = torch.cat(list(values), dim=2)
    q_in, k_in, sdpa_scale = q, k, scale
    if rel_bias is not None:
        n_bins = rel_bias.shape[-1]
        onehot = key_bin_onehot(kv_thw, kv_cls, bin_offsets, n_bins, q.device, dtype)
        q_parts = [q * scale, rel_bias.to(dtype)]
        k_parts = [k, onehot.expand(k.shape[0], k.shape[1], -1, -1)]
        pad = -(q.shape[-1] + n_bins) % 8
        if pad:
            q_parts.append(q.new_zeros(*q.shape[:3], pad))
            k_parts.append(k.new_zeros(*k.shape[:3], pad))
        q_in, k_in, sdpa_scale = torch.cat(q_parts, dim=-1), torch.cat(k_parts, dim=-1), 1.0
    mask, has_key = _sdpa_mask(attn_mask, dtype)
    out = F.scaled_dot_product_attention(q_in, k_in, v, attn_mask=mask, scale=sdpa_scale)
    if has_key is not None:
        out = out * has_key.to(dtype)
    if residual:
        out = out + residual_of(q, q_cls)
    return out


def attention_core_backward(
    grad_out: Tensor,
    q: Tensor,
    keys: Sequence[Tensor],
    values: Sequence[Tensor],
    rel_bias: Tensor | None,
    kv_thw: Sequence[int],
    kv_cls: Sequence[int],
    bin_offsets: Sequence[int],
    scale: float,
    residual: bool,
    q_cls: bool,
    attn_mask: Tensor | None = None,
) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor | None]:
    """Gradients of :func:`attention_core` w.r.t. q, each key, each value and the rel_bias.

    Written out (softmax backward of the augmented product) because it serves as a dispatcher
    kernel, where autograd does not record.
    """
    dtype = compute_dtype(q.dtype)
    probs = softmax_rows(attention_logits(q, keys, rel_bias, kv_thw, kv_cls, bin_offsets, scale, attn_mask),
                         masked=attn_mask is not None)
    d_out = grad_out.to(dtype)
    v = torch.cat([value.to(dtype) for value in values], dim=2)
    k = torch.cat([key.to(dtype) for key in keys], dim=2)
    d_v = probs.transpose(-1, -2) @ d_out
    d_probs = d_out @ v.transpose(-1, -2)
    d_logits = probs * (d_probs - (d_probs * probs).sum(dim=-1, keepdim=True))
    d_q = (d_logits @ k) * scale
    d_k = d_logits.transpose(-1, -2) @ (q.to(dtype) * scale)
    if residual:
        d_q = d_q + residual_of(d_out, q_cls)
    d_bias = None
    if rel_bias is not None:
        onehot = key_bin_onehot(kv_thw, kv_cls, bin_offsets, rel_bias.shape[-1], q.device, dtype)
        d_bias = (d_logits @ onehot).to(rel_bias.dtype)
    sizes = [key.shape[2] for key in keys]
    d_keys = [g.to(key.dtype) for g, key in zip(d_k.split(sizes, dim=2), keys)]
    d_values = [g.to(value.dtype) for g, value in zip(d_v.split(sizes, dim=2), values)]
    return d_q.to(q.dtype), d_keys, d_values, d_bias
