#!/usr/bin/env bash
# Creates .venv (if missing), installs the pinned dependencies and builds memvit_ext.
# Idempotent: a second run installs nothing when the pinned versions are installed, and skips the
# build when csrc/, setup.py, torch and the build settings are unchanged since the last build (stamp
# .venv/memvit_ext.stamp) and the extension loads; when they changed, ninja recompiles only the
# changed objects (build/editable-temp is kept). Environment: MEMVIT_NO_CUDA=1 for a CPU-only build,
# TORCH_CUDA_ARCH_LIST to pick CUDA archs, PYTHON to pick the interpreter, MEMVIT_REBUILD=1 to
# build even when the stamp says the build is current.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate

# Exit 0 iff every requirement line (name==version or name) of the given files is installed at a
# matching version: the answer `pip install -r` would reach, without its index look-ups.
requirements_met() {
  python - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement
for path in sys.argv[1:]:
    for line in open(path, encoding="utf-8"):
        line = line.split("#")[0].split(" --hash")[0].strip()
        if line:
            req = Requirement(line)
            try:
                installed = version(req.name)
            except PackageNotFoundError:
                sys.exit(1)
            if not req.specifier.contains(installed, prereleases=True):
                sys.exit(1)
PY
}

if requirements_met requirements/ci.txt requirements/oracles.txt; then
  echo "== pinned dependencies already installed (requirements/ci.txt, requirements/oracles.txt)"
else
  echo "== installing pinned dependencies (requirements/ci.txt; test oracles: requirements/oracles.txt)"
  python -m pip install -q --upgrade pip
  python -m pip install -q -r requirements/ci.txt
  python -m pip install -q --no-deps -r requirements/oracles.txt
fi

# Everything the build depends on, as one hash: sources, build scripts, torch, Python, toolkit, settings.
build_inputs() {
  python - <<'PY'
import hashlib, os, shutil, sys
from importlib.metadata import version
from pathlib import Path
h = hashlib.sha256()
for p in sorted(Path("csrc").rglob("*")) + [Path("setup.py"), Path("pyproject.toml")]:
    if p.is_file():
        h.update(f"{p}\0".encode() + p.read_bytes() + b"\0")
for var in ("MEMVIT_NO_CUDA", "TORCH_CUDA_ARCH_LIST", "CUDA_HOME", "CUDA_PATH", "CC", "CXX", "CFLAGS",
            "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "NVCC_APPEND_FLAGS", "NVCC_PREPEND_FLAGS"):
    h.update(f"{var}={os.environ.get(var, '')}\0".encode())
h.update(f"torch {version('torch')}; python {sys.version}; {os.path.realpath('/usr/local/cuda')}; "
         f"nvcc {shutil.which('nvcc')}".encode())
print(h.hexdigest())
PY
}
# The loaded extension's file and its hash, if memvit_ext._C loads from this checkout.
loaded_extension() {
  python - <<'PY' 2>/dev/null
import hashlib, os
from importlib.metadata import version
import memvit_ext
from memvit_ext import _C
version("memvit")  # installed (editable), not only importable from here
assert memvit_ext.build_info()["extension"] == "loaded"
assert os.path.dirname(os.path.abspath(_C.__file__)) == os.path.abspath("memvit_ext"), _C.__file__
print(os.path.basename(_C.__file__), hashlib.sha256(open(_C.__file__, "rb").read()).hexdigest())
PY
}

stamp=.venv/memvit_ext.stamp
start=$(date +%s)
inputs=$(build_inputs)
if [ "${MEMVIT_REBUILD:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs $(loaded_extension || echo none)" ]; then
  echo "== memvit_ext is up to date: csrc/, setup.py, torch and build settings unchanged since $stamp" \
       "(MEMVIT_REBUILD=1 forces a build)"
else
  echo "== building memvit_ext (C++ kernels; CUDA kernels when a toolkit and a CUDA torch are present)"
  rm -f "$stamp"
  MAX_JOBS=${MAX_JOBS:-$(nproc)} python -m pip install -q --no-build-isolation -e .
  if ! loaded=$(loaded_extension); then
    echo "error: memvit_ext was built but memvit_ext._C does not load from $(pwd)/memvit_ext" >&2
    echo "  run: python -m memvit_ext --info-only (it says why)" >&2
    exit 1
  fi
  echo "$inputs $loaded" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
  echo "== build took $(( $(date +%s) - start )) s"
fi
