// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// launch(): (kernel, element type) -> the launcher its *.cu file defines. Compiled by the host
// compiler for the CUDA build, and with the emulator for the emulator tests.
#include "cuda/launch.h"

namespace memvit {
namespace cuda {
namespace {

#define MEMVIT_CASE(K) \
  case Kernel::K:      \
    return launch_typed<Kernel::K, DT>(head_dim, p, grid, smem, stream);

template <DType DT>
cudaError_t launch_dtype(Kernel kernel, int head_dim, const Params& p, long long grid, size_t smem,
                         cudaStream_t stream) {
  if constexpr (uses_tensor_cores(DT)) {  // tensor-core kernels and the reduction of their dK/dV splits
    switch (kernel) {
      MEMVIT_CASE(kFwdTc)
      MEMVIT_CASE(kDqTc)
      MEMVIT_CASE(kDeltaTc)
      MEMVIT_CASE(kDkvTc)
      MEMVIT_CASE(kReduce)
      default: break;
    }
  }
  switch (kernel) {  // every element type
    MEMVIT_CASE(kFwdSimt)
    MEMVIT_CASE(kDqSimt)
    MEMVIT_CASE(kDkvSimt)
    MEMVIT_CASE(kPrepass)
    default: return cudaErrorInvalidValue;
  }
}

#undef MEMVIT_CASE

}  // namespace

cudaError_t launch(Kernel kernel, DType dtype, int head_dim, const Params& p, long long grid, size_t smem,
                   cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;
  visit_dtype(dtype, [&](auto dt) {
    err = launch_dtype<decltype(dt)::value>(kernel, head_dim, p, grid, smem, stream);
  });
  return err;
}

}  // namespace cuda
}  // namespace memvit
