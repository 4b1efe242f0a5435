# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The house rules that keep the layout readable (docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_op_never_imports_the_model():
    """memvit_ext is usable on its own (a drop-in layer for other models): importing it, and its
    command's module, loads neither memvit nor PyTorchVideo."""
    code = ("import sys, memvit_ext, memvit_ext.__main__, memvit_ext.testing; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('memvit', 'pytorchvideo')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_module_of_the_package_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "memvit").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"split these by concern: {long}"
