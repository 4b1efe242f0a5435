# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The reference's training recipe: parameter groups, the learning-rate schedule, clipping.

* Parameter groups: no weight decay on 1-D parameters and biases (``SOLVER.ZERO_WD_1D_PARAM``);
  everything else decays with ``SOLVER.WEIGHT_DECAY``. ``MVIT.ZERO_DECAY_POS_CLS`` exempts
  nothing, as in the reference (whose list of parameter names is compared with module names);
  with ``MVIT.ZERO_DECAY_POS_CLS_EXEMPT`` (ours) it exempts the cls token and the
  relative-position tables, the reference's intent.
* Clipping: by value (``SOLVER.CLIP_GRAD_VAL``) or else by global L2 norm
  (``SOLVER.CLIP_GRAD_L2NORM``), as the reference: with both set, by value only;
  ``SOLVER.CLIP_GRAD_BOTH`` (ours) applies both, value first.
* Schedule (per iteration, fractional epoch ``e``): cosine from ``BASE_LR`` to
  ``COSINE_END_LR`` over ``[WARMUP_EPOCHS, MAX_EPOCH]`` (``COSINE_AFTER_WARMUP``; else over
  ``[0, MAX_EPOCH]``), and during warm-up a line from ``WARMUP_START_LR`` to the cosine's value
  at the end of the warm-up.
* ``SOLVER.BASE_LR_SCALE_NUM_SHARDS``: BASE_LR, WARMUP_START_LR and COSINE_END_LR are
  multiplied by the number of shards, i.e. the global batch over ``TRAIN.BATCH_SIZE`` (the
  batch of one machine): the learning rate per clip stays the recipe's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Schedule:
    """The learning rate as a function of the fractional epoch (already scaled)."""

    base_lr: float
    end_lr: float
    warmup_start_lr: float
    warmup_epochs: float
    max_epoch: float
    cosine_after_warmup: bool = True

    def cosine(self, epoch: float) -> float:
        offset = self.warmup_epochs if self.cosine_after_warmup else 0.0
        span = self.max_epoch - offset
        progress = (epoch - offset) / span if span > 0 else 1.0
        return self.end_lr + (self.base_lr - self.end_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            target = self.cosine(self.warmup_epochs)
            return self.warmup_start_lr + epoch * (target - self.warmup_start_lr) / self.warmup_epochs
        return self.cosine(epoch)


def lr_scale(cfg: Any, global_batch: int) -> float:
    """The factor on the recipe's learning rates: shards' worth of global batch (1 without scaling)."""
    if not cfg.SOLVER.BASE_LR_SCALE_NUM_SHARDS:
        return 1.0
    return global_batch / cfg.TRAIN.BATCH_SIZE


def build_schedule(cfg: Any, scale: float = 1.0) -> Schedule:
    s = cfg.SOLVER
    if s.LR_POLICY != "cosine":
        raise ValueError(f"SOLVER.LR_POLICY {s.LR_POLICY!r} is not supported (the MeMViT recipes use 'cosine')")
    return Schedule(base_lr=s.BASE_LR * scale, end_lr=s.COSINE_END_LR * scale,
                    warmup_start_lr=s.WARMUP_START_LR * scale, warmup_epochs=s.WARMUP_EPOCHS,
                    max_epoch=s.MAX_EPOCH, cosine_after_warmup=s.COSINE_AFTER_WARMUP)


def parameter_groups(model: nn.Module, cfg: Any) -> list[dict[str, Any]]:
    """Decayed and non-decayed parameters (only those that require grad), names kept for logs."""
    no_decay_names = set()
    if cfg.MVIT.ZERO_DECAY_POS_CLS and cfg.MVIT.ZERO_DECAY_POS_CLS_EXEMPT:
        no_decay_names = {n for n, _ in model.named_parameters() if n == "cls_token" or ".rel_pos" in n}
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if (cfg.SOLVER.ZERO_WD_1D_PARAM and (param.ndim <= 1 or name.endswith(".bias"))) or name in no_decay_names:
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [{"params": decay, "weight_decay": cfg.SOLVER.WEIGHT_DECAY},
              {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: Any, lr: float) -> torch.optim.Optimizer:
    s = cfg.SOLVER
    groups = parameter_groups(model, cfg)
    method = s.OPTIMIZING_METHOD.lower()
    if method == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=s.MOMENTUM, dampening=s.DAMPENING, nesterov=s.NESTEROV)
    if method in ("adam", "adamw"):
        optimizer = torch.optim.AdamW if method == "adamw" else torch.optim.Adam
        return optimizer(groups, lr=lr, betas=(0.9, 0.999))
    raise ValueError(f"SOLVER.OPTIMIZING_METHOD {s.OPTIMIZING_METHOD!r} is not supported: sgd, adam or adamw")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_gradients(model: nn.Module, cfg: Any) -> float | None:
    """The reference's clipping: by value if ``CLIP_GRAD_VAL`` is set, else by global L2 norm if
    ``CLIP_GRAD_L2NORM`` > 0 (both with ``CLIP_GRAD_BOTH``, ours). Returns the norm before the
    norm clipping, None when it is not applied. None or <= 0 turns either off."""
    s = cfg.SOLVER
    params = [p for p in model.parameters() if p.grad is not None]
    by_value = s.CLIP_GRAD_VAL is not None and s.CLIP_GRAD_VAL > 0
    if by_value:
        torch.nn.utils.clip_grad_value_(params, s.CLIP_GRAD_VAL)
    if s.CLIP_GRAD_L2NORM is not None and s.CLIP_GRAD_L2NORM > 0 and (not by_value or s.CLIP_GRAD_BOTH):
        return float(torch.nn.utils.clip_grad_norm_(params, s.CLIP_GRAD_L2NORM))
    return None
