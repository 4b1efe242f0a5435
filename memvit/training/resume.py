# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""What resuming a run decides: which checkpoint to continue from (:func:`rank_checkpoints`, by the
iterations each records; damaged ones set aside), whether it fits (:func:`refusal`, naming the
config keys that differ), the learning-rate schedule the run continues with (:class:`RunSchedule`,
:func:`continued_schedule`: a larger ``SOLVER.MAX_EPOCH`` extends it, any other change is refused),
every random generator's state, and each start's config kept (:func:`record_config`)."""

from __future__ import annotations

import glob
import math
import os
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..cli import UserError
from ..files import write_text

CHECKPOINT_DIR = "checkpoints"
LAST = "checkpoint_last.pyth"
BEST = "checkpoint_best.pyth"


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


# ---------------------------------------------------------------------------------- the schedule
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


def refusal(path: str, checkpoint: dict[str, Any], what: str, cfg_text: str, out_dir: str) -> UserError:
    """The error that stops a resume: the checkpoint belongs to another run, and starting afresh
    here would overwrite it. Names the config keys that differ (the checkpoint's -> ``cfg_text``)."""
    differences = config_differences(checkpoint.get("cfg"), cfg_text)
    lines = [f"{path} {what}"]
    if differences:
        lines.append("config keys that differ (the checkpoint's run -> this config):")
        lines += [f"  {key}: {old} -> {new}" for key, old, new in differences[:20]]
        if len(differences) > 20:
            lines.append(f"  ... and {len(differences) - 20} more")
    return UserError("\n".join(lines) + "\nthe checkpoints are untouched",
                     f"continue that run with the config it was started with ({out_dir}/config.yaml and "
                     f"the config_start_*.yaml of later starts), or start the new run in another OUTPUT_DIR (the "
                     f"override OUTPUT_DIR {out_dir}_2); see docs/training.md, Resuming")


def continued_schedule(path: str, checkpoint: dict[str, Any], current: RunSchedule, lr_scale: float,
                       max_epoch: float, at: float, out_dir: str) -> tuple[RunSchedule, str | None]:
    """The learning-rate schedule a run resumed at fractional epoch ``at`` continues with; never a
    jump. Returns it and, when it extends the run, the message that says so (else None).

    The same schedule continues as it was recorded. A larger ``SOLVER.MAX_EPOCH`` extends the
    run: from where it stopped, the learning rate anneals (cosine) from its value there to
    ``COSINE_END_LR`` at the new last epoch; the extension is recorded in the checkpoints, so later
    resumes reproduce it. Any other change (a smaller MAX_EPOCH, the learning rates, the warm-up,
    the policy, the batch scaling) is refused (:class:`UserError`) with both values."""
    recorded = recorded_schedule(checkpoint, lr_scale)
    old, new = recorded.base, current.base
    changed = [(key, getattr(old, name), getattr(new, name)) for name, key in SCHEDULE_KEYS.items()
               if name != "max_epoch" and getattr(old, name) != getattr(new, name)]
    old_max, new_max = recorded.max_epoch, float(max_epoch)
    if new_max < old_max:
        changed.append(("SOLVER.MAX_EPOCH", old_max, new_max))
    if new_max > old_max and at < old.warmup_epochs:
        changed.append(("SOLVER.MAX_EPOCH (during warm-up)", old_max, new_max))
    if changed:
        scale = checkpoint["train_state"].get("schedule", {}).get("lr_scale")
        note = (f"\n(learning rates as used, scaled by the global batch: x{scale:g} then, x{lr_scale:g} now)"
                if scale is not None and scale != lr_scale else "")
        raise UserError(
            f"{path}: the learning-rate schedule of this config differs from the run's, which would change the "
            "learning rate of the resumed run without notice:\n"
            + "\n".join(f"  {key}: {a} -> {b}" for key, a, b in changed) + note
            + "\nthe checkpoints are untouched",
            "resume with the run's values (only a larger SOLVER.MAX_EPOCH, after the warm-up, extends a run), or "
            f"start a new run in another OUTPUT_DIR (the override OUTPUT_DIR {out_dir}_2); see "
            "docs/training.md, Resuming")
    if new_max == old_max:
        return recorded, None
    start_lr = recorded(at)
    extension = {"from_epoch": at, "from_lr": start_lr, "to_epoch": new_max, "end_lr": old.end_lr}
    message = (f"extending the run: SOLVER.MAX_EPOCH {old_max:g} -> {new_max:g}; from epoch {at:.3f} the learning "
               f"rate anneals (cosine) from {start_lr:.4g}, where the run stopped, to COSINE_END_LR "
               f"{old.end_lr:.4g} at epoch {new_max:g} (recorded in the checkpoints)")
    return RunSchedule(old, [*recorded.extensions, extension]), message


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


# ---------------------------------------------------------------------------------- the checkpoints of a run
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
