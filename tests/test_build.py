# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The build: the CPU kernel's row primitives really are vectorized for each target ISA, and
what the extension reports it serves is the kernels' own table."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import memvit_ext
from memvit_ext import ops

KERNEL_TABLE = Path(__file__).resolve().parents[1] / "csrc" / "cuda" / "kernel_table.h"

PRIMITIVES = ["row_max", "exp_sub_sum", "exp_sub", "scale_inplace", "add_scalar_vec", "add_strided",
              "accumulate_sum", "softmax_grad", "shifted_dot"]


@pytest.fixture(scope="module")
def disassembly() -> dict[str, str]:
    if ops._C is None or platform.machine() != "x86_64" or shutil.which("objdump") is None:
        pytest.skip("needs the compiled extension on x86-64 and objdump")
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", ops._C.__file__], capture_output=True,
                          text=True, check=True).stdout
    functions = {}
    for block in text.split("\n\n"):
        match = re.match(r"[0-9a-f]+ <(_ZN6memvit3cpu\w+?Pf\w*|_ZN6memvit3cpu\w+?PKf\w*)\.(arch_x86_64_v[34])>:", block)
        if match:
            functions[f"{match.group(1)}.{match.group(2)}"] = block
    if not functions:
        pytest.skip("no target_clones in this build (not GCC on x86-64 Linux)")
    return functions


@pytest.mark.parametrize("name", PRIMITIVES)
def test_float_primitives_use_vector_registers(name, disassembly):
    mangled = f"{len(name)}{name}E"
    for arch, register in (("arch_x86_64_v4", "zmm"), ("arch_x86_64_v3", "ymm")):
        bodies = [body for symbol, body in disassembly.items() if mangled in symbol and symbol.endswith(arch)]
        assert bodies, f"no {arch} clone of {name}"
        assert any(re.search(rf"v\w+ps\s.*%{register}", body) for body in bodies), f"{name} ({arch}) not vectorized"


def test_capabilities_are_the_kernel_table():
    """capabilities() reads the CUDA kernel table and the CPU kernel's dispatch, nothing else."""
    caps = memvit_ext.kernel_capabilities()
    if "cpu" not in caps:
        pytest.skip("no compiled CPU kernel")
    assert caps["cpu"]["dtypes"] == [torch.bfloat16, torch.float32, torch.float64]
    if "cuda" not in caps:
        pytest.skip("built without CUDA kernels")
    table = KERNEL_TABLE.read_text()
    dtypes = re.findall(r'X\(k\w+, \w+, "(\w+)", \w+, (?:true|false)\)', table)
    head_dims = re.search(r"#define MEMVIT_TC_HEAD_DIMS\(X\) (.*)", table).group(1)
    assert [str(t).replace("torch.", "") for t in caps["cuda"]["dtypes"]] == dtypes
    assert caps["cuda"]["head_dims"] == [int(d) for d in re.findall(r"X\((\d+)\)", head_dims)]
