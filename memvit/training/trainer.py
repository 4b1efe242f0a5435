# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Train MeMViT on AVA: ``python -m memvit.train --cfg configs/ava_24.yaml [KEY VALUE ...]``.

The reference's recipe (memvit.training.solver) over the AVA data in stream order (memvit.data), with:

* one process per GPU (or CPU processes) under ``torchrun``: DDP, NCCL on GPUs and gloo on
  CPU; each process keeps the memory of its own batch rows;
* evaluation every ``TRAIN.EVAL_PERIOD`` epochs through memvit.eval's code path, the best and
  the last checkpoints kept;
* checkpoints that survive a kill: written atomically at epoch ends and every
  ``TRAIN.CHECKPOINT_PERIOD_ITERS`` iterations, holding everything an exact continuation needs
  (model, optimizer, scaler, every random generator, the sampler's place in the stream order
  and each process's memory); ``TRAIN.AUTO_RESUME`` continues from the one that records the most
  iterations, and refuses one that does not fit or a changed schedule (a larger
  ``SOLVER.MAX_EPOCH`` extends the run); no run overwrites checkpoints it did not resume;
* SIGTERM (a cluster's pre-emption) checkpoints at the next iteration and exits cleanly; a
  non-finite loss stops the run naming the iteration, keeping the last good checkpoint;
* tqdm progress (loss, lr, clips/s), TensorBoard scalars, a JSON-lines log and training curves
  (PNG) under ``OUTPUT_DIR``.

``TRAIN.ENABLE False`` only evaluates (``TEST.CHECKPOINT_FILE_PATH``), the reference's form.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import math
import os
import random
import resource
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..cli import UserError, user_errors_exit
from ..config import ConfigError
from ..files import atomic_path, write_text

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "checkpoint_last.pyth"
BEST = "checkpoint_best.pyth"


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stops and keeps the last good checkpoint."""


# ---------------------------------------------------------------------------------- processes
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


def _agree(flag: bool, world: World) -> bool:
    """True on every rank when it is True on any (stop requests, non-finite losses)."""
    if not world.distributed:
        return flag
    value = torch.tensor([float(flag)], device=world.device if world.device.type == "cuda" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


# ---------------------------------------------------------------------------------- random state
def rng_state() -> dict[str, Any]:
    """Every generator the loop uses (torch CPU and CUDA, NumPy, Python), as checkpointable data."""
    # The legacy global NumPy generator: third-party code (transforms) may draw from it.
    algorithm, keys, position, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    state = {"torch": torch.get_rng_state(), "numpy": {"algorithm": algorithm,
                                                       "keys": torch.from_numpy(keys.astype(np.int64)),
                                                       "position": int(position), "has_gauss": int(has_gauss),
                                                       "gauss": float(gauss)},
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["algorithm"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"],  # noqa: NPY002
                         n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for i, cuda_state in enumerate(state.get("cuda", [])[: torch.cuda.device_count()]):
        torch.cuda.set_rng_state(cuda_state, i)


# ---------------------------------------------------------------------------------- schedule
# The schedule's fields and the config keys they come from (for messages).
SCHEDULE_KEYS = {"base_lr": "SOLVER.BASE_LR", "end_lr": "SOLVER.COSINE_END_LR",
                 "warmup_start_lr": "SOLVER.WARMUP_START_LR", "warmup_epochs": "SOLVER.WARMUP_EPOCHS",
                 "max_epoch": "SOLVER.MAX_EPOCH", "cosine_after_warmup": "SOLVER.COSINE_AFTER_WARMUP"}


@dataclass
class RunSchedule:
    """The run's learning rate per fractional epoch: the recipe's schedule (:class:`memvit.training.solver.Schedule`)
    and the extensions resumes added. An extension (a larger ``SOLVER.MAX_EPOCH`` on resume) anneals
    by a half cosine from ``from_lr`` at ``from_epoch``, where the run stood, to ``end_lr`` at
    ``to_epoch``; the recipe's schedule holds before it."""

    base: Any
    extensions: list[dict[str, float]] = field(default_factory=list)

    @property
    def base_lr(self) -> float:
        return self.base.base_lr

    @property
    def max_epoch(self) -> float:
        return float(self.extensions[-1]["to_epoch"] if self.extensions else self.base.max_epoch)

    def __call__(self, epoch: float) -> float:
        for ext in reversed(self.extensions):
            if epoch >= ext["from_epoch"]:
                span = ext["to_epoch"] - ext["from_epoch"]
                done = min(1.0, (epoch - ext["from_epoch"]) / span) if span > 0 else 1.0
                return ext["end_lr"] + (ext["from_lr"] - ext["end_lr"]) * 0.5 * (1.0 + math.cos(math.pi * done))
        return self.base(epoch)

    def state(self) -> dict[str, Any]:
        return {"base": asdict(self.base), "extensions": [dict(e) for e in self.extensions]}


def recorded_schedule(checkpoint: dict[str, Any], scale: float) -> RunSchedule:
    """The schedule a checkpoint's run followed: as recorded, or, for a checkpoint written before
    schedules were recorded, the one its ``cfg`` describes (at this run's batch scaling)."""
    import yaml

    from .solver import Schedule

    state = checkpoint["train_state"].get("schedule")
    if state is not None:
        return RunSchedule(Schedule(**state["base"]), [dict(e) for e in state["extensions"]])
    solver = (yaml.safe_load(checkpoint.get("cfg") or "") or {}).get("SOLVER", {})

    def number(key: str) -> float:
        return float(solver[key])

    return RunSchedule(Schedule(base_lr=number("BASE_LR") * scale, end_lr=number("COSINE_END_LR") * scale,
                                warmup_start_lr=number("WARMUP_START_LR") * scale,
                                warmup_epochs=number("WARMUP_EPOCHS"), max_epoch=number("MAX_EPOCH"),
                                cosine_after_warmup=bool(solver["COSINE_AFTER_WARMUP"])))


def config_differences(old_text: str | None, new_text: str) -> list[tuple[str, Any, Any]]:
    """``(KEY, old, new)`` for every config key whose value differs between two dumped configs."""
    import yaml

    def flat(node: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(node, dict):
            return {prefix[:-1]: node}
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out

    if not old_text:
        return []
    try:
        old, new = flat(yaml.safe_load(old_text) or {}), flat(yaml.safe_load(new_text) or {})
    except yaml.YAMLError:
        return []
    absent = "(absent)"
    return [(key, old.get(key, absent), new.get(key, absent)) for key in sorted(old.keys() | new.keys())
            if old.get(key, absent) != new.get(key, absent)]


def record_config(out_dir: str, text: str, global_iteration: int) -> str:
    """Keep every start's config: ``config.yaml`` for the first, then ``config_start_<iteration>.yaml``
    (the global iteration it started at) for each later one; none is overwritten."""
    path = os.path.join(out_dir, "config.yaml")
    if global_iteration > 0 or os.path.exists(path):
        stem = os.path.join(out_dir, f"config_start_{global_iteration:08d}")
        path, n = f"{stem}.yaml", 2
        while os.path.exists(path):
            path, n = f"{stem}_{n}.yaml", n + 1
    write_text(path, text)
    return path


# ---------------------------------------------------------------------------------- the loop
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
    cfg: Any
    world: World
    progress: Progress = field(default_factory=Progress)
    stop_requested: bool = False

    def __post_init__(self) -> None:
        from ..config import build_model
        from ..data.ava import ava_collate, build_ava_dataset, keyframe_count_text
        from ..data.streams import StreamBatchSampler
        from .solver import build_optimizer, build_schedule, lr_scale

        cfg, world = self.cfg, self.world
        if cfg.TRAIN.DATASET.lower() != "ava":
            raise ConfigError(f"TRAIN.DATASET {cfg.TRAIN.DATASET!r}: memvit trains on AVA ('ava')")
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
        self.sampler = StreamBatchSampler(self.dataset.keyframe_ids(), self.batch, num_replicas=world.world_size,
                                          rank=world.rank, shuffle=True, wrap=True, seed=cfg.RNG_SEED)
        self.iters_per_epoch = len(self.sampler)
        self.loader_generator = torch.Generator()
        self.collate = ava_collate
        self.logs = RunLog(self.out_dir, enabled=world.rank == 0)
        if world.rank == 0:
            os.makedirs(self.out_dir, exist_ok=True)
            logger.info("training data: %s; %d processes x %d streams = global batch %d; %d iterations per epoch; "
                        "learning rate x%.3g (BASE_LR %.4g -> %.4g)", keyframe_count_text(self.dataset),
                        world.world_size, self.batch, self.global_batch, self.iters_per_epoch, scale,
                        cfg.SOLVER.BASE_LR, self.schedule.base_lr)
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

        path = self.cfg.TRAIN.CHECKPOINT_FILE_PATH
        if not path:
            logger.info("no TRAIN.CHECKPOINT_FILE_PATH: training from scratch")
            return
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
        what differs; a larger ``SOLVER.MAX_EPOCH`` extends the run (:meth:`resumed_schedule`)."""
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
            self.refuse_checkpoint(path, checkpoint, "does not fit the model of this config:\n" + misfit_text(report))
        state = checkpoint["train_state"]
        progress = Progress(**state["progress"])
        ranks = checkpoint["rank_states"]
        same_world = len(ranks) == self.world.world_size
        if not same_world:
            progress.epoch += 1 if progress.iteration else 0
            progress.iteration = 0
        schedule = self.resumed_schedule(path, checkpoint, progress)
        try:
            self.module.load_state_dict(model_state_of(checkpoint), strict=True)
            self.optimizer.load_state_dict(checkpoint["optimizer_state"])
            if same_world:
                self.sampler.load_state_dict(state["sampler"])
        except (ValueError, RuntimeError, KeyError) as error:
            self.refuse_checkpoint(path, checkpoint, f"does not fit this run ({error})")
        self.scaler.load_state_dict(checkpoint["scaler_state"])
        self.progress = progress
        self.schedule = schedule
        if same_world:
            mine = ranks[self.world.rank]
            set_rng_state(mine["rng"])
            if mine["memory"] is not None and self.module.memory is not None:
                self.module.memory.set_state(MemorySnapshot.from_state_dict(mine["memory"], self.world.device))
        else:
            logger.warning("%s was written by %d processes, this run has %d: continuing at the next epoch with "
                           "fresh memory and random state", path, len(ranks), self.world.world_size)
        if self.world.rank == 0:
            logger.info("resumed from %s: epoch %d, iteration %d of %d (global iteration %d)", path,
                        self.progress.epoch + 1, self.progress.iteration, self.iters_per_epoch,
                        self.progress.global_iteration)
            self.logs.event("resumed", path=path, **asdict(self.progress))
        return True

    def refuse_checkpoint(self, path: str, checkpoint: dict[str, Any], what: str) -> None:
        """Stop: the checkpoint belongs to another run; starting afresh here would overwrite it."""
        differences = config_differences(checkpoint.get("cfg"), self.cfg.dump())
        lines = [f"{path} {what}"]
        if differences:
            lines.append("config keys that differ (the checkpoint's run -> this config):")
            lines += [f"  {key}: {old} -> {new}" for key, old, new in differences[:20]]
            if len(differences) > 20:
                lines.append(f"  ... and {len(differences) - 20} more")
        raise UserError("\n".join(lines) + "\nthe checkpoints are untouched",
                        f"continue that run with the config it was started with ({self.out_dir}/config.yaml and "
                        f"the config_start_*.yaml of later starts), or start the new run in another OUTPUT_DIR (the "
                        f"override OUTPUT_DIR {self.out_dir}_2); see docs/training.md, Resuming")

    def resumed_schedule(self, path: str, checkpoint: dict[str, Any], progress: Progress) -> RunSchedule:
        """The learning-rate schedule the resumed run continues with; never a jump.

        The same schedule continues as it was recorded. A larger ``SOLVER.MAX_EPOCH`` extends the
        run: from where it stopped, the learning rate anneals (cosine) from its value there to
        ``COSINE_END_LR`` at the new last epoch; the extension is logged and recorded in the
        checkpoints, so later resumes reproduce it. Any other change (a smaller MAX_EPOCH, the
        learning rates, the warm-up, the policy, the batch scaling) is refused with both values."""
        recorded = recorded_schedule(checkpoint, self.lr_scale)
        old, new = recorded.base, self.schedule.base
        changed = [(key, getattr(old, name), getattr(new, name)) for name, key in SCHEDULE_KEYS.items()
                   if name != "max_epoch" and getattr(old, name) != getattr(new, name)]
        old_max, new_max = recorded.max_epoch, float(self.cfg.SOLVER.MAX_EPOCH)
        if new_max < old_max:
            changed.append(("SOLVER.MAX_EPOCH", old_max, new_max))
        at = progress.epoch + progress.iteration / self.iters_per_epoch
        if new_max > old_max and at < old.warmup_epochs:
            changed.append(("SOLVER.MAX_EPOCH (during warm-up)", old_max, new_max))
        if changed:
            scale = checkpoint["train_state"].get("schedule", {}).get("lr_scale")
            note = (f"\n(learning rates as used, scaled by the global batch: x{scale:g} then, x{self.lr_scale:g} now)"
                    if scale is not None and scale != self.lr_scale else "")
            raise UserError(
                f"{path}: the learning-rate schedule of this config differs from the run's, which would change the "
                "learning rate of the resumed run without notice:\n"
                + "\n".join(f"  {key}: {a} -> {b}" for key, a, b in changed) + note
                + "\nthe checkpoints are untouched",
                "resume with the run's values (only a larger SOLVER.MAX_EPOCH, after the warm-up, extends a run), or "
                f"start a new run in another OUTPUT_DIR (the override OUTPUT_DIR {self.out_dir}_2); see "
                "docs/training.md, Resuming")
        if new_max == old_max:
            return recorded
        start_lr = recorded(at)
        extension = {"from_epoch": at, "from_lr": start_lr, "to_epoch": new_max, "end_lr": old.end_lr}
        message = (f"extending the run: SOLVER.MAX_EPOCH {old_max:g} -> {new_max:g}; from epoch {at:.3f} the learning "
                   f"rate anneals (cosine) from {start_lr:.4g}, where the run stopped, to COSINE_END_LR "
                   f"{old.end_lr:.4g} at epoch {new_max:g} (recorded in the checkpoints)")
        if self.world.rank == 0:
            logger.warning("%s", message)
            self.logs.event("schedule_extended", path=path, **extension)
        return RunSchedule(old, [*recorded.extensions, extension])

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
        # The DataLoader draws its workers' base seed from a generator of its own, reseeded per
        # epoch, never from the global one dropout uses: a resumed run draws exactly the same.
        self.loader_generator.manual_seed(self.cfg.RNG_SEED + self.progress.epoch)
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=self.sampler, collate_fn=self.collate,
            num_workers=self.cfg.DATA_LOADER.NUM_WORKERS, generator=self.loader_generator,
            pin_memory=self.cfg.DATA_LOADER.PIN_MEMORY and self.world.device.type == "cuda",
            worker_init_fn=_ignore_sigterm)

    def train_epoch(self) -> bool:
        """One epoch from where the progress stands; False when stopped (SIGTERM)."""
        from tqdm import tqdm

        from .solver import clip_gradients, set_lr

        cfg, world, p = self.cfg, self.world, self.progress
        self.sampler.set_epoch(p.epoch)
        if p.iteration == 0 and self.module.memory is not None:
            self.module.memory.reset()  # a new epoch starts every stream afresh
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
            stop = _agree(self.stop_requested, world)
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
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.TRAIN.MIXED_PRECISION):
            scores = self.model(video, video_ids=batch["video_ids"], boxes=boxes)
        scores = scores.float()
        finite = bool(torch.isfinite(scores).all())  # BCE itself refuses NaN scores
        loss = self.loss(scores, labels) if finite else scores.new_tensor(float("nan"))
        if _agree(not (finite and bool(torch.isfinite(loss))), world):
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
        if self.cfg.MODEL.LOSS_FUNC != "bce":  # checked per step: cheap, and the message names the key
            raise ConfigError(f"MODEL.LOSS_FUNC {self.cfg.MODEL.LOSS_FUNC!r}: the AVA detector trains with 'bce'")
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
        mine = {"rng": rng_state(), "memory": memory}
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


def _ignore_sigterm(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM to the main process, which checkpoints and shuts them down."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def rank_checkpoints(folder: str) -> tuple[list[tuple[str, tuple[int, int, int]]], list[tuple[str, Exception]]]:
    """The checkpoints of a run, most iterations first, by the iteration each records (never by file
    time: a copy or a touch changes that), and the damaged ones with their errors. The best one is
    a copy, not a place to resume. A file without training state ranks last, at (-1, -1, -1)."""
    from ..checkpoint import CheckpointError, DamagedCheckpointError, UnsafeCheckpointError, read_checkpoint

    ranked, damaged = [], []
    for path in sorted(glob.glob(os.path.join(folder, "*.pyth"))):
        if os.path.basename(path) == BEST:
            continue
        try:
            checkpoint = read_checkpoint(path, mmap=True)  # the tensors are mapped, not read
        except DamagedCheckpointError as error:
            damaged.append((path, error))
            continue
        except UnsafeCheckpointError:
            raise
        except CheckpointError:  # gone meanwhile
            continue
        state = checkpoint.get("train_state")
        progress = state.get("progress") if isinstance(state, dict) else None
        key = ((int(progress["global_iteration"]), int(progress["epoch"]), int(progress["iteration"]))
               if isinstance(progress, dict) else (-1, -1, -1))
        ranked.append((key, os.path.basename(path) == LAST, path))
        del checkpoint
    ranked.sort(reverse=True)
    return [(path, key) for key, _, path in ranked], damaged


def misfit_text(report: Any, limit: int = 8) -> str:
    """The tensors where a checkpoint and a model differ (a :class:`memvit.checkpoint.LoadReport`)."""

    def some(items: list[str]) -> str:
        return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")

    lines = []
    if report.mismatched:
        lines.append(f"  wrong shape ({len(report.mismatched)}): "
                     + some([f"{k} (checkpoint {tuple(a)}, model {tuple(b)})" for k, a, b in report.mismatched]))
    if report.unexpected:
        lines.append(f"  only in the checkpoint ({len(report.unexpected)}): {some(report.unexpected)}")
    if report.missing:
        lines.append(f"  only in the model ({len(report.missing)}): {some(report.missing)}")
    return "\n".join(lines)


def set_aside(path: str) -> str:
    """Rename a damaged checkpoint to ``<path>.damaged`` (or ``.damaged-N``), so that nothing overwrites it."""
    target, n = f"{path}.damaged", 2
    while os.path.exists(target):
        target, n = f"{path}.damaged-{n}", n + 1
    os.rename(path, target)
    return target


def training_checkpoints(folder: str) -> list[str]:
    """Readable training checkpoints of a run, most iterations first (:func:`rank_checkpoints`)."""
    return [path for path, key in rank_checkpoints(folder)[0] if key[0] >= 0]


def latest_path(folder: str) -> str | None:
    paths = training_checkpoints(folder)
    return paths[0] if paths else None


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: often on a terminal, rarely into a log file."""
    return 0.1 if sys.stderr.isatty() else 10.0


def peak_memory_mb(world: World) -> float:
    if world.device.type == "cuda":
        return torch.cuda.max_memory_allocated(world.device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------- logs
class RunLog:
    """JSON lines (``log.jsonl``), TensorBoard scalars (``tensorboard/``) and ``training_curves.png``."""

    def __init__(self, out_dir: str, enabled: bool) -> None:
        self.enabled = enabled
        self.out_dir = out_dir
        self.writer = None
        if enabled:
            os.makedirs(out_dir, exist_ok=True)
            self.path = os.path.join(out_dir, "log.jsonl")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.path.join(out_dir, "tensorboard"))

    def _write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def event(self, name: str, **fields: Any) -> None:
        self._write({"type": "event", "event": name, **fields})

    def train(self, p: Progress, **values: float) -> None:
        self._write({"type": "train", "epoch": p.epoch + 1, "iteration": p.iteration,
                     "global_iteration": p.global_iteration, **values})
        if self.writer is not None:
            for key in ("loss", "lr", "clips_per_second", "peak_memory_mb"):
                self.writer.add_scalar(f"train/{key}", values[key], p.global_iteration)

    def eval(self, p: Progress, report: dict[str, Any]) -> None:
        self._write({"type": "eval", "epoch": p.epoch, "global_iteration": p.global_iteration, "map": report["map"],
                     "groups": report["groups"], "clips_per_second": report["clips_per_second"]})
        if self.writer is not None:
            self.writer.add_scalar("eval/map", report["map"], p.global_iteration)
            self.writer.add_scalar("eval/clips_per_second", report["clips_per_second"], p.global_iteration)
        plot_training_curves(self.path, os.path.join(self.out_dir, "training_curves.png"))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            plot_training_curves(self.path, os.path.join(self.out_dir, "training_curves.png"))


def read_run_log(log_path: str) -> tuple[dict[int, dict], dict[int, float]]:
    """``log.jsonl`` as ({global iteration: train record}, {epoch: val mAP}); the last record of an
    iteration wins (a resumed run repeats the few since its checkpoint)."""
    train: dict[int, dict] = {}
    evals: dict[int, float] = {}
    with open(log_path) as f:
        for line in f:
            record = json.loads(line)
            if record["type"] == "train":
                train[record["global_iteration"]] = record
            elif record["type"] == "eval":
                evals[record["epoch"]] = record["map"]
    return train, evals


def plot_training_curves(log_path: str, png_path: str) -> None:
    """Loss and learning rate per iteration and validation mAP per epoch, from the JSON-lines log."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not os.path.isfile(log_path):
        return
    train, evals = read_run_log(log_path)
    if not train:
        return
    steps = sorted(train)
    figure = Figure(figsize=(11, 3.4), dpi=100)
    axes = figure.subplots(1, 3)
    losses = np.array([train[s]["loss"] for s in steps])
    axes[0].plot(steps, losses, color="#4c72b0", alpha=0.35, lw=1)
    if len(losses) >= 5:
        window = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axes[0].plot(steps[window - 1:], smooth, color="#4c72b0", lw=2)
    axes[0].set(title="training loss (BCE)", xlabel="iteration")
    axes[1].plot(steps, [train[s]["lr"] for s in steps], color="#dd8452")
    axes[1].set(title="learning rate", xlabel="iteration")
    if evals:
        epochs = sorted(evals)
        axes[2].plot(epochs, [100 * evals[e] for e in epochs], marker="o", color="#55a868")
    axes[2].set(title="val frame-mAP (%)", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(png_path) as tmp:  # a viewer never sees half a PNG
        FigureCanvasAgg(figure).print_png(tmp)


# ---------------------------------------------------------------------------------- entry point
@user_errors_exit
def main(argv: list[str] | None = None) -> int:
    from ..config import load_config

    parser = argparse.ArgumentParser(prog="python -m memvit.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="YAML config (configs/*.yaml)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    cfg = load_config(args.cfg, args.opts)
    world = init_world(cfg)
    logging.basicConfig(level=logging.INFO if world.rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {world.rank}] %(levelname)s %(name)s: %(message)s")
    try:
        return run(cfg, world)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run(cfg: Any, world: World) -> int:
    from ..evaluation.engine import evaluate

    if not cfg.TRAIN.ENABLE:
        if not cfg.TEST.ENABLE:
            raise ConfigError("TRAIN.ENABLE and TEST.ENABLE are both False: nothing to do")
        from ..evaluation.engine import run as run_eval

        return run_eval(cfg, checkpoint=cfg.TEST.CHECKPOINT_FILE_PATH, device=str(world.device))
    trainer = Trainer(cfg, world)
    trainer.start()
    try:
        progress = trainer.fit()
    except NonFiniteLoss as error:
        logger.error("%s", error)
        return 1
    if progress.epoch < cfg.SOLVER.MAX_EPOCH:  # stopped by SIGTERM, checkpointed
        return 0
    check_ranks_in_sync(trainer.module, world)
    if world.rank == 0:
        if progress.best_epoch >= 0:
            print(f"best val frame-mAP {100 * progress.best_map:.2f} at epoch {progress.best_epoch}")
        print(f"checkpoints: {trainer.checkpoint_dir}; log: {os.path.join(cfg.OUTPUT_DIR, 'log.jsonl')}; curves: "
              f"{os.path.join(cfg.OUTPUT_DIR, 'training_curves.png')}; TensorBoard: tensorboard --logdir "
              f"{os.path.join(cfg.OUTPUT_DIR, 'tensorboard')}", flush=True)
    if cfg.TEST.ENABLE:
        out_dir = os.path.join(cfg.OUTPUT_DIR, "eval_test")
        report = evaluate(trainer.model, cfg, split="test", out_dir=out_dir, device=world.device,
                          progress=world.rank == 0, num_replicas=world.world_size, rank=world.rank)
        if world.rank == 0:
            print(report["summary"])
            print(f"test: {report['clips']} clips, {report['clips_per_second']:.2f} clips/s; predictions, per-class "
                  f"AP (CSV, PNG) and summary.json in {out_dir}", flush=True)
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
