# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Memory carries information from earlier clips (and only within a video); the memory ablation's arms,
figures and report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from memvit.config import build_model, load_config
from memvit.experiments import memory_ablation as ablation
from memvit.models import MEMVIT_16_16X4, create_memvit

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(MEMVIT_16_16X4, spatial_size=32, temporal_size=8, depth=2, patch_embed_dim=16, num_heads=1,
            embed_dim_mul=((1, 2.0),), atten_head_mul=((1, 2.0),), pool_kv_stride_adaptive=(1, 2, 2),
            memory_exclude_layers=(), droppath_rate_block=0.0, spatial_scale_factor=8, head="kinetics",
            num_classes=5, head_dropout_rate=0.0)

pytestmark = pytest.mark.usefixtures("one_thread")


def run_video(model, clips, ids):
    if model.memory is not None:
        model.memory.reset()
    with torch.no_grad():
        return [model(c, video_ids=[i]) if model.memory is not None else model(c) for c, i in zip(clips, ids)]


@pytest.mark.parametrize("sampler,earlier", [("gap2", 1), ("all", 2)])
def test_memory_carries_information_from_an_earlier_clip(gen, sampler, earlier):
    """Changing only an earlier clip changes the current clip's output with memory on; not with memory
    off, and not when the earlier clip belongs to another video (either isolation)."""
    seed = int(torch.randint(2**31, (1,), generator=gen))
    clips = [torch.randn(1, 3, 8, 32, 32, generator=gen) for _ in range(4)]
    changed = list(clips)
    changed[earlier] = torch.randn(1, 3, 8, 32, 32, generator=gen)  # clip 3 attends clip `earlier`
    same_video = ["v"] * 4
    boundary = ["old"] * (earlier + 1) + ["new"] * (3 - earlier)  # clip `earlier` is in the old video

    torch.manual_seed(seed)
    off = create_memvit(**{**TINY, "memory": False}).eval()
    a, b = run_video(off, clips, same_video), run_video(off, changed, same_video)
    torch.testing.assert_close(a[3], b[3], rtol=0, atol=0)
    for isolation in ("zero", "mask"):
        torch.manual_seed(seed)
        on = create_memvit(**{**TINY, "memory_sampler": sampler, "memory_isolation": isolation}).eval()
        a, b = run_video(on, clips, same_video), run_video(on, changed, same_video)
        for step in range(earlier):
            torch.testing.assert_close(a[step], b[step], rtol=0, atol=0)  # before the change: identical
        # The change reached clip 3 through memory. A random tiny model's probabilities move little (3.5e-5 at
        # the least over 800 draws), but any move is the memory's: across a video boundary not one bit moves.
        assert (a[3] - b[3]).abs().max() > 1e-6
        a, b = run_video(on, clips, boundary), run_video(on, changed, boundary)
        torch.testing.assert_close(a[3], b[3], rtol=0, atol=0)


def test_arms_build_the_memory_they_name(tmp_path):
    """Every arm's overrides load over configs/synthetic.yaml and build the model with its memory."""
    from memvit.data import synthetic

    data = tmp_path / "data"
    data.mkdir()
    (data / "meta.json").write_text(json.dumps({"classes": [{"id": i + 1, "behaviour": c.behaviour}
                                                            for i, c in enumerate(synthetic.LONG_RANGE_CLASSES)]}))
    assert ablation.class_groups(data) == {**{i: "local" for i in range(1, 11)}, 11: "long-range", 12: "long-range"}
    for arm in ablation.ARMS:
        overrides = ablation.arm_overrides(arm, data, tmp_path / arm.name, epochs=3, seed=2)
        cfg = load_config(str(ROOT / ablation.CONFIG), overrides)
        assert cfg.MODEL.NUM_CLASSES == 12 and cfg.SOLVER.MAX_EPOCH == 3 and cfg.RNG_SEED == 2
        assert cfg.TRAIN.EVAL_PERIOD == 0 and cfg.TEST.ENABLE  # the test split: once, after training
        assert cfg.AVA.FRAME_DIR == str((data / "frames").resolve())
        model = build_model(cfg)
        if arm.memory_clips == 0:
            assert model.memory is None
            continue
        assert model.memory.attn_max_len - 1 == arm.memory_clips
        assert model.memory.sampler == cfg.MEMVIT.SAMPLER == ("all" if arm.name.endswith("_all") else "gap2")
    assert ablation.ARMS_BY_NAME[ablation.REFERENCE_ARM].memory_clips == 2


def fake_arm(out: Path, arm, local_ap: float, long_ap: float, iterations: int = 30) -> None:
    """An arm's output folder as memvit.train leaves it (summary.json, log.jsonl), with chosen APs."""
    (out / "eval_test").mkdir(parents=True)
    per_class = {str(i): local_ap + 0.01 * (i - 4.5) for i in range(1, 9)}
    per_class.update({"9": long_ap - 0.05, "10": long_ap + 0.05, "11": math.nan})
    chance = {str(i): 0.2 for i in range(1, 9)} | {"9": 0.1, "10": 0.3, "11": math.nan}
    summary = {"map": float(np.nanmean(list(per_class.values()))), "chance_map": 0.21, "per_class": per_class,
               "chance_per_class": chance}
    (out / "eval_test" / "summary.json").write_text(json.dumps(summary))
    with open(out / "log.jsonl", "w") as f:
        for it in range(1, iterations + 1):
            f.write(json.dumps({"type": "train", "global_iteration": it, "loss": 1.0 / it, "epoch": 1}) + "\n")
        f.write(json.dumps({"type": "eval", "epoch": 1, "map": summary["map"]}) + "\n")


def test_report_from_arm_outputs(tmp_path):
    """Group means by hand, the table, the JSON and the three plots, from the files the runs leave."""
    groups = {**{i: "local" for i in range(1, 9)}, 9: "long-range", 10: "long-range", 11: "long-range"}
    values = {"no_memory": (0.6, 0.2), "memory_1": (0.61, 0.5), "memory_2": (0.62, 0.7), "memory_4": (0.6, 0.8),
              "memory_2_mask": (0.63, 0.75)}
    results = []
    for name, (local_ap, long_ap) in values.items():
        arm = ablation.ARMS_BY_NAME[name]
        fake_arm(tmp_path / name, arm, local_ap, long_ap)
        result = ablation.collect(arm, tmp_path / name, groups, seconds=300.0)
        assert result.groups["local"] == pytest.approx(local_ap)  # symmetric offsets around the mean
        assert result.groups["long-range"] == pytest.approx(long_ap)  # NaN class 11 ignored
        assert result.chance == pytest.approx({"local": 0.2, "long-range": 0.2, "all": 0.21})
        assert result.curve["loss"][0] == 1.0 and len(result.curve["iteration"]) == 30
        result.costs = {"gflops_filled": 0.5 + 0.01 * arm.memory_clips, "inference_peak_mib": 600.0,
                        "train_peak_mib": 900.0 + arm.memory_clips}
        results.append(result)
    context = {"command": "python -m memvit.experiments.memory_ablation", "machine": "test", "date": "2026-11-29",
               "torch": torch.__version__, "data_command": "python -m memvit.data.synthetic --long-range",
               "data": "fake", "epochs": 10, "seeds": [0]}
    paths = ablation.write_results(tmp_path / "results", results, context)
    text = paths["markdown"].read_text()
    assert "| memory 2 clips (gap2: t-2, t-4; MeMViT-16) | 2 | 62.0 | 70.0 |" in text
    assert "70.0 with memory (MeMViT-16's gap2, 2 clips) against 20.0 without (chance 20.0)" in text
    assert "(+4.0%)" in text  # 0.52 against 0.50 GFLOPs
    assert ("Against memory length (0 / 1 / 2 / 4 clips): long-range 20.0 / 50.0 / 70.0 / 80.0, local "
            "60.0 / 61.0 / 62.0 / 60.0.") in text
    assert ("Option, memory 2 clips, isolation mask: long-range 75.0, local 63.0 (the reference's memory 2 clips "
            "(gap2: t-2, t-4; MeMViT-16): 70.0, 62.0).") in text
    saved = json.loads(paths["json"].read_text())
    assert [a["arm"] for a in saved["arms"]] == list(values)
    assert saved["arms"][2]["groups"]["long-range"] == pytest.approx(0.7)
    for key in ("groups", "length", "curves"):
        from PIL import Image

        image = np.asarray(Image.open(paths[key]).convert("L"), dtype=float)
        assert image.shape[0] > 300 and image.std() > 10  # a drawn figure, not a blank canvas


def test_group_means_by_hand():
    groups = {1: "local", 2: "local", 3: "long-range"}
    assert ablation.group_means({"1": 0.5, "2": 0.25, "3": math.nan}, groups) == {"local": 0.375,
                                                                                  "long-range": pytest.approx(math.nan,
                                                                                                              nan_ok=True)}


def test_finished_arms_are_kept_and_other_runs_refused(tmp_path, monkeypatch):
    """An arm that finished on the same data and overrides is not rerun; a folder from another data set or
    other overrides is refused rather than resumed (its checkpoints would train on the wrong data)."""
    arm = ablation.ARMS_BY_NAME["memory_2"]
    out = tmp_path / arm.name
    fake_arm(out, arm, 0.5, 0.5)
    data = {"generator": "memvit.data.synthetic", "version": 1, "seed": 0}
    overrides = ["SOLVER.MAX_EPOCH", "2"]
    (out / ablation.ARM_FILE).write_text(json.dumps({"arm": arm.name, "overrides": overrides, "data": data,
                                                     "seconds": 12.0}))

    def no_training(*args, **kwargs):
        raise AssertionError("the arm was rerun")

    monkeypatch.setattr(ablation.subprocess, "run", no_training)
    assert ablation.run_arm(arm, overrides, out, config=ablation.CONFIG, threads=1, data=data) == 12.0
    with pytest.raises(RuntimeError, match="other overrides or data"):
        ablation.run_arm(arm, overrides, out, config=ablation.CONFIG, threads=1, data={**data, "seed": 1})
    with pytest.raises(RuntimeError, match="other overrides or data"):
        ablation.run_arm(arm, ["SOLVER.MAX_EPOCH", "3"], out, config=ablation.CONFIG, threads=1, data=data)


def test_report_of_option_arms_alone(tmp_path):
    """Options without a length series (``--arms memory_2_all``): the table and two plots, no length plot."""
    arm = ablation.ARMS_BY_NAME["memory_2_all"]
    fake_arm(tmp_path / arm.name, arm, 0.6, 0.7)
    result = ablation.collect(arm, tmp_path / arm.name, {i: "local" for i in range(1, 12)}, seconds=60.0)
    context = {"command": "c", "machine": "m", "date": "d", "torch": "t", "data_command": "d", "data": "d",
               "epochs": 1, "seeds": [0]}
    paths = ablation.write_results(tmp_path / "results", [result], context)
    assert "length" not in paths and not (tmp_path / "results" / "map_vs_memory_length.png").exists()
    assert paths["groups"].is_file() and paths["curves"].is_file()
    assert "map_vs_memory_length" not in paths["markdown"].read_text()


def test_answer_scores_by_hand(tmp_path):
    """Right-answer scores grouped by seconds after the light, lit boxes left out, unlit non-answers as the
    guess level; values chosen by hand from the generator's timing (lit +-1.25 s, answers 2-5 s after)."""
    from memvit.data import synthetic

    classes = [{"id": i + 1, "behaviour": c.behaviour} for i, c in enumerate(synthetic.LONG_RANGE_CLASSES)]
    ids = {c["behaviour"]: c["id"] for c in classes}
    orange, lime = ids["signal_orange"], ids["signal_lime"]
    meta = {"start_sec": 900, "classes": classes,
            "videos": [{"name": "v", "signals": [{"centre": 4, "colour": "signal_orange"}]}]}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    rows = [(905, orange, 0.99),  # lit (centre + 1): a "see" keyframe, left out
            (906, orange, 0.9), (906, lime, 0.3),  # 2 s after: the right class counts, the other not
            (909, orange, 0.5), (909, 1, 0.7),  # 5 s after; class 1 is not an answer class
            (912, orange, 0.1), (912, lime, 0.3)]  # 8 s after: unlit, answers nothing
    lines = [f"v,{sec},0.1,0.1,0.5,0.9,{c},{score}" for sec, c, score in rows]
    (tmp_path / "predictions.csv").write_text("\n".join(lines) + "\n")
    scores = ablation.answer_scores(tmp_path, tmp_path / "predictions.csv")
    assert scores["by_offset"] == pytest.approx({"2": 0.9, "5": 0.5})
    assert scores["negatives"] == pytest.approx(0.2)
    result = ablation.ArmResult(ablation.ARMS_BY_NAME["memory_2"], 0.5, {}, {}, {}, 1.0, answers=scores)
    assert "| memory 2 clips (gap2: t-2, t-4; MeMViT-16) | 0.90 | 0.50 | 0.20 |" in ablation.answers_table([result])


def test_seeds_are_averaged_and_their_range_shown(tmp_path):
    """Three seeds of two arms: means and ranges by hand in the table and the reading, every seed in the JSON,
    the loss curves averaged; the costs measured once per arm."""
    groups = {**{i: "local" for i in range(1, 9)}, 9: "long-range", 10: "long-range", 11: "long-range"}
    values = {"no_memory": [(0.5, 0.3), (0.6, 0.2), (0.7, 0.4)], "memory_2": [(0.55, 0.9), (0.65, 1.0), (0.6, 0.95)]}
    results = []
    for name, per_seed in values.items():
        arm = ablation.ARMS_BY_NAME[name]
        runs = []
        for seed, (local_ap, long_ap) in enumerate(per_seed):
            fake_arm(tmp_path / name / f"seed{seed}", arm, local_ap, long_ap, iterations=10)
            run = ablation.collect(arm, tmp_path / name / f"seed{seed}", groups, seconds=60.0 * (seed + 1), seed=seed)
            run.curve["loss"] = [float(seed)] * 10
            run.answers = {"by_offset": {"2": 0.1 * seed}, "negatives": 0.2}
            if seed == 0:
                run.costs = {"gflops_filled": 0.5 + 0.01 * arm.memory_clips, "inference_peak_mib": 600.0,
                             "train_peak_mib": 900.0}
            runs.append(run)
        results.append(ablation.combine(runs))
    off, on = results
    assert off.groups == pytest.approx({"local": 0.6, "long-range": 0.3}) and off.spread("local") == (0.5, 0.7)
    assert on.spread("long-range") == pytest.approx((0.9, 1.0)) and on.seconds == 120.0
    assert on.curve["loss"] == [1.0] * 10 and on.answers["by_offset"] == pytest.approx({"2": 0.1})
    assert on.costs["gflops_filled"] == 0.52
    context = {"command": "c", "machine": "m", "date": "d", "torch": "t", "data_command": "d", "data": "d",
               "epochs": 16, "seeds": [0, 1, 2]}
    paths = ablation.write_results(tmp_path / "results", results, context)
    text = paths["markdown"].read_text()
    assert "(16 epochs, seeds 0, 1, 2)" in text and "their range in brackets" in text
    assert "| no memory | 0 | 60.0 (50.0-70.0) | 30.0 (20.0-40.0) |" in text
    assert "| memory 2 clips (gap2: t-2, t-4; MeMViT-16) | 2 | 60.0 (55.0-65.0) | 95.0 (90.0-100.0) |" in text
    assert "95.0 (90.0-100.0) with memory (MeMViT-16's gap2, 2 clips) against 30.0 (20.0-40.0) without" in text
    saved = json.loads(paths["json"].read_text())
    assert [s["seed"] for s in saved["arms"][1]["seeds"]] == [0, 1, 2]
    assert saved["arms"][1]["seeds"][2]["groups"]["long-range"] == pytest.approx(0.95)


def test_signal_events_are_counted_in_the_test_split(tmp_path):
    meta = {"videos": [{"name": "a", "split": "val", "signals": [{}, {}]}, {"name": "b", "split": "train",
                                                                          "signals": [{}]},
                       {"name": "c", "split": "val", "signals": [{}]}, {"name": "d", "split": "val"}]}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert ablation.signal_events(tmp_path) == 3 and ablation.signal_events(tmp_path, "train") == 1
