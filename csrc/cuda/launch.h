// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Host entry points of the kernels. Each returns the CUDA status of its launch (the attribute
// call, then cudaGetLastError after the launch), or cudaErrorInvalidValue when the kernel
// table (kernel_table.h) has no such kernel; the caller checks it. Under
// MEMVIT_CUDA_EMULATION the same functions run the kernels on the CPU emulator.
#pragma once

#include <cstddef>

#include "kernel_table.h"
#include "params.h"

#if defined(MEMVIT_CUDA_EMULATION)
using cudaStream_t = void*;
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
constexpr cudaError_t cudaErrorInvalidValue = 1;
#else
#include <cuda_runtime_api.h>
#endif

namespace memvit {
namespace cuda {

// Launches `kernel` for element type `dtype` and head dim `head_dim` on a 1-D grid of `grid`
// CTAs with `smem` bytes of dynamic shared memory (the block size is the kernel's own).
cudaError_t launch(Kernel kernel, DType dtype, int head_dim, const Params& p, long long grid, size_t smem,
                   cudaStream_t stream);

// One kernel for one element type: specialized in the *.cu file that instantiates it (one
// translation unit per tensor-core kernel and element type, so they compile in parallel).
template <Kernel K, DType DT>
cudaError_t launch_typed(int head_dim, const Params& p, long long grid, size_t smem, cudaStream_t stream);

}  // namespace cuda
}  // namespace memvit
