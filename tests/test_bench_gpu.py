# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The GPU benchmark's baselines and script, checked on the CPU.

Every baseline of benchmarks/baselines.py must compute the op's function: each is compared with
the op's PyTorch reference in float32 on fresh random inputs (memory segments, cls tokens,
grids of different resolutions), forward and, where the baseline has one on the CPU, backward.
FlexAttention runs in its eager form here (compiling it on the CPU takes about a minute: that
test is marked slow; flex has no CPU backward). The script itself runs its ``--dry-run`` (one
tiny shape, every method, both modes) and writes its results files; its results file of a
gpu_check.sh run says "status: passed" only when every step passed on a GPU.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import memvit_ext
from benchmarks import baselines, bench_gpu
from memvit_ext import memory_pooling_attention
from memvit_ext.testing import AttentionProblem, distinct, leaves, make_inputs

TINY = AttentionProblem("tiny", heads=2, q_thw=(2, 4, 4), kv_thw=(2, 2, 2), mem_thw=(1, 2, 2), n_mem=2, head_dim=16,
                        mem_t_rows=7)
FLEX = pytest.mark.skipif(not baselines.flex_available(), reason="this torch has no FlexAttention")
EAGER_BASELINES = ["eager", "sdpa_mask", "augqk_sdpa"]


def problem_inputs(gen, cls=True, requires_grad=False) -> dict:
    return make_inputs(TINY, batch=2, generator=gen, cls=cls, requires_grad=requires_grad)


def reference(inputs: dict, attn_mask=None) -> torch.Tensor:
    return memory_pooling_attention(inputs["q"], inputs["q_thw"], inputs["segments"], q_has_cls=inputs["q_has_cls"],
                                    rel_pos=inputs["rel_pos"], attn_mask=attn_mask, implementation="reference")


def baseline(name: str, inputs: dict, **kwargs) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return getattr(baselines, name)(inputs["q"], inputs["q_thw"], inputs["segments"], inputs["rel_pos"],
                                        q_has_cls=inputs["q_has_cls"], **kwargs)


def close(out: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------- baselines
@pytest.mark.parametrize("cls", [True, False])
@pytest.mark.parametrize("name", EAGER_BASELINES)
def test_baseline_computes_the_op(name, cls, gen):
    inputs = problem_inputs(gen, cls=cls, requires_grad=True)
    out, ref = baseline(name, inputs), reference(inputs)
    close(out, ref)
    grad = torch.randn(out.shape, generator=gen)
    for g, r in zip(torch.autograd.grad(out, leaves(inputs), grad), torch.autograd.grad(ref, leaves(inputs), grad)):
        close(g, r)


@FLEX
@pytest.mark.parametrize("name", ["flex_keys", "flex_mask"])
def test_flex_baseline_computes_the_op_eager_form(name, gen):
    inputs = problem_inputs(gen)
    close(baseline(name, inputs, compiled=False), reference(inputs))
    no_cls = problem_inputs(gen, cls=False)
    close(baseline(name, no_cls, compiled=False), reference(no_cls))


@FLEX
def test_flex_mask_is_the_op_with_a_key_mask(gen):
    """Memory as a mask: keys of another video's memory clip masked per batch row."""
    inputs = problem_inputs(gen)
    key_mask = torch.rand(2, TINY.keys, generator=gen) > 0.3
    key_mask[0, : 2 * 5] = False  # row 0: both memory clips (1 cls + 4 tokens each) belong to another video
    key_mask[:, -1] = True  # every row keeps a key
    out = baseline("flex_mask", inputs, key_mask=key_mask, compiled=False)
    close(out, reference(inputs, attn_mask=key_mask[:, None, None, :]))
    with pytest.raises(AssertionError):  # the mask matters
        close(out, reference(inputs))


@FLEX
def test_flex_mask_names_a_wrong_key_mask(gen):
    inputs = problem_inputs(gen)
    with pytest.raises(ValueError, match=r"key_mask must be a bool tensor of shape \(batch=2, keys=19\)"):
        baseline("flex_mask", inputs, key_mask=torch.ones(2, 18, dtype=torch.bool), compiled=False)


@pytest.mark.slow
@FLEX
@pytest.mark.parametrize("name", ["flex_keys", "flex_mask"])
def test_flex_baseline_compiled(name, gen):
    """The form the GPU benchmark times (torch.compile; about a minute on a 2-core CPU)."""
    inputs = problem_inputs(gen)
    with torch.no_grad():
        close(baseline(name, inputs, compiled=True), reference(inputs))


def test_old_flex_name_is_flex_keys():
    assert baselines.flex is baselines.flex_keys  # benchmarks/cases.py and RESULTS.md use "flex"


# ------------------------------------------------------------------------------ the script
def test_layer_tables_are_the_models_layers():
    """The op's shape tables (so python -m memvit_ext and the GPU machine need neither the model nor
    PyTorchVideo) equal what the built models give."""
    from memvit_ext.testing import MEMVIT16_LAYERS, MEMVIT24_LAYERS

    shapes = pytest.importorskip("memvit.models.shapes", reason="the models need PyTorchVideo")
    for preset, table, memory_table in (
            ("memvit_16_16x4", MEMVIT16_LAYERS, bench_gpu.MEMVIT16_MEMORY_LAYERS),
            ("memvit_24_32x3", MEMVIT24_LAYERS, bench_gpu.MEMVIT24_MEMORY_LAYERS)):
        layers = distinct(shapes.preset_attention_problems(preset))
        assert list(table) == layers, preset
        assert list(memory_table) == [p for p in layers if p.n_mem], preset
        assert all(p.n_mem == 2 for p in memory_table)  # two memory clips


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = bench_gpu.main(["--dry-run", "--out", str(out)])
    [json_file] = out.glob("*.json")
    [md_file] = out.glob("*.md")
    return code, json.loads(json_file.read_text()), md_file.read_text()


def test_dry_run_measures_every_method_in_both_modes(dry_run):
    code, result, _ = dry_run
    rows = {(r["method"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {(m, mode) for m in bench_gpu.METHODS for mode in ("fwd", "fwdbwd")}
    for (method, mode), row in rows.items():
        if method.startswith("flex") and "error" in row:
            assert mode == "fwdbwd" and "backward on CPU" in row["error"]  # flex has no CPU backward
            continue
        if method.startswith("kernel") and "cpu" not in memvit_ext.kernel_capabilities():
            continue  # no compiled CPU kernel: the kernel rows report it (and the run fails, below)
        assert "error" not in row, (method, mode, row.get("error"))
        assert row["ms"] > 0 and row["tflops"] > 0 and row["first_call_s"] > 0
        if mode == "fwd":
            assert row["err"] <= 1e-4, (method, row["err"])
        else:
            assert row["deterministic"] is True or not method.startswith("kernel"), method
    assert code == (0 if "cpu" in memvit_ext.kernel_capabilities() else 1)


def test_dry_run_writes_its_tables(dry_run):
    code, result, md = dry_run
    assert result["args"]["dry_run"] and result["args"]["dtype"] == "float32" and not result["args"]["compile_flex"]
    assert "| dry-run | tiny | 2 | 33 | 19 | fwd | flex_mask |" in md
    assert "x flex_mask (vs kernel_mask)" in md
    if code == 0:
        assert md.rstrip().endswith("kernel rows: all passed")


def test_kernel_failures_are_named():
    result = {"args": {"dtype": "bfloat16"}, "rows": [
        dict(model="M", layer="b0", method="kernel", mode="fwd", err=0.05),
        dict(model="M", layer="b0", method="kernel_core", mode="fwdbwd", deterministic=False),
        dict(model="M", layer="b0", method="kernel_mask", mode="fwd", error="RuntimeError: x"),
        dict(model="M", layer="b0", method="flex_keys", mode="fwd", error="OOM"),  # a baseline: reported only
        dict(model="M", layer="b0", method="kernel", mode="fwdbwd", deterministic=True),
    ]}
    assert bench_gpu.kernel_failures(result) == [
        "M b0 kernel fwd: relative error 0.05 against the float32 reference (bound 0.02)",
        "M b0 kernel_core fwdbwd: two backward runs differ",
        "M b0 kernel_mask fwd: RuntimeError: x"]


GPU = {"device": "NVIDIA H100 80GB HBM3", "sms": 132, "driver": "580", "cuda": "13.0", "torch": "2.11.0",
       "date": "2026-12-01"}
ALL_PASSED = {step: "0" for step in bench_gpu.CHECK_STEPS}


@pytest.mark.parametrize("exits, info, status", [
    (ALL_PASSED, GPU, "passed"),
    ({**ALL_PASSED, "racecheck": "3"}, GPU, "failed"),
    ({**ALL_PASSED, "bench": "skipped"}, GPU, "incomplete"),
    ({k: v for k, v in ALL_PASSED.items() if k != "tests"}, GPU, "incomplete"),
    (ALL_PASSED, {"device": "cpu", "torch": "2.11.0", "date": "2026-12-01"}, "incomplete"),  # not on a GPU
])
def test_check_summary_passes_only_a_complete_gpu_run(exits, info, status):
    text = bench_gpu.check_summary(exits, {"tests": "45 passed | 0 failed"}, info, "abc1234")
    assert text.splitlines()[-1] == f"status: {status}"
    assert "commit abc1234" in text and "| 45 passed / 0 failed |" in text


def test_check_summary_file(tmp_path):
    code = bench_gpu.main(["--check-summary", "build=0", "tests=1", "--check-note", "tests=2 failed",
                           "--out", str(tmp_path), "--commit", "abc"])
    [path] = tmp_path.glob("gpu-check-*.md")
    assert code == 0 and path.read_text().splitlines()[-1] == "status: failed"
    with pytest.raises(SystemExit, match="--check-summary takes STEP=VALUE with STEP one of build, tests"):
        bench_gpu.main(["--check-summary", "compile=0", "--out", str(tmp_path)])


def test_fmt_keeps_columns_without_a_value():
    assert bench_gpu.fmt(None, "8.2f") == "       -" and bench_gpu.fmt(1.5, "8.2f") == "    1.50"
