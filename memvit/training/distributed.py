# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The processes of a training job: this process's place under ``torchrun`` (:class:`World`),
the per-process batch, a flag all ranks agree on, and the end-of-run check that every process
holds the same weights. NCCL on GPUs (one process per GPU), gloo on CPU."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..config import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place in the job (torchrun's environment, or a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def nodes(self) -> int:
        return self.world_size // self.local_world_size


def init_world(cfg: Any) -> World:
    """Join torchrun's process group when there is one: NCCL (``DIST_BACKEND``) with one GPU per
    process, gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    cuda = cfg.NUM_GPUS > 0
    if cuda and not torch.cuda.is_available():
        raise ConfigError(f"NUM_GPUS {cfg.NUM_GPUS} asks for GPUs, but no CUDA GPU is usable on this machine "
                          f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})",
                          "train on the CPU with the override NUM_GPUS 0")
    if cuda and local_rank >= torch.cuda.device_count():
        raise ConfigError(f"process {local_rank} of this machine has no GPU: {torch.cuda.device_count()} visible",
                          "start at most one process per GPU (torchrun --nproc-per-node N)")
    if cuda and local_world_size != cfg.NUM_GPUS and rank == 0:
        logger.warning("NUM_GPUS %d but %d process(es) per machine: memvit runs one process per GPU under torchrun "
                       "(torchrun --nproc-per-node %d -m memvit.train ...); this run uses %d GPU(s) per machine",
                       cfg.NUM_GPUS, local_world_size, cfg.NUM_GPUS, local_world_size)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend=cfg.DIST_BACKEND if cuda else "gloo")
    return World(rank, world_size, local_rank, local_world_size, device)


def per_process_batch(cfg: Any, world: World) -> int:
    """PySlowFast's ``TRAIN.BATCH_SIZE`` is the batch of one machine, split over its processes."""
    batch = cfg.TRAIN.BATCH_SIZE
    if batch % world.local_world_size:
        raise ConfigError(f"TRAIN.BATCH_SIZE {batch} is the batch of one machine; it must divide by the "
                         f"{world.local_world_size} processes per machine")
    return batch // world.local_world_size


def agree(flag: bool, world: World) -> bool:
    """True on every rank when it is True on any (stop requests, non-finite losses)."""
    if not world.distributed:
        return flag
    value = torch.tensor([float(flag)], device=world.device if world.device.type == "cuda" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())



def check_ranks_in_sync(model: nn.Module, world: World) -> None:
    """Every process must end with the same weights (DDP keeps them equal); a difference means a
    bug or a broken collective, worth an error rather than a silently diverged model."""
    if not world.distributed:
        return
    device = world.device if world.device.type == "cuda" else torch.device("cpu")
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1).to(device)
    sums = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(world.world_size)]
    dist.all_gather(sums, checksum)
    if len({float(s) for s in sums}) != 1:
        raise RuntimeError(f"the processes ended with different weights: checksums {[float(s) for s in sums]}")
    if world.rank == 0:
        logger.info("all %d processes hold identical weights (checksum %.6f)", world.world_size, float(sums[0]))
