# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""What a training run leaves to read: a JSON-lines log (``log.jsonl``), TensorBoard scalars
(``tensorboard/``) and the training curves (``training_curves.png``) under ``OUTPUT_DIR``; the
progress bar's refresh and the peak memory it reports."""

from __future__ import annotations

import json
import os
import resource
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..files import atomic_path

if TYPE_CHECKING:
    from .distributed import World
    from .trainer import Progress


def peak_memory_mb(world: World) -> float:
    """The process's peak memory so far, for the log: the GPU's allocations, or the CPU process's RSS."""
    if world.device.type == "cuda":
        return torch.cuda.max_memory_allocated(world.device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
        line = json.dumps(record, default=float) + "\n"
        with open(self.path, "a+b") as f:  # streamed: a record per line; a kill mid-line leaves a partial one
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # ... which the next record must not be glued to
                    line = "\n" + line
            f.write(line.encode())

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
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a record cut short by a kill
                continue
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
