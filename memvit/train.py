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

This module is the command's wiring; the work is in :mod:`memvit.training`: the loop
(:mod:`.trainer`), the processes (:mod:`.distributed`), resuming (:mod:`.resume`), the logs
(:mod:`.run_log`) and the recipe (:mod:`.solver`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch.distributed as dist

from .cli import command_parser, load_cfg, setup_logging, user_errors_exit
from .config import ConfigError
from .eval import run as run_eval
from .evaluation.engine import evaluate
from .training.distributed import World, check_ranks_in_sync, init_world
from .training.trainer import NonFiniteLoss, Trainer

logger = logging.getLogger(__name__)


@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    args = command_parser("python -m memvit.train", __doc__.split("\n\n")[0], dtype=True).parse_args(argv)
    cfg = load_cfg(args)
    world = init_world(cfg)
    setup_logging(logging.INFO if world.rank == 0 else logging.WARNING, rank=world.rank)
    try:
        return run(cfg, world)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run(cfg: Any, world: World) -> int:
    """Train (then test, ``TEST.ENABLE``) as the config says, or only evaluate (``TRAIN.ENABLE False``);
    the exit code: 1 when a non-finite loss stopped the run."""
    if not cfg.TRAIN.ENABLE:
        if not cfg.TEST.ENABLE:
            raise ConfigError("TRAIN.ENABLE and TEST.ENABLE are both False: nothing to do")
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


if __name__ == "__main__":
    sys.exit(main())
