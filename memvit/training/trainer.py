# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The training loop behind ``python -m memvit.train`` (:class:`Trainer`): set-up (model,
optimizer, data in stream order, resume or initialise, DDP), the epochs and their steps,
evaluation at epoch ends, and the checkpoints written (atomically, at epoch ends and every
``TRAIN.CHECKPOINT_PERIOD_ITERS`` iterations, with everything an exact continuation needs).
What resuming decides is in :mod:`.resume`, the processes in :mod:`.distributed`, the logs in
:mod:`.run_log`, the recipe in :mod:`.solver`."""

from __future__ import annotations

import glob
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..cli import UserError, progress_interval
from ..config import ConfigError
from .distributed import World, agree, per_process_batch
from .resume import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    RunSchedule,
    continued_schedule,
    latest_path,
    misfit_text,
    rank_checkpoints,
    record_config,
    refusal,
    rng_state,
    set_aside,
    set_rng_state,
)
from .run_log import RunLog, peak_memory_mb

logger = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stops and keeps the last good checkpoint."""


@dataclass
class Progress:
    """Where the run stands: ``iteration`` counts the batches done in ``epoch``."""

    epoch: int = 0
    iteration: int = 0
    global_iteration: int = 0
    best_map: float = -1.0
    best_epoch: int = -1
    last_map: float | None = None


@dataclass
class Trainer:
    """One process's part of a training run: :meth:`start` (resume or initialise, DDP), then
    :meth:`fit` (the epochs, evaluations and checkpoints, until ``SOLVER.MAX_EPOCH`` or SIGTERM)."""

    cfg: Any
    world: World
    progress: Progress = field(default_factory=Progress)
    stop_requested: bool = False

    def __post_init__(self) -> None:
        from ..config import build_model
        from ..data.ava import build_ava_dataset, keyframe_count_text
        from ..data.loader import stream_sampler
        from ..models.memory import GroupMemories
        from .solver import build_optimizer, build_schedule, lr_scale

        cfg, world = self.cfg, self.world
        if cfg.TRAIN.DATASET.lower() != "ava":
            raise ConfigError(f"TRAIN.DATASET {cfg.TRAIN.DATASET!r}: memvit trains on AVA ('ava')")
        if cfg.MODEL.LOSS_FUNC != "bce":
            raise ConfigError(f"MODEL.LOSS_FUNC {cfg.MODEL.LOSS_FUNC!r}: the AVA detector trains with 'bce'")
        if not isinstance(cfg.TRAIN.STREAM_GROUPS, int) or cfg.TRAIN.STREAM_GROUPS < 1:
            raise ConfigError(f"TRAIN.STREAM_GROUPS {cfg.TRAIN.STREAM_GROUPS!r}: the number of stream groups taking "
                              "turns must be an integer >= 1 (1: the reference's layout)")
        self.out_dir = cfg.OUTPUT_DIR
        self.checkpoint_dir = os.path.join(self.out_dir, CHECKPOINT_DIR)
        torch.manual_seed(cfg.RNG_SEED)  # identical initial weights on every process
        self.model = build_model(cfg).to(world.device)
        self.module = self.model
        self.batch = per_process_batch(cfg, world)
        self.global_batch = self.batch * world.world_size
        scale = lr_scale(cfg, self.global_batch)
        self.lr_scale = scale
        self.schedule = RunSchedule(build_schedule(cfg, scale))
        self.optimizer = build_optimizer(self.model, cfg, self.schedule(0.0))
        self.scaler = torch.amp.GradScaler(world.device.type, enabled=False)  # bf16 autocast needs no scaling
        self.dataset = build_ava_dataset(cfg, "train")
        self.sampler = stream_sampler(cfg, self.dataset, "train", batch_size=self.batch,
                                      num_replicas=world.world_size, rank=world.rank)
        self.iters_per_epoch = len(self.sampler)
        groups = self.sampler.groups
        self.group_memories = GroupMemories(self.module.memory) if groups > 1 and self.module.memory else None
        stream_length = self.sampler.stream_lengths()[0]
        if self.group_memories is not None and stream_length < self.module.memory.keep_max_len and world.rank == 0:
            logger.warning("TRAIN.STREAM_GROUPS %d: each stream holds %d keyframes, fewer than the %d clips the memory "
                           "reaches over, so it is seldom full; lower TRAIN.STREAM_GROUPS for this data", groups,
                           stream_length, self.module.memory.keep_max_len)
        self.logs = RunLog(self.out_dir, enabled=world.rank == 0)
        if world.rank == 0:
            os.makedirs(self.out_dir, exist_ok=True)
            logger.info("training data: %s; %d processes x %d streams = global batch %d%s; %d iterations per epoch; "
                        "learning rate x%.3g (BASE_LR %.4g -> %.4g)", keyframe_count_text(self.dataset),
                        world.world_size, self.batch, self.global_batch,
                        f", {groups} groups of streams taking turns" if groups > 1 else "", self.iters_per_epoch,
                        scale, cfg.SOLVER.BASE_LR, self.schedule.base_lr)
            if cfg.LOG_MODEL_INFO:
                params = sum(p.numel() for p in self.model.parameters())
                logger.info("model: %s parameters", f"{params:,}")

    # -------------------------------------------------------------- set-up
    def start(self) -> None:
        """Resume (TRAIN.AUTO_RESUME) or initialise (TRAIN.CHECKPOINT_FILE_PATH), then wrap in DDP.

        A run never overwrites checkpoints it did not resume: starting afresh where OUTPUT_DIR
        already holds checkpoints (TRAIN.AUTO_RESUME False, or only a best copy left) is refused."""
        resumed = self.cfg.TRAIN.AUTO_RESUME and self.resume()
        if not resumed:
            self.refuse_to_overwrite()
            self.initialise()
            torch.manual_seed(self.cfg.RNG_SEED + 1000 * self.world.rank)  # dropout differs per process
        if self.world.rank == 0:
            path = record_config(self.out_dir, self.cfg.dump(), self.progress.global_iteration)
            logger.info("the config of this start: %s", path)
        if self.world.distributed:
            device_ids = [self.world.local_rank] if self.world.device.type == "cuda" else None
            # Compression and memory tables of excluded layers get no gradient: unused parameters.
            self.model = nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids,
                                                             find_unused_parameters=self.cfg.MEMVIT.ENABLE)

    def refuse_to_overwrite(self) -> None:
        left = sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.checkpoint_dir, "*.pyth")))
        if left:
            why = ("TRAIN.AUTO_RESUME False: this run starts afresh" if not self.cfg.TRAIN.AUTO_RESUME else
                   "none of them is a place to resume")
            raise UserError(f"{self.checkpoint_dir} holds checkpoints of an earlier run ({', '.join(left)}); {why} "
                            "and would overwrite them",
                            f"start the new run in another OUTPUT_DIR (the override OUTPUT_DIR {self.out_dir}_2), or "
                            "continue the earlier run with TRAIN.AUTO_RESUME True (the default); see docs/training.md, "
                            "Resuming")

    def initialise(self) -> None:
        from ..checkpoint import load_pretrained, read_checkpoint
        from ..weights import resolve_checkpoint

        path = self.cfg.TRAIN.CHECKPOINT_FILE_PATH
        if not path:
            logger.info("no TRAIN.CHECKPOINT_FILE_PATH: training from scratch")
            return
        path = resolve_checkpoint(path, progress=self.world.rank == 0)  # a published name: downloaded once
        checkpoint = read_checkpoint(path)
        report = load_pretrained(self.module, checkpoint)
        if self.world.rank == 0:
            logger.info("initialised from %s:\n%s", path, report)
        if not self.cfg.TRAIN.CHECKPOINT_EPOCH_RESET and report.ok and "optimizer_state" in checkpoint:
            self.optimizer.load_state_dict(checkpoint["optimizer_state"])
            self.progress.epoch = int(checkpoint.get("epoch", -1)) + 1
            logger.info("continuing at epoch %d (TRAIN.CHECKPOINT_EPOCH_RESET False)", self.progress.epoch + 1)

    def resume(self) -> bool:
        """Continue from the training checkpoint under OUTPUT_DIR that records the most iterations.

        Damaged files are skipped with a warning and kept aside (``<name>.damaged``), never
        overwritten. A checkpoint that does not fit this run (another architecture or head, data
        or batch layout) or a changed learning-rate schedule is refused (:class:`UserError`) naming
        what differs (:func:`.resume.refusal`); a larger ``SOLVER.MAX_EPOCH`` extends the run
        (:func:`.resume.continued_schedule`)."""
        from ..checkpoint import compare_state, model_state_of, read_checkpoint
        from ..models.memory import MemorySnapshot

        ranked, damaged = rank_checkpoints(self.checkpoint_dir)
        if self.world.distributed:
            dist.barrier()  # every process has read the folder before rank 0 moves damaged files aside
        if self.world.rank == 0:
            for path, error in damaged:
                kept = set_aside(path)
                logger.warning("skipping checkpoint %s: %s; kept as %s", path, error, kept)
        if self.world.distributed:
            dist.barrier()  # ... and every process sees the folder after that
        if not ranked:
            return False
        foreign = [path for path, key in ranked if key[0] < 0]
        if foreign:
            raise UserError(f"{foreign[0]} is not a checkpoint of memvit.train (no training state): nothing to resume "
                            "from, and this run could overwrite it",
                            "move it out of OUTPUT_DIR/checkpoints (to initialise from it: "
                            "TRAIN.CHECKPOINT_FILE_PATH), or start the run in another OUTPUT_DIR")
        path = ranked[0][0]
        checkpoint = read_checkpoint(path)  # in memory this time (the ranking only mapped the files)
        report = compare_state(self.module, model_state_of(checkpoint))
        if not report.ok:
            raise refusal(path, checkpoint, "does not fit the model of this config:\n" + misfit_text(report),
                          self.cfg.dump(), self.out_dir)
        state = checkpoint["train_state"]
        progress = Progress(**state["progress"])
        ranks = checkpoint["rank_states"]
        same_world = len(ranks) == self.world.world_size
        if not same_world:
            progress.epoch += 1 if progress.iteration else 0
            progress.iteration = 0
        at = progress.epoch + progress.iteration / self.iters_per_epoch
        schedule, extended = continued_schedule(path, checkpoint, self.schedule, self.lr_scale,
                                                self.cfg.SOLVER.MAX_EPOCH, at, self.out_dir)
        if extended is not None and self.world.rank == 0:
            logger.warning("%s", extended)
            self.logs.event("schedule_extended", path=path, **schedule.extensions[-1])
        try:
            self.module.load_state_dict(model_state_of(checkpoint), strict=True)
            self.optimizer.load_state_dict(checkpoint["optimizer_state"])
            if same_world:
                self.sampler.load_state_dict(state["sampler"])
        except (ValueError, RuntimeError, KeyError) as error:
            raise refusal(path, checkpoint, f"does not fit this run ({error})", self.cfg.dump(),
                          self.out_dir) from error
        self.scaler.load_state_dict(checkpoint["scaler_state"])
        self.progress = progress
        self.schedule = schedule
        if same_world:
            mine = ranks[self.world.rank]
            set_rng_state(mine["rng"])
            if mine["memory"] is not None and self.module.memory is not None:
                self.module.memory.set_state(MemorySnapshot.from_state_dict(mine["memory"], self.world.device))
            if mine.get("memory_groups") is not None and self.group_memories is not None:
                self.group_memories.load_state_dict(mine["memory_groups"], self.world.device)
        else:
            logger.warning("%s was written by %d processes, this run has %d: continuing at the next epoch with "
                           "fresh memory and random state", path, len(ranks), self.world.world_size)
        if self.world.rank == 0:
            logger.info("resumed from %s: epoch %d, iteration %d of %d (global iteration %d)", path,
                        self.progress.epoch + 1, self.progress.iteration, self.iters_per_epoch,
                        self.progress.global_iteration)
            self.logs.event("resumed", path=path, **asdict(self.progress))
        return True

    # -------------------------------------------------------------- the loop
    def fit(self) -> Progress:
        cfg = self.cfg
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            while self.progress.epoch < cfg.SOLVER.MAX_EPOCH:
                finished = self.train_epoch()
                if not finished:
                    return self.progress
                self.end_epoch()
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.logs.close()
        return self.progress

    def _on_sigterm(self, signum, frame) -> None:
        self.stop_requested = True
        logger.warning("SIGTERM: checkpointing after this iteration, then exiting")

    def loader(self) -> torch.utils.data.DataLoader:
        """This epoch's loader: the workers' seeds depend on the epoch alone (:func:`.data.loader.stream_loader`)."""
        from ..data.loader import stream_loader

        return stream_loader(self.cfg, self.dataset, self.sampler, device=self.world.device, epoch=self.progress.epoch)

    def train_epoch(self) -> bool:
        """One epoch from where the progress stands; False when stopped (SIGTERM)."""
        from tqdm import tqdm

        from .solver import clip_gradients, set_lr

        cfg, world, p = self.cfg, self.world, self.progress
        self.sampler.set_epoch(p.epoch)
        if p.iteration == 0 and self.module.memory is not None:
            (self.group_memories or self.module.memory).reset()  # a new epoch starts every stream afresh
        self.model.train()
        bar = tqdm(total=self.iters_per_epoch, initial=p.iteration, desc=f"epoch {p.epoch + 1}/{cfg.SOLVER.MAX_EPOCH}",
                   disable=world.rank != 0, dynamic_ncols=True, unit="it", mininterval=progress_interval())
        start, clips = time.perf_counter(), 0
        for batch in self.loader():
            lr = self.schedule(p.epoch + p.iteration / self.iters_per_epoch)
            set_lr(self.optimizer, lr)
            loss = self.step(batch)
            clip_gradients(self.module, cfg)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            p.iteration += 1
            p.global_iteration += 1
            clips += len(batch["video_ids"]) * world.world_size
            rate = clips / (time.perf_counter() - start)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", clips_s=f"{rate:.1f}", refresh=False)
            if p.global_iteration % max(1, cfg.LOG_PERIOD) == 0 or p.iteration == self.iters_per_epoch:
                self.logs.train(p, loss=loss, lr=lr, clips_per_second=rate, peak_memory_mb=peak_memory_mb(world),
                                data_problems=len(batch["problems"]))
            period = cfg.TRAIN.CHECKPOINT_PERIOD_ITERS
            stop = agree(self.stop_requested, world)
            if stop or (period > 0 and p.global_iteration % period == 0 and p.iteration < self.iters_per_epoch):
                self.save(LAST)
            if stop:
                bar.close()
                if world.rank == 0:
                    print(f"stopped by SIGTERM after epoch {p.epoch + 1} iteration {p.iteration}; checkpoint saved "
                          f"in {self.checkpoint_dir}; run the same command to continue", flush=True)
                return False
        bar.close()
        return True

    def step(self, batch: dict[str, Any]) -> float:
        """Forward, loss, backward (the optimizer step is the caller's); returns the loss."""
        cfg, world, p = self.cfg, self.world, self.progress
        device = world.device
        video = batch["video"].to(device, non_blocking=True)
        boxes = batch["boxes"].to(device, non_blocking=True)
        labels = batch["labels"].to(device, non_blocking=True)
        if self.group_memories is not None:
            self.group_memories.switch(batch["streams"])  # this group's own earlier clips
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.TRAIN.MIXED_PRECISION):
            scores = self.model(video, video_ids=batch["video_ids"], boxes=boxes)
        scores = scores.float()
        finite = bool(torch.isfinite(scores).all())  # BCE itself refuses NaN scores
        loss = self.loss(scores, labels) if finite else scores.new_tensor(float("nan"))
        if agree(not (finite and bool(torch.isfinite(loss))), world):
            last = latest_path(self.checkpoint_dir)
            raise NonFiniteLoss(f"non-finite loss ({loss.item()}) at epoch {p.epoch + 1}, iteration {p.iteration + 1} "
                                f"(global {p.global_iteration + 1}); the last good checkpoint is "
                                f"{last or 'none (none was written yet)'}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        return float(loss.detach())

    def loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """BCE on the sigmoid scores, as the reference (``MODEL.LOSS_FUNC bce``); a batch without
        boxes gives a zero loss that still reaches every parameter (DDP needs the backward)."""
        if scores.numel() == 0:
            return scores.sum() * 0.0
        return nn.functional.binary_cross_entropy(scores, labels)

    def end_epoch(self) -> None:
        cfg, p = self.cfg, self.progress
        p.epoch += 1
        p.iteration = 0
        last_epoch = p.epoch == cfg.SOLVER.MAX_EPOCH
        if cfg.TRAIN.EVAL_PERIOD > 0 and (p.epoch % cfg.TRAIN.EVAL_PERIOD == 0 or last_epoch):
            self.evaluate()
        names = [LAST]
        if cfg.TRAIN.CHECKPOINT_PERIOD > 0 and (p.epoch % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or last_epoch):
            names.insert(0, f"checkpoint_epoch_{p.epoch:05d}.pyth")  # PySlowFast's name; LAST links to it
        if p.best_epoch == p.epoch:
            names.append(BEST)
        self.save(*names)

    def evaluate(self) -> None:
        from ..evaluation.engine import evaluate

        p = self.progress
        out_dir = os.path.join(self.out_dir, f"eval_epoch_{p.epoch:05d}")
        report = evaluate(self.model, self.cfg, split="val", out_dir=out_dir, device=self.world.device,
                          progress=self.world.rank == 0, num_replicas=self.world.world_size, rank=self.world.rank)
        value = torch.tensor([report["map"] if report else 0.0], dtype=torch.float64)
        if self.world.distributed:
            dist.broadcast(value, src=0)
        p.last_map = float(value.item())
        if p.last_map > p.best_map:
            p.best_map, p.best_epoch = p.last_map, p.epoch
        if self.world.rank == 0:
            print(f"epoch {p.epoch}: val frame-mAP {100 * p.last_map:.2f} (best {100 * p.best_map:.2f} at epoch "
                  f"{p.best_epoch})", flush=True)
            self.logs.eval(p, report)

    # -------------------------------------------------------------- checkpoints
    def save(self, name: str, *aliases: str) -> None:
        """Write a training checkpoint (rank 0; every rank contributes its memory and RNG state)
        under ``name``, and the same file under each alias (a hard link where possible)."""
        from ..checkpoint import save_checkpoint

        p = self.progress
        mid_epoch = p.iteration > 0
        memory = self.module.memory.get_state().state_dict() if (mid_epoch and self.module.memory) else None
        groups = self.group_memories.state_dict() if (mid_epoch and self.group_memories) else None
        mine = {"rng": rng_state(), "memory": memory, "memory_groups": groups}
        ranks: list[Any] = [mine]
        if self.world.distributed:
            ranks = [None] * self.world.world_size
            dist.all_gather_object(ranks, mine)
        if self.world.rank == 0:
            train_state = {"progress": asdict(p), "sampler": self.sampler.state_dict(p.iteration),
                           "world_size": self.world.world_size, "iters_per_epoch": self.iters_per_epoch,
                           "schedule": {**self.schedule.state(), "lr_scale": self.lr_scale,
                                        "policy": self.cfg.SOLVER.LR_POLICY}}
            path = os.path.join(self.checkpoint_dir, name)
            save_checkpoint(path, self.model, epoch=p.epoch - (0 if mid_epoch else 1), optimizer=self.optimizer,
                            cfg=self.cfg, train_state=train_state, scaler_state=self.scaler.state_dict(),
                            rank_states=ranks)
            for alias in aliases:
                publish(path, os.path.join(self.checkpoint_dir, alias))
        if self.world.distributed:
            dist.barrier()


def publish(path: str, alias: str) -> None:
    """Make ``alias`` the same file as ``path``, atomically (a hard link, or a copy)."""
    import shutil

    tmp = f"{alias}.tmp-{os.getpid()}"
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, alias)

