// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
#pragma once

#include <cuda_runtime_api.h>

#include "params.h"

namespace memvit {
namespace cuda {

// Raises the kernel's dynamic shared-memory limit when it needs more than the default 48 KB
// (the caller has checked `smem` against the device's opt-in limit), launches, and returns
// the launch status.
template <typename Kernel>
cudaError_t launch_kernel(Kernel kernel, int threads, const Params& p, long long grid, size_t smem,
                          cudaStream_t stream) {
  if (grid <= 0) return cudaSuccess;
  if (grid > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
  }
  kernel<<<dim3(static_cast<unsigned>(grid)), dim3(threads), smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace memvit
