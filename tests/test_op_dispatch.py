# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Which implementation serves ``implementation="auto"``, per device type (no GPU needed).

The CUDA kernels have never run on a GPU, so CUDA tensors go to the augmented-QK form on
PyTorch's scaled_dot_product_attention (``implementation="sdpa"``, not the reference, whose
float32 logits would exhaust a GPU's memory) until ``benchmarks/gpu_check.sh`` has passed on one
and its results file is committed
(``memvit_ext.ops.CUDA_KERNELS_VALIDATED``); ``MEMVIT_CUDA_KERNELS=1`` or
``memvit_ext.use_cuda_kernels(True)`` opts in. The choice is a pure function
(:func:`memvit_ext.ops.choose_auto_path`), tested here directly; the wiring into the public op
is tested on CPU tensors by gating the CPU the way CUDA is gated (the same code path), and
watching which dispatcher op runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

import memvit_ext
from memvit_ext import memory_pooling_attention, ops, use_cuda_kernels
from memvit_ext.testing import AttentionProblem, make_inputs, ops_seen

ROOT = Path(__file__).resolve().parents[1]
ENV = ops.CUDA_KERNELS_ENV
CUDA_CAPS = {"cuda": {"dtypes": [torch.float16, torch.bfloat16, torch.float32], "head_dims": [64, 96, 128],
                      "attn_mask": True}}
SMALL = AttentionProblem("small", heads=2, q_thw=(2, 3, 3), kv_thw=(2, 2, 2), mem_thw=(1, 2, 2), n_mem=1,
                         head_dim=16, mem_t_stride=2, mem_t_rows=3)


# ------------------------------------------------------------------------- the pure choice
def test_cuda_default_is_sdpa_until_validated():
    path = ops.choose_auto_path("cuda", CUDA_CAPS)
    assert path.implementation == "sdpa"
    assert "not yet passed benchmarks/gpu_check.sh" in path.reason
    assert "augmented-QK form on torch.nn.functional.scaled_dot_product_attention serves CUDA" in path.reason
    assert f"{ENV}=1" in path.reason and "use_cuda_kernels(True)" in path.reason  # how to opt in
    assert path.notice is not None and path.reason in path.notice and "docs/cuda.md" in path.notice


@pytest.mark.parametrize("value", ["1", "true", "ON", " yes "])
def test_environment_opts_in_with_a_notice(value):
    path = ops.choose_auto_path("cuda", CUDA_CAPS, env_value=value)
    assert path.implementation == "kernel"
    assert f"{ENV}=1" in path.reason and "not yet passed" in path.reason
    assert path.notice is not None and "fused CUDA kernels" in path.notice  # first users are told


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_environment_opts_out_silently(value):
    path = ops.choose_auto_path("cuda", CUDA_CAPS, env_value=value, validated="benchmarks/results/x.md")
    assert path.implementation == "sdpa" and f"{ENV}=0" in path.reason and path.notice is None


def test_empty_environment_value_is_the_default():
    assert ops.choose_auto_path("cuda", CUDA_CAPS, env_value="") == ops.choose_auto_path("cuda", CUDA_CAPS)


def test_python_call_overrides_the_environment():
    on = ops.choose_auto_path("cuda", CUDA_CAPS, opt_in=True, env_value="0")
    off = ops.choose_auto_path("cuda", CUDA_CAPS, opt_in=False, env_value="1", validated="benchmarks/results/x.md")
    assert on.implementation == "kernel" and "use_cuda_kernels(True)" in on.reason
    assert off.implementation == "sdpa" and "use_cuda_kernels(False)" in off.reason


def test_unreadable_environment_value_is_named_not_obeyed():
    path = ops.choose_auto_path("cuda", CUDA_CAPS, env_value="maybe")
    assert path.implementation == "sdpa"
    assert f"{ENV}='maybe' was ignored (it takes 1 or 0)" in path.reason and path.reason in path.notice
    validated = ops.choose_auto_path("cuda", CUDA_CAPS, env_value="maybe", validated="benchmarks/results/x.md")
    assert validated.implementation == "kernel" and "'maybe' was ignored" in validated.notice


def test_a_validation_record_flips_the_default():
    path = ops.choose_auto_path("cuda", CUDA_CAPS, validated="benchmarks/results/gpu-check-h100-2026-12-01.md")
    assert path.implementation == "kernel" and path.notice is None
    assert "benchmarks/results/gpu-check-h100-2026-12-01.md" in path.reason


def test_only_cuda_is_gated():
    caps = {**CUDA_CAPS, "cpu": {"dtypes": [torch.float32], "attn_mask": True}}
    assert ops.choose_auto_path("cpu", caps) == ops.AutoPath("kernel", "compiled CPU kernel", None)
    assert ops.choose_auto_path("cuda", {}, env_value="1").implementation == "sdpa"  # nothing built
    assert ops.choose_auto_path("mps", caps).implementation == "reference"
    assert ops.choose_auto_path("cpu", {}).implementation == "reference"  # the CPU's fallback stays the reference


def test_the_validation_record_names_a_passed_gpu_check():
    """Flipping the default needs the committed summary of a passing benchmarks/gpu_check.sh run."""
    record = ops.CUDA_KERNELS_VALIDATED
    if record is None:
        return  # not validated yet: the default stays the reference (tests above)
    path = ROOT / record
    assert path.parent == ROOT / "benchmarks" / "results", f"{record} is not under benchmarks/results/"
    assert path.is_file(), f"ops.CUDA_KERNELS_VALIDATED names {record}, which is not in the repository"
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    assert lines[-1] == "status: passed", f"{record} does not end with 'status: passed'"


# ------------------------------------------------------------------ the module state and API
@pytest.fixture
def dispatch_state():
    """Fake CUDA kernels in the capability table, no environment setting; everything restored."""
    saved = (ops._CAPABILITIES, ops._OPT_IN_CALL, ops._GATED_DEVICES, ops._SDPA_DEVICES, os.environ.get(ENV),
             set(ops._WARNED))
    os.environ.pop(ENV, None)
    ops._CAPABILITIES = {**ops._CAPABILITIES, **CUDA_CAPS}
    ops._OPT_IN_CALL = None
    ops._refresh_auto_paths()
    yield
    ops._CAPABILITIES, ops._OPT_IN_CALL, ops._GATED_DEVICES, ops._SDPA_DEVICES = saved[:4]
    if saved[4] is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = saved[4]
    ops._WARNED.clear()
    ops._WARNED.update(saved[5])
    ops._refresh_auto_paths()


def test_capabilities_and_build_info_report_the_cuda_path(dispatch_state):
    caps = memvit_ext.kernel_capabilities()["cuda"]
    assert caps["auto"] == "sdpa" and "not yet passed benchmarks/gpu_check.sh" in caps["reason"]
    assert "scaled_dot_product_attention serves CUDA tensors" in caps["reason"]
    assert caps["head_dims"] == [64, 96, 128]  # what the kernels serve is still reported
    info = memvit_ext.build_info()
    assert info["cuda_path"] == {"auto": "sdpa", "reason": caps["reason"], "validated_by": None}
    assert info["implementation"]["cuda"].startswith("PyTorch SDPA: the fused CUDA kernels")
    assert "implementation='kernel' reaches it" in info["implementation"]["cuda"]

    assert use_cuda_kernels(True).implementation == "kernel"
    assert memvit_ext.kernel_capabilities()["cuda"]["auto"] == "kernel"
    info = memvit_ext.build_info()
    assert info["cuda_path"]["auto"] == "kernel" and "use_cuda_kernels(True)" in info["cuda_path"]["reason"]
    assert info["implementation"]["cuda"].startswith("compiled CUDA kernel")

    assert use_cuda_kernels(None).implementation == "sdpa"  # back to the default


def test_use_cuda_kernels_none_reads_the_environment_again(dispatch_state):
    os.environ[ENV] = "1"
    assert ops.auto_path("cuda").implementation == "sdpa"  # read at import, not on every call
    assert use_cuda_kernels(None).implementation == "kernel"
    assert use_cuda_kernels(False).implementation == "sdpa"  # the call wins over the environment


def test_use_cuda_kernels_refuses_other_values(dispatch_state):
    with pytest.raises(TypeError, match="use_cuda_kernels takes True, False or None; got 'yes'"):
        use_cuda_kernels("yes")


def ran(implementation: str, inputs: dict) -> tuple[str, list[str], torch.Tensor]:
    """Which implementation served the call, the warnings it gave, and its output."""
    q = inputs["q"]
    with warnings.catch_warnings(record=True) as caught, ops_seen() as seen:
        warnings.simplefilter("always")
        out = memory_pooling_attention(q, inputs["q_thw"], inputs["segments"], rel_pos=inputs["rel_pos"],
                                       implementation=implementation)
    if "memvit_ext.pooling_attention" in seen.names:
        served = "kernel"
    elif any("scaled_dot_product" in name or "_safe_softmax" in name for name in seen.names):
        served = "sdpa"
    else:
        served = "reference"
    return served, [str(w.message) for w in caught if "memvit_ext" in str(w.message)], out


@pytest.fixture
def cpu_gated_like_cuda(dispatch_state):
    """CPU tensors dispatched under CUDA's rule (gated kernels, the SDPA form otherwise), so the public
    op's wiring runs without a GPU. (The CPU entry is faked too, so the op's kernel path exists even
    without a compiled CPU kernel.)"""
    ops._CAPABILITIES = {**ops._CAPABILITIES, "cpu": {"dtypes": [torch.float32], "attn_mask": True}}
    ops._GATED_DEVICES = ("cuda", "cpu")
    ops._SDPA_DEVICES = ("cuda", "cpu")
    ops._refresh_auto_paths()


def test_op_default_serves_sdpa_with_one_notice(cpu_gated_like_cuda, gen):
    inputs = make_inputs(SMALL, batch=2, generator=gen)
    served, messages, out = ran("auto", inputs)
    assert served == "sdpa"
    assert len(messages) == 1 and "so the augmented-QK form on torch.nn.functional.scaled_dot_product_attention " \
        "serves CPU tensors" in messages[0]
    served, messages, _ = ran("auto", inputs)
    assert served == "sdpa" and messages == []  # once
    assert torch.equal(out, ran("sdpa", inputs)[2])
    served, _, ref = ran("reference", inputs)
    assert served == "reference"
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_op_opt_in_serves_the_kernel(cpu_gated_like_cuda, gen):
    inputs = make_inputs(SMALL, batch=2, generator=gen)
    use_cuda_kernels(True)
    served, messages, _ = ran("auto", inputs)
    assert served == "kernel" and len(messages) == 1 and "use the fused CUDA kernels" in messages[0]
    use_cuda_kernels(False)
    assert ran("auto", inputs)[:2] == ("sdpa", [])


def test_op_environment_opt_in_serves_the_kernel(cpu_gated_like_cuda, gen):
    os.environ[ENV] = "1"
    use_cuda_kernels(None)
    assert ran("auto", make_inputs(SMALL, generator=gen))[0] == "kernel"


def test_explicit_kernel_still_reaches_the_kernel(cpu_gated_like_cuda, gen):
    inputs = make_inputs(SMALL, batch=2, generator=gen)
    assert ops.auto_path("cpu").implementation == "sdpa"
    served, messages, _ = ran("kernel", inputs)
    assert served == "kernel" and messages == []  # an explicit choice is not second-guessed
    assert ran("reference", inputs)[0] == "reference"
    assert ran("sdpa", inputs)[0] == "sdpa"


def test_a_kernel_refusal_falls_back_to_sdpa_where_sdpa_is_the_fallback(cpu_gated_like_cuda, gen):
    """Opted-in kernels that cannot serve an input (here: the head dim) hand it to the SDPA form, not
    to the reference, on the devices whose fallback SDPA is."""
    ops._CAPABILITIES = {**ops._CAPABILITIES, "cpu": {"dtypes": [torch.float32], "attn_mask": True, "head_dims": [64]}}
    use_cuda_kernels(True)
    served, messages, _ = ran("auto", make_inputs(SMALL, generator=gen))
    assert served == "sdpa"
    assert any("does not serve head_dim 16" in m and "scaled_dot_product_attention" in m for m in messages)


def test_notice_does_not_break_a_full_graph(cpu_gated_like_cuda, gen):
    """A warning inside torch.compile's trace would break fullgraph=True: the notice waits for eager code."""
    inputs = make_inputs(SMALL, generator=gen)

    def attention(q):
        return memory_pooling_attention(q, inputs["q_thw"], inputs["segments"], rel_pos=inputs["rel_pos"])

    out = torch.compile(attention, fullgraph=True, backend="eager")(inputs["q"])
    torch.testing.assert_close(out, attention(inputs["q"]))
