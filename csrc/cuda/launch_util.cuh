// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// How a *.cu file defines its launch_typed<> specializations: launch_kernel() launches one
// kernel instantiation (on the GPU, or on the CPU emulator under MEMVIT_CUDA_EMULATION), and
// the two macros below define a launcher for one (kernel, element type) of the kernel table.
#pragma once

#include "device.cuh"
#include "launch.h"

namespace memvit {
namespace cuda {

// Raises the kernel's dynamic shared-memory limit when it needs more than the default 48 KB
// (the caller has checked `smem` against the device's opt-in limit), launches, and returns
// the launch status.
template <typename KernelFn>
cudaError_t launch_kernel(KernelFn kernel, int threads, const Params& p, long long grid, size_t smem,
                          cudaStream_t stream) {
  if (grid <= 0) return cudaSuccess;
#if defined(MEMVIT_CUDA_EMULATION)
  (void)stream;
  emu::launch(grid, threads, smem, [&] { kernel(p); });
  return cudaSuccess;
#else
  if (grid > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
  }
  kernel<<<dim3(static_cast<unsigned>(grid)), dim3(threads), smem, stream>>>(p);
  return cudaGetLastError();
#endif
}

}  // namespace cuda
}  // namespace memvit

// launch_typed<KERNEL, DTYPE>: TEMPLATE<element type> (any head dim).
#define MEMVIT_DEFINE_LAUNCH(KERNEL, DTYPE, TEMPLATE, THREADS)                                                   \
  template <>                                                                                                   \
  cudaError_t launch_typed<Kernel::KERNEL, DType::DTYPE>(int, const Params& p, long long grid, size_t smem,     \
                                                         cudaStream_t s) {                                      \
    return launch_kernel(TEMPLATE<ElementOf<DType::DTYPE>::Type>, THREADS, p, grid, smem, s);                   \
  }

// launch_typed<KERNEL, DTYPE>: TEMPLATE<element type, D> for each tensor-core head dim D of
// the kernel table (cudaErrorInvalidValue for other head dims).
#define MEMVIT_DEFINE_TC_LAUNCH(KERNEL, DTYPE, TEMPLATE, THREADS)                                                \
  template <>                                                                                                   \
  cudaError_t launch_typed<Kernel::KERNEL, DType::DTYPE>(int head_dim, const Params& p, long long grid,         \
                                                         size_t smem, cudaStream_t s) {                         \
    cudaError_t err = cudaErrorInvalidValue;                                                                    \
    visit_tc_head_dim(head_dim, [&](auto d) {                                                                   \
      err = launch_kernel(TEMPLATE<ElementOf<DType::DTYPE>::Type, decltype(d)::value>, THREADS, p, grid, smem,  \
                          s);                                                                                   \
    });                                                                                                         \
    return err;                                                                                                 \
  }
