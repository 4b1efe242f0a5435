// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
// Backward dK / dV tensor-core kernels, fp16, head dims 64 / 96 / 128.
#include "bwd_dkdv_tc.cuh"
#include "launch.h"
#include "launch_util.cuh"

namespace memvit {
namespace cuda {

cudaError_t launch_dkv_tc_fp16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s) {
  switch (d) {
    case 64: return launch_kernel(dkdv_tc_kernel<f16_t, 64>, DkvTc::kThreads, p, grid, smem, s);
    case 96: return launch_kernel(dkdv_tc_kernel<f16_t, 96>, DkvTc::kThreads, p, grid, smem, s);
    case 128: return launch_kernel(dkdv_tc_kernel<f16_t, 128>, DkvTc::kThreads, p, grid, smem, s);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace memvit
