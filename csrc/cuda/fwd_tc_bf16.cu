// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
// Forward tensor-core kernels, bf16, head dims 64 / 96 / 128.
#include "fwd_tc.cuh"
#include "launch.h"
#include "launch_util.cuh"

namespace memvit {
namespace cuda {

cudaError_t launch_fwd_tc_bf16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s) {
  switch (d) {
    case 64: return launch_kernel(fwd_tc_kernel<bf16_t, 64>, FwdTc::kThreads, p, grid, smem, s);
    case 96: return launch_kernel(fwd_tc_kernel<bf16_t, 96>, FwdTc::kThreads, p, grid, smem, s);
    case 128: return launch_kernel(fwd_tc_kernel<bf16_t, 128>, FwdTc::kThreads, p, grid, smem, s);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace memvit
