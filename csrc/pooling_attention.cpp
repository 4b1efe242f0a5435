// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The Python face of the compiled extension: what was built and what the kernels serve.
// The op schemas are defined in memvit_ext/ops.py (so the op exists even without this
// extension); cpu/ and cuda/ register their kernels for them with TORCH_LIBRARY_IMPL.

#include <torch/extension.h>

#include "pooling_attention.h"
#ifdef MEMVIT_WITH_CUDA
#include "cuda/kernel_table.h"
#endif

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

// Read from the kernels' own tables: the CPU dispatch (cpu_serves) and cuda/kernel_table.h.
// dtypes come back as torch.dtype objects.
static pybind11::dict capabilities() {
  pybind11::dict caps;
  pybind11::dict cpu;
  std::vector<at::ScalarType> cpu_dtypes;
  for (const auto type : {at::kHalf, at::kBFloat16, at::kFloat, at::kDouble}) {
    if (cpu_serves(type)) cpu_dtypes.push_back(type);
  }
  cpu["dtypes"] = cpu_dtypes;
  cpu["attn_mask"] = true;
  caps["cpu"] = cpu;
#ifdef MEMVIT_WITH_CUDA
  pybind11::dict cuda;
#define MEMVIT_X(tag, scalar, name, type, tc) at::ScalarType::scalar,
  cuda["dtypes"] = std::vector<at::ScalarType>{MEMVIT_CUDA_DTYPES(MEMVIT_X)};
#undef MEMVIT_X
  cuda["head_dims"] = std::vector<int>(std::begin(cuda::kTcHeadDims), std::end(cuda::kTcHeadDims));
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
