# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Memory against no memory on a task only memory can solve: ``python -m memvit.experiments.memory_ablation``.

MeMViT's claim is that attending a cache of earlier clips lets a clip use what happened seconds before, at
a small extra cost. This experiment tests it on the long-range synthetic AVA-format data
(``memvit.data.synthetic --long-range``): ten *local* classes decidable from the current clip (the eight
of the quick start and "see an orange/lime signal", the room lit in that colour) and two *long-range*
classes ("answer an orange/lime signal") labelled 2-5 s after the light's centre, when it is out and no
longer in the labelled clip. It trains the quick
start's model (``configs/synthetic.yaml`` with :data:`COMMON`) once per *arm* and seed (``--seeds``, three
by default: from-scratch training of so small a model moves by several points from seed to seed), the same
data and budget, changing only the memory:

* ``no_memory``: plain MViTv2 (``MEMVIT.ENABLE False``), memory length 0;
* ``memory_1`` / ``memory_2`` / ``memory_4``: the reference's ``gap2`` sampler with 1, 2 (MeMViT-16's
  setting: clips t-2 and t-4) and 4 memory clips;
* ``memory_2_all`` (sampler ``all``: clips t-1 and t-2, the compression is trained) and ``memory_2_mask``
  (``MEMVIT.ISOLATION mask``): the documented options against two of the reference's quirks;
* ``memory_4_all``: sampler ``all`` with the reach of MeMViT-16's gap2 (t-1 ... t-4, back to t-4), so that
  trained compression is compared at equal reach.

Each run is a ``python -m memvit.train`` run under ``--out/<arm>/seed<k>`` (resumable; finished runs are
kept). The test split is the generator's validation split, evaluated once at the end of each run (never
during training), with two signals per 24 s video: the default 52 test videos hold 104 signal events. Then
frame-mAP per class group (local, long-range) against chance, as the mean and range over the seeds, GFLOPs
per clip and peak memory with and without memory are written to ``--results`` as ``results.md``,
``results.json`` and PNG plots (mAP per group, mAP against memory length, training curves). The committed
results are in docs/memory_ablation/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import user_errors_exit
from ..files import atomic_path, write_json, write_text

CONFIG = "configs/synthetic.yaml"
LOCAL, LONG_RANGE = "local", "long-range"
GROUPS = (LOCAL, LONG_RANGE)
ARM_FILE = "ablation_arm.json"  # in an arm's folder: what it runs on, and its time once finished


@dataclass(frozen=True)
class Arm:
    """One training run of the ablation: a name, what it shows and its config overrides."""

    name: str
    label: str
    memory_clips: int  # how many earlier clips a filled memory attends (0: no memory)
    overrides: tuple[str, ...]
    length_series: bool = True  # a point of the mAP-against-memory-length curve (else an option)


ARMS: tuple[Arm, ...] = (
    Arm("no_memory", "no memory", 0, ("MEMVIT.ENABLE", "False")),
    Arm("memory_1", "memory 1 clip (gap2: t-2)", 1, ("MEMVIT.ATTN_MAX_LEN", "2")),
    Arm("memory_2", "memory 2 clips (gap2: t-2, t-4; MeMViT-16)", 2, ("MEMVIT.ATTN_MAX_LEN", "3")),
    Arm("memory_4", "memory 4 clips (gap2: t-2 ... t-8)", 4, ("MEMVIT.ATTN_MAX_LEN", "5")),
    Arm("memory_2_all", "memory 2 clips, sampler all (t-1, t-2)", 2,
        ("MEMVIT.ATTN_MAX_LEN", "3", "MEMVIT.SAMPLER", "all"), length_series=False),
    Arm("memory_2_mask", "memory 2 clips, isolation mask", 2,
        ("MEMVIT.ATTN_MAX_LEN", "3", "MEMVIT.ISOLATION", "mask"), length_series=False),
    Arm("memory_4_all", "memory 4 clips, sampler all (t-1 ... t-4)", 4,
        ("MEMVIT.ATTN_MAX_LEN", "5", "MEMVIT.SAMPLER", "all"), length_series=False),
)
ARMS_BY_NAME = {a.name: a for a in ARMS}
REFERENCE_ARM = "memory_2"
# Every arm, on top of configs/synthetic.yaml: memory clips compressed in time only, and 16 epochs
# (chosen on the seed-0 data; on a set of another seed the quick start's (4, 2, 2) and 8 epochs answered
# as well: docs/memory_ablation/results.md); the test split is evaluated once, after training. The
# reference's stream layout (TRAIN.STREAM_GROUPS 1), with which the committed runs were made; the quick
# start's 16 groups were checked on the MeMViT-16 arm (results.md, "Stream groups").
COMMON = ("MEMVIT.COMPRESS.POOL_STRIDE", "[4,1,1]", "SOLVER.MAX_EPOCH", "16",
          "TRAIN.EVAL_PERIOD", "0", "TRAIN.STREAM_GROUPS", "1")
SEEDS = (0, 1, 2)


def data_overrides(data_root: str | os.PathLike) -> list[str]:
    """``KEY VALUE`` overrides that point a config at a synthetic set (and its class count)."""
    from ..data.synthetic import ava_config

    meta = json.loads((Path(data_root) / "meta.json").read_text())
    out = []
    for key, value in ava_config(Path(data_root).resolve(), len(meta["classes"])).items():
        out += [key, json.dumps(value) if isinstance(value, list) else str(value)]
    return out


def arm_overrides(arm: Arm, data_root: str | os.PathLike, out_dir: str | os.PathLike, epochs: int | None,
                  extra: Sequence[str] = (), seed: int = 0) -> list[str]:
    """Everything a run of an arm changes from configs/synthetic.yaml: data, COMMON, memory (gap2 unless the
    arm says otherwise), seed, output folder, and the budget (``epochs``: None keeps COMMON's)."""
    out = data_overrides(data_root) + [*COMMON, "MEMVIT.SAMPLER", "gap2", *arm.overrides, "RNG_SEED", str(seed),
                                       "OUTPUT_DIR", str(out_dir)]
    if epochs is not None:
        out += ["SOLVER.MAX_EPOCH", str(epochs)]
    return out + list(extra)


def signal_events(data_root: str | os.PathLike, split: str = "val") -> int:
    """How many signals (each answered 2-5 s later) the videos of ``split`` hold: the long-range classes'
    sample size."""
    meta = json.loads((Path(data_root) / "meta.json").read_text())
    return sum(len(v.get("signals", [])) for v in meta["videos"] if v.get("split") == split)


def class_groups(data_root: str | os.PathLike) -> dict[int, str]:
    """Class id -> LOCAL or LONG_RANGE, from the data set's own description of its classes."""
    from ..data.synthetic import SIGNALS

    meta = json.loads((Path(data_root) / "meta.json").read_text())
    return {c["id"]: LONG_RANGE if c["behaviour"] in SIGNALS else LOCAL for c in meta["classes"]}


def group_means(per_class: dict[str, float], groups: dict[int, str]) -> dict[str, float]:
    """Mean AP per group over the classes with ground truth (NaN AP = none)."""
    out = {}
    for group in GROUPS:
        values = [v for k, v in per_class.items() if groups.get(int(k)) == group and not math.isnan(v)]
        out[group] = float(np.mean(values)) if values else math.nan
    return out


def answer_scores(data_root: str | os.PathLike, predictions_csv: str | os.PathLike) -> dict[str, Any]:
    """How sure an arm is of the right "answer" class, by whole seconds after the light's centre (mean
    score over the test boxes there), and its mean answer score on unlit boxes that answer nothing.

    mAP says whether memory helps; this says *which* answers it reaches: an arm whose memory sees the
    light only up to some distance is sure up to that offset and unsure beyond it."""
    from ..data.ava_files import read_boxes_csv
    from ..data.synthetic import SHOWN_PREFIX, SIGNALS, Signal

    meta = json.loads((Path(data_root) / "meta.json").read_text())
    ids = {c["behaviour"]: c["id"] for c in meta["classes"]}
    signals = {v["name"]: [Signal(s["centre"], s["colour"]) for s in v.get("signals", [])] for v in meta["videos"]}
    answer_ids = [ids[c] for c in SIGNALS]
    by_offset: dict[int, list[float]] = {}
    negatives: list[float] = []
    for row in read_boxes_csv(predictions_csv):
        if row.action not in answer_ids or row.extra is None:
            continue
        t = row.sec - meta["start_sec"]
        labels = {b: s for s in signals.get(row.video, []) for b in s.labels_at(t)}
        answered = [(b, s) for b, s in labels.items() if b in SIGNALS]
        if answered:
            colour, signal = answered[0]
            if row.action == ids[colour]:
                by_offset.setdefault(t - signal.centre, []).append(row.extra)
        elif not any(b.startswith(SHOWN_PREFIX) for b in labels):
            negatives.append(row.extra)
    return {"by_offset": {str(k): float(np.mean(v)) for k, v in sorted(by_offset.items())},
            "negatives": float(np.mean(negatives)) if negatives else math.nan}


# --------------------------------------------------------------------------------------------- running arms
def run_arm(arm: Arm, overrides: Sequence[str], out_dir: Path, *, config: str, threads: int | None,
            data: dict[str, Any]) -> float:
    """Train and evaluate one arm in a subprocess (its progress bar on this terminal); returns seconds.

    ``data`` identifies the data set (its generator parameters). An arm whose folder says it finished with
    the same overrides and data is not rerun; an interrupted one resumes from its last checkpoint
    (``TRAIN.AUTO_RESUME``); a folder started with other overrides or data is refused, never mixed."""
    marker = out_dir / ARM_FILE
    run = {"arm": arm.name, "overrides": list(overrides), "data": data}
    if marker.is_file():
        done = json.loads(marker.read_text())
        if {k: done.get(k) for k in run} != run:
            raise RuntimeError(f"{out_dir} holds a run of arm {done.get('arm')} with other overrides or data; "
                               "remove it or choose another --out")
        if "seconds" in done and (out_dir / "eval_test" / "summary.json").is_file():
            print(f"   finished earlier ({done['seconds']:.0f} s): kept", flush=True)
            return float(done["seconds"])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(marker, run, indent=1)
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "memvit.train", "--cfg", config, *overrides], env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"arm {arm.name}: python -m memvit.train exited with {proc.returncode}; its log is in "
                           f"{out_dir} (rerun this command to resume it)")
    write_json(marker, {**run, "seconds": seconds}, indent=1)
    return seconds


def cost_figures(arm: Arm, config: str, overrides: Sequence[str], *, batch: int) -> dict[str, Any]:
    """GFLOPs per clip (memory empty and filled) and peak memory (inference batch 1, a training step at the
    training batch), each phase in its own process so its peak is its own."""
    import torch

    from ..benchmark import measure
    from ..cli import load_model
    from ..config import input_shape, load_config
    from ..flops import gflops_by_memory

    cfg = load_config(config, list(overrides))
    model = load_model(cfg, seed=0, warn_random=False)
    c, t, h, w = input_shape(cfg, train=False)
    clip = torch.rand(1, c, t, h, w)
    boxes = torch.tensor([[0.0, 0.2 * w, 0.2 * h, 0.5 * w, 0.9 * h]])
    by_memory = gflops_by_memory(model, clip, boxes)
    inference = measure(config, list(overrides), "inference", batch=1, steps=3)
    train = measure(config, list(overrides), "train", batch=batch, steps=2)
    return {"gflops_empty": by_memory[0][0], "gflops_filled": by_memory[max(by_memory)][0],
            "params": sum(p.numel() for p in model.parameters()),
            "inference_peak_mib": inference["peak_mib"], "inference_growth_mib": inference["growth_mib"],
            "inference_s_per_clip": float(np.median(inference["seconds"])),
            "train_peak_mib": train["peak_mib"], "train_growth_mib": train["growth_mib"],
            "train_s_per_step": float(np.median(train["seconds"]))}


@dataclass
class ArmResult:
    """One run's figures, or (from :func:`combine`) an arm's mean over its seeds with ``runs`` kept."""

    arm: Arm
    map: float
    groups: dict[str, float]
    chance: dict[str, float]
    per_class: dict[str, float]
    seconds: float
    curve: dict[str, list[float]] = field(default_factory=dict)  # iteration, loss
    costs: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)  # answer_scores()
    seed: int | None = None  # None: a mean over runs
    runs: list[ArmResult] = field(default_factory=list)

    def spread(self, group: str) -> tuple[float, float]:
        """(lowest, highest) over the runs of a group's mAP (``"all"``: the mAP); a single run: its value twice."""
        values = [r.map if group == "all" else r.groups[group] for r in (self.runs or [self])]
        return min(values), max(values)

    def to_json(self) -> dict[str, Any]:
        out = {"arm": self.arm.name, "label": self.arm.label, "memory_clips": self.arm.memory_clips,
               "overrides": list(self.arm.overrides), "map": self.map, "groups": self.groups, "chance": self.chance,
               "per_class": self.per_class, "train_and_eval_seconds": self.seconds, "answer_scores": self.answers,
               **self.costs}
        if self.runs:
            out["seeds"] = [{"seed": r.seed, "map": r.map, "groups": r.groups, "per_class": r.per_class,
                             "train_and_eval_seconds": r.seconds} for r in self.runs]
        else:
            out["seed"] = self.seed
        return out


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def combine(runs: Sequence[ArmResult]) -> ArmResult:
    """An arm's runs (one per seed) as one result: every figure the mean over the seeds, the runs kept for
    their spread; the loss curve averaged where the runs logged the same iterations (the same data and
    batch), else the first run's; costs (seed-independent) from the first run that has them."""
    first = runs[0]

    def mean_of(attr: str) -> dict[str, float]:
        """Per key of the runs' ``attr`` dicts, the mean over the runs that have it."""
        keys = dict.fromkeys(k for r in runs for k in getattr(r, attr))
        return {k: _mean([getattr(r, attr).get(k, math.nan) for r in runs]) for k in keys}

    curve = first.curve
    if all(r.curve.get("iteration") == first.curve.get("iteration") for r in runs) and first.curve.get("loss"):
        curve = {"iteration": first.curve["iteration"],
                 "loss": [float(v) for v in np.mean([r.curve["loss"] for r in runs], axis=0)]}
    offsets = dict.fromkeys(k for r in runs for k in r.answers.get("by_offset", {}))
    answers = {"by_offset": {k: _mean([r.answers["by_offset"].get(k, math.nan) for r in runs
                                       if "by_offset" in r.answers]) for k in offsets},
               "negatives": _mean([r.answers.get("negatives", math.nan) for r in runs])} if offsets else {}
    costs = next((r.costs for r in runs if r.costs), {})
    return ArmResult(first.arm, _mean([r.map for r in runs]), mean_of("groups"), mean_of("chance"),
                     mean_of("per_class"), _mean([r.seconds for r in runs]), curve, costs, answers, None, list(runs))


def collect(arm: Arm, out_dir: Path, groups: dict[int, str], seconds: float, seed: int | None = None) -> ArmResult:
    """An arm's test-split figures from its ``eval_test/summary.json`` and its ``log.jsonl``."""
    from ..training.run_log import read_run_log

    summary = json.loads((out_dir / "eval_test" / "summary.json").read_text())
    per_class = {k: float(v) for k, v in summary["per_class"].items()}
    chance_classes = {k: float(v) for k, v in (summary.get("chance_per_class") or {}).items()}
    chance = group_means(chance_classes, groups) if chance_classes else {g: math.nan for g in GROUPS}
    chance["all"] = summary.get("chance_map") if summary.get("chance_map") is not None else math.nan
    train, _ = read_run_log(str(out_dir / "log.jsonl"))
    steps = sorted(train)
    curve = {"iteration": [float(s) for s in steps], "loss": [float(train[s]["loss"]) for s in steps]}
    return ArmResult(arm, float(summary["map"]), group_means(per_class, groups), chance, per_class, seconds, curve,
                     seed=seed)


# ------------------------------------------------------------------------------------------------ reporting
def _pct(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}"


def _cell(r: ArmResult, group: str) -> str:
    """A group's mAP, with its range over the seeds when the result is a mean of several runs."""
    value = r.map if group == "all" else r.groups[group]
    if len(r.runs) < 2:
        return _pct(value)
    lo, hi = r.spread(group)
    return f"{_pct(value)} ({_pct(lo)}-{_pct(hi)})"


def results_table(results: Sequence[ArmResult]) -> str:
    """The Markdown table of results.md."""
    lines = ["| arm | memory clips | mAP local | mAP long-range | mAP all | GFLOPs/clip (filled) | "
             "peak RSS inference / train step (MiB) | train+eval time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        costs = r.costs
        gflops = f"{costs['gflops_filled']:.3f}" if costs else "-"
        peaks = f"{costs['inference_peak_mib']:.0f} / {costs['train_peak_mib']:.0f}" if costs else "-"
        lines.append(f"| {r.arm.label} | {r.arm.memory_clips} | {_cell(r, LOCAL)} | "
                     f"{_cell(r, LONG_RANGE)} | {_cell(r, 'all')} | {gflops} | {peaks} | {r.seconds / 60:.1f} min |")
    chance = results[0].chance
    lines.append(f"| *chance (same boxes, random scores)* | | {_pct(chance[LOCAL])} | {_pct(chance[LONG_RANGE])} | "
                 f"{_pct(chance['all'])} | | | |")
    return "\n".join(lines)


def answers_table(results: Sequence[ArmResult]) -> str:
    """The Markdown table of mean right-answer scores by seconds after the light (empty without them)."""
    offsets = sorted({int(k) for r in results for k in r.answers.get("by_offset", {})})
    if not offsets:
        return ""
    lines = ["| arm | " + " | ".join(f"{k} s after" for k in offsets) + " | unlit, no answer |",
             "|---|" + "---|" * (len(offsets) + 1)]
    for r in results:
        scores = r.answers.get("by_offset", {})
        cells = [f"{scores[str(k)]:.2f}" if str(k) in scores else "-" for k in offsets]
        lines.append(f"| {r.arm.label} | " + " | ".join(cells) + f" | {r.answers.get('negatives', math.nan):.2f} |")
    return "\n".join(lines)


def plot_groups(path: Path, results: Sequence[ArmResult]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4), dpi=110)
    ax = figure.subplots()
    x = np.arange(len(results))
    colours = {LOCAL: "#4c72b0", LONG_RANGE: "#c44e52"}
    for i, group in enumerate(GROUPS):
        values = np.array([100 * r.groups[group] for r in results])
        ranges = np.array([[100 * v for v in r.spread(group)] for r in results]).T
        errors = np.abs(ranges - values) if any(len(r.runs) > 1 for r in results) else None
        bars = ax.bar(x + (i - 0.5) * 0.38, values, 0.38, label=f"{group} classes", color=colours[group],
                      yerr=errors, capsize=3, error_kw={"lw": 1})
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.axhline(100 * results[0].chance[group], color=colours[group], ls="--", lw=1,
                   label=f"chance, {group}")
    ax.set_xticks(x, [r.arm.label.replace(" (", "\n(").replace(", ", ",\n", 1) for r in results], fontsize=7)
    ax.set_ylabel("frame-mAP@0.5 (%)")
    seeds = max(len(r.runs) for r in results)
    ax.set_title("Long-range synthetic AVA: frame-mAP per class group" +
                 (f" (mean of {seeds} seeds, bars: range)" if seeds > 1 else ""))
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        FigureCanvasAgg(figure).print_png(tmp)


def plot_memory_length(path: Path, results: Sequence[ArmResult]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = sorted((r for r in results if r.arm.length_series), key=lambda r: r.arm.memory_clips)
    figure = Figure(figsize=(5.5, 4), dpi=110)
    ax = figure.subplots()
    lengths = [r.arm.memory_clips for r in series]
    for group, colour in ((LOCAL, "#4c72b0"), (LONG_RANGE, "#c44e52")):
        ax.plot(lengths, [100 * r.groups[group] for r in series], marker="o", color=colour, label=f"{group} classes")
        if any(len(r.runs) > 1 for r in series):
            lo, hi = zip(*[r.spread(group) for r in series])
            ax.fill_between(lengths, [100 * v for v in lo], [100 * v for v in hi], color=colour, alpha=0.15, lw=0)
        ax.axhline(100 * series[0].chance[group], color=colour, ls="--", lw=1, label=f"chance, {group}")
    ax.set_xticks(lengths)
    ax.set_xlabel("memory clips attended (gap2 sampler; 0 = no memory)")
    ax.set_ylabel("frame-mAP@0.5 (%)")
    ax.set_title("mAP against memory length")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        FigureCanvasAgg(figure).print_png(tmp)


def plot_curves(path: Path, results: Sequence[ArmResult]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=110)
    ax = figure.subplots()
    for r in results:
        steps, losses = np.array(r.curve["iteration"]), np.array(r.curve["loss"])
        if len(losses) == 0:
            continue
        window = max(1, len(losses) // 15)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, label=r.arm.label, lw=1.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss (BCE, smoothed)")
    ax.set_title("Training curves (same data and budget" +
                 (", mean over seeds)" if any(len(r.runs) > 1 for r in results) else ")"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        FigureCanvasAgg(figure).print_png(tmp)


def _seeds_text(seeds: Sequence[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))


def write_results(results_dir: Path, results: Sequence[ArmResult], context: dict[str, Any]) -> dict[str, Path]:
    """results.md (table and reading), results.json and the three plots."""
    results_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": results_dir / "results.md", "json": results_dir / "results.json",
             "groups": results_dir / "map_per_group.png", "length": results_dir / "map_vs_memory_length.png",
             "curves": results_dir / "training_curves.png"}
    plot_groups(paths["groups"], results)
    if any(r.arm.length_series for r in results):
        plot_memory_length(paths["length"], results)
    else:  # only option arms: no length series to draw
        del paths["length"]
    plot_curves(paths["curves"], results)
    write_json(paths["json"], {"context": context, "arms": [r.to_json() for r in results]}, indent=1, default=float)
    by_name = {r.arm.name: r for r in results}
    reading = []
    if "no_memory" in by_name and REFERENCE_ARM in by_name:
        off, on = by_name["no_memory"], by_name[REFERENCE_ARM]
        reading.append(f"* Long-range classes: {_cell(on, LONG_RANGE)} with memory (MeMViT-16's gap2, 2 clips) "
                       f"against {_cell(off, LONG_RANGE)} without (chance {_pct(off.chance[LONG_RANGE])}).")
        reading.append(f"* Local classes: {_cell(on, LOCAL)} with memory, {_cell(off, LOCAL)} without "
                       f"(chance {_pct(off.chance[LOCAL])}).")
        if on.costs and off.costs:
            extra = 100 * (on.costs["gflops_filled"] - off.costs["gflops_filled"]) / off.costs["gflops_filled"]
            reading.append(f"* Cost of memory: {on.costs['gflops_filled']:.3f} against "
                           f"{off.costs['gflops_filled']:.3f} GFLOPs per clip (+{extra:.1f}%), peak RSS of a "
                           f"training step {on.costs['train_peak_mib']:.0f} against "
                           f"{off.costs['train_peak_mib']:.0f} MiB.")
    series = sorted((r for r in results if r.arm.length_series), key=lambda r: r.arm.memory_clips)
    if len(series) > 1:
        reading.append("* Against memory length (" + " / ".join(str(r.arm.memory_clips) for r in series) +
                       " clips): long-range " + " / ".join(_pct(r.groups[LONG_RANGE]) for r in series) +
                       ", local " + " / ".join(_pct(r.groups[LOCAL]) for r in series) + ".")
    for r in results:
        if not r.arm.length_series and REFERENCE_ARM in by_name:
            base = by_name[REFERENCE_ARM]
            reading.append(f"* Option, {r.arm.label}: long-range {_cell(r, LONG_RANGE)}, local "
                           f"{_cell(r, LOCAL)} (the reference's {base.arm.label}: "
                           f"{_cell(base, LONG_RANGE)}, {_cell(base, LOCAL)}).")
    answers = answers_table(results)
    text = "\n".join([
        "# Memory ablation: long-range synthetic AVA",
        "",
        f"`{context['command']}` on {context['machine']}, {context['date']} (torch {context['torch']}).",
        "",
        f"Data: `{context['data_command']}` ({context['data']}). Model and recipe: `{CONFIG}` "
        f"({context['epochs']} epochs, {_seeds_text(context['seeds'])}); every arm changes only the memory. mAP: AVA "
        "frame-mAP@0.5 (PySlowFast's scorer) on the test split, per class group, evaluated once after training"
        f"{'; the mean over the seeds, their range in brackets' if len(context['seeds']) > 1 else ''}; chance: the "
        "same boxes scored at random. GFLOPs: fvcore count of one clip at the test size with one box, memory "
        "filled; peak RSS: the process running it (inference batch 1, a training step at the training batch), "
        "CPU.",
        "",
        results_table(results),
        "",
        *reading,
        *(["", "Mean score of the right answer class on the test boxes, by seconds after the light's centre, and "
           "of the answer classes on unlit boxes that answer nothing (the score a guess gets):", "",
           answers] if answers else []),
        "",
        "![mAP per group](map_per_group.png)",
        *(["![mAP against memory length](map_vs_memory_length.png)"] if "length" in paths else []),
        "![training curves](training_curves.png)",
        "",
    ])
    write_text(paths["markdown"], text)
    return paths


# ---------------------------------------------------------------------------------------------- entry point
@user_errors_exit
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m memvit.experiments.memory_ablation",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synthetic_long_range", help="long-range synthetic set (made if "
                        "missing; default: %(default)s)")
    parser.add_argument("--overwrite-data", action="store_true", help="regenerate the set at --data (needed when "
                        "it was made with other parameters, e.g. by an older version of the generator)")
    parser.add_argument("--train-videos", type=int, default=16)
    parser.add_argument("--val-videos", type=int, default=52, help="test videos (default: %(default)s: two "
                        "signals each, so that the long-range classes are scored on 104 events)")
    parser.add_argument("--data-seed", type=int, default=0, help="the generator's seed: choose settings on a set "
                        "of another seed, report on this one (default: %(default)s)")
    parser.add_argument("--seconds", type=int, default=24)
    parser.add_argument("--out", default="output/memory_ablation", help="runs, one folder per arm and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="RNG_SEED of each run of an arm "
                        "(default: %(default)s); results are the mean and range over them")
    parser.add_argument("--results", default=None, help="table and plots (default: OUT/results; the committed "
                        "ones: docs/memory_ablation)")
    parser.add_argument("--arms", nargs="+", default=[a.name for a in ARMS], choices=[a.name for a in ARMS])
    parser.add_argument("--epochs", type=int, default=None, help="SOLVER.MAX_EPOCH of every arm (default 16)")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads of the runs")
    parser.add_argument("--no-costs", action="store_true", help="skip the GFLOPs and peak-memory figures")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides for every arm: KEY VALUE ...")
    args = parser.parse_args(argv)

    import platform

    import torch

    from ..config import load_config
    from ..data.synthetic import LONG_RANGE_CLASSES, generate

    started = time.perf_counter()
    # A folder the generator did not write is refused, never cleared (a UserError: message, exit 2).
    info = generate(args.data, videos_train=args.train_videos, videos_val=args.val_videos, seconds=args.seconds,
                    seed=args.data_seed, classes=LONG_RANGE_CLASSES, overwrite=args.overwrite_data,
                    cli_names=("--data", "--overwrite-data"))
    events = signal_events(args.data)
    print(f"== data: {info.root} ({'generated' if info.generated else 'already there'}): "
          f"{info.keyframes['train']} train / {info.keyframes['val']} test keyframes, {events} signal events in "
          "the test split", flush=True)
    groups = class_groups(args.data)
    data_params = json.loads((Path(args.data) / "meta.json").read_text())["params"]
    out_root = Path(args.out)
    results = []
    arms = [ARMS_BY_NAME[n] for n in args.arms]
    seeds = list(dict.fromkeys(args.seeds))
    for i, arm in enumerate(arms):
        runs = []
        for seed in seeds:
            out_dir = out_root / arm.name / f"seed{seed}"
            overrides = arm_overrides(arm, args.data, out_dir, args.epochs, args.opts, seed=seed)
            print(f"== arm {i + 1}/{len(arms)}: {arm.name}: {arm.label}, seed {seed}", flush=True)
            seconds = run_arm(arm, overrides, out_dir, config=args.config, threads=args.threads, data=data_params)
            run = collect(arm, out_dir, groups, seconds, seed=seed)
            run.answers = answer_scores(args.data, out_dir / "eval_test" / "predictions.csv")
            if not args.no_costs and not runs:  # the same model for every seed
                cfg = load_config(args.config, overrides)
                run.costs = cost_figures(arm, args.config, overrides, batch=cfg.TRAIN.BATCH_SIZE)
            print(f"   mAP local {_pct(run.groups[LOCAL])}, long-range {_pct(run.groups[LONG_RANGE])} (chance "
                  f"{_pct(run.chance[LOCAL])} / {_pct(run.chance[LONG_RANGE])}); {seconds / 60:.1f} min", flush=True)
            runs.append(run)
        results.append(combine(runs))

    cfg = load_config(args.config, arm_overrides(arms[0], args.data, out_root, args.epochs, args.opts))
    data_cmd = (f"python -m memvit.data.synthetic --long-range --out {args.data} --train-videos {args.train_videos} "
                f"--val-videos {args.val_videos} --seconds {args.seconds} --seed {args.data_seed}")
    context = {
        "command": "python -m memvit.experiments.memory_ablation " + " ".join(argv if argv is not None else
                                                                              sys.argv[1:]),
        "data_command": data_cmd,
        "data": f"{args.train_videos} train + {args.val_videos} test videos of {args.seconds} s, "
                f"{info.keyframes['train']} / {info.keyframes['val']} keyframes, {len(info.classes)} classes, "
                f"{events} signal events in the test split",
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "epochs": cfg.SOLVER.MAX_EPOCH,
        "seeds": seeds, "total_minutes": (time.perf_counter() - started) / 60,
    }
    results_dir = Path(args.results) if args.results else out_root / "results"
    paths = write_results(results_dir, results, context)
    print(results_table(results))
    plots = ", ".join(paths[k].name for k in ("groups", "length", "curves") if k in paths)
    print(f"results: {paths['markdown']} (table), {paths['json']}, plots {plots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
