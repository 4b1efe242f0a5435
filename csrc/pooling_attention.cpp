// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The Python face of the compiled extension: what was built and what the kernels serve.
// The op schemas are defined in memvit_ext/ops.py (so the op exists even without this
// extension); cpu/ and cuda/ register their kernels for them with TORCH_LIBRARY_IMPL.

#include <torch/extension.h>

#include "pooling_attention.h"

namespace memvit {

static pybind11::dict build_info() {
  pybind11::dict info;
  info["cpu_kernels"] = true;
#ifdef MEMVIT_WITH_CUDA
  info["cuda_kernels"] = true;
  info["cuda_archs"] = MEMVIT_CUDA_ARCHS;
  info["cuda_version"] = MEMVIT_TORCH_CUDA_VERSION;
#else
  info["cuda_kernels"] = false;
#endif
  info["torch_version"] = MEMVIT_TORCH_VERSION;
  return info;
}

static pybind11::dict capabilities() {
  pybind11::dict caps;
  pybind11::dict cpu;
  cpu["dtypes"] = std::vector<std::string>{"float32", "float64", "bfloat16"};
  cpu["attn_mask"] = true;
  caps["cpu"] = cpu;
#ifdef MEMVIT_WITH_CUDA
  pybind11::dict cuda;
  cuda["dtypes"] = std::vector<std::string>{"float16", "bfloat16", "float32"};
  cuda["head_dims"] = cuda_supported_head_dims();
  cuda["attn_mask"] = true;
  caps["cuda"] = cuda;
#endif
  return caps;
}

}  // namespace memvit

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "memvit_ext compiled kernels (registered with the dispatcher on import)";
  m.def("build_info", &memvit::build_info, "What this extension was built with");
  m.def("capabilities", &memvit::capabilities, "Dtypes, head dims and options each kernel serves");
}
