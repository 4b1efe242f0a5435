# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The build: the CPU kernel's row primitives really are vectorized for each target ISA."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess

import pytest

from memvit_ext import ops

PRIMITIVES = ["row_max", "exp_sub_sum", "exp_sub", "scale_inplace", "add_scalar_vec", "add_strided",
              "accumulate_sum", "softmax_grad", "dot"]


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
