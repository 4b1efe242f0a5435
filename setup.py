# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""Builds ``memvit_ext._C``: the C++ kernels always, the CUDA kernels when possible.

CUDA kernels are built when torch is a CUDA build and a CUDA toolkit is found. We look for
the toolkit ourselves (``CUDA_HOME``/``CUDA_PATH``, then ``/usr/local/cuda``, then the real
location behind ``nvcc``) because torch's own guess goes wrong when ``nvcc`` on ``PATH`` is a
wrapper script (it then guesses the wrapper's prefix, e.g. ``/usr/local``).

Environment:
  MEMVIT_NO_CUDA=1        build the C++ (CPU) kernels only.
  TORCH_CUDA_ARCH_LIST    CUDA architectures (default "8.0;9.0+PTX").
  MAX_JOBS                parallel compile jobs (ninja).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CUDA_ARCHS = "8.0;9.0+PTX"


def log(message: str) -> None:
    print(f"memvit_ext build: {message}", file=sys.stderr, flush=True)


def _is_toolkit(path: str | None) -> bool:
    return bool(path) and os.path.isfile(os.path.join(path, "bin", "nvcc")) and os.path.isfile(
        os.path.join(path, "include", "cuda_runtime.h")
    )


def find_cuda_toolkit() -> tuple[str | None, str]:
    """Return (toolkit root or None, how it was found / why not)."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        path = os.environ.get(var)
        if path:
            if _is_toolkit(path):
                return os.path.realpath(path), f"${var}"
            log(f"${var}={path} is not a CUDA toolkit (no bin/nvcc + include/cuda_runtime.h); ignoring it")
    if _is_toolkit("/usr/local/cuda"):
        return os.path.realpath("/usr/local/cuda"), "/usr/local/cuda"
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None, "no CUDA_HOME, no /usr/local/cuda and no nvcc on PATH"
    candidate = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    if _is_toolkit(candidate):
        return candidate, f"nvcc at {nvcc}"
    # nvcc may be a wrapper script; ask the real compiler where it lives.
    try:
        dry = subprocess.run(
            [nvcc, "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull],
            capture_output=True, text=True, timeout=60,
        )
        match = re.search(r"^#\$ TOP=(.+)$", dry.stdout + dry.stderr, re.MULTILINE)
        if match and _is_toolkit(os.path.realpath(match.group(1).strip())):
            return os.path.realpath(match.group(1).strip()), f"nvcc --dryrun via {nvcc}"
    except (OSError, subprocess.SubprocessError):
        pass
    return None, f"nvcc at {nvcc} does not lead to a toolkit"


def get_extensions():
    import torch
    from torch.utils import cpp_extension

    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "cpu", "*.cpp")))
    # csrc/cuda/*.cpp: the CUDA kernels' host glue, compiled by the C++ compiler (no nvcc passes).
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu"))
                          + glob.glob(os.path.join("csrc", "cuda", "*.cpp")))
    # No trapping math (as PyTorch builds): lets GCC if-convert the selects in the AVX2 loops.
    cxx_flags = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-fdiagnostics-color=always", "-Wall",
                 "-Wno-unknown-pragmas"]
    nvcc_flags = ["-O3", "--use_fast_math", "-lineinfo", "--expt-relaxed-constexpr"]
    define_macros = [("MEMVIT_TORCH_VERSION", f'"{torch.__version__}"')]
    link_flags = []
    if torch.backends.openmp.is_available() and sys.platform.startswith("linux"):
        # at::parallel_for is a header template: without -fopenmp it silently runs serially.
        cxx_flags.append("-fopenmp")
        link_flags.append("-fopenmp")

    toolkit, how = find_cuda_toolkit()
    reason = None
    if os.environ.get("MEMVIT_NO_CUDA", "0") == "1":
        reason = "MEMVIT_NO_CUDA=1"
    elif torch.version.cuda is None:
        reason = f"torch {torch.__version__} is not a CUDA build"
    elif toolkit is None:
        reason = f"no CUDA toolkit found ({how})"
    elif not cuda_sources:
        reason = "no CUDA sources"

    if reason is None:
        # torch.utils.cpp_extension reads its module-level CUDA_HOME when it compiles.
        os.environ["CUDA_HOME"] = toolkit
        cpp_extension.CUDA_HOME = toolkit
        archs = os.environ.get("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
        os.environ["TORCH_CUDA_ARCH_LIST"] = archs
        log(f"building C++ and CUDA kernels (toolkit {toolkit}, found by {how}; archs {archs}; "
            f"torch {torch.__version__}, CUDA {torch.version.cuda})")
        define_macros += [("MEMVIT_WITH_CUDA", None), ("MEMVIT_CUDA_ARCHS", f'"{archs}"'),
                          ("MEMVIT_TORCH_CUDA_VERSION", f'"{torch.version.cuda}"')]
        ext_cls = cpp_extension.CUDAExtension
        all_sources = sources + cuda_sources
    else:
        log(f"building C++ (CPU) kernels only: {reason}; CUDA tensors will use the PyTorch fallback")
        ext_cls = cpp_extension.CppExtension
        all_sources = sources

    return [
        ext_cls(
            "memvit_ext._C",
            all_sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
            extra_link_args=link_flags,
        )
    ]


def persistent_build_ext():
    """torch's BuildExtension, compiling into ``build/editable-temp`` under ``pip install -e .``.

    setuptools' editable install hands build_ext a fresh temporary build folder on every run, so
    ninja found no objects and recompiled every kernel (minutes) even when nothing changed. In a
    fixed folder ninja rebuilds only the objects whose source, included headers or compile command
    changed. Other builds (``setup.py build_ext --build-temp``, wheels) keep the folder they are given.
    """
    from torch.utils.cpp_extension import BuildExtension

    class PersistentBuildExtension(BuildExtension.with_options(no_python_abi_suffix=False)):
        def run(self) -> None:
            if getattr(self, "editable_mode", False):
                self.build_temp = os.path.join(ROOT, "build", "editable-temp")
                log(f"compiling in {self.build_temp} (kept between runs: only changed objects are rebuilt)")
            super().run()

    return PersistentBuildExtension


def main() -> None:
    setup(
        name="memvit",
        version="0.1.0",
        description="MeMViT (memory-augmented multiscale vision transformers) with a fused "
        "memory-augmented pooling attention op",
        long_description=open(os.path.join(ROOT, "README.md"), encoding="utf-8").read(),
        long_description_content_type="text/markdown",
        license="Apache-2.0",
        packages=find_packages(include=["memvit", "memvit.*", "memvit_ext", "memvit_ext.*"]),
        python_requires=">=3.10",
        install_requires=["torch>=2.5", "numpy"],
        extras_require={
            "model": ["torchvision", "pytorchvideo>=0.1.5", "fvcore", "av", "tqdm", "pyyaml",
                      "opencv-python-headless", "matplotlib", "tensorboard"],
            "export": ["onnx", "onnxscript", "onnxruntime"],
            "test": ["pytest", "pytest-benchmark", "onnx", "onnxscript", "onnxruntime"],
        },
        ext_modules=get_extensions(),
        cmdclass={"build_ext": persistent_build_ext()},
        zip_safe=False,
    )


if __name__ == "__main__":
    main()
