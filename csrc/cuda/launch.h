// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Host entry points of the kernels. Each returns the CUDA status of its launch (the attribute
// call, then cudaGetLastError after the launch); the caller checks it.
#pragma once

#include <cstddef>

#include "params.h"

#if defined(MEMVIT_CUDA_EMULATION)
using cudaStream_t = void*;
using cudaError_t = int;
#else
#include <cuda_runtime_api.h>
#endif

namespace memvit {
namespace cuda {

enum class Kernel : int { kFwdTc, kDqTc, kDkvTc, kFwdSimt, kDqSimt, kDkvSimt, kPreprocess, kReduce };

// Block size of the pre-pass and the reduction (aux.cuh); the pre-pass runs one warp per row.
constexpr int kAuxThreadsPerBlock = 256;
constexpr int kAuxWarpsPerBlock = kAuxThreadsPerBlock / 32;

// Launches `kernel` for element type `dtype` and head dim `head_dim` on a 1-D grid of `grid`
// CTAs with `smem` bytes of dynamic shared memory (the block size is the kernel's own).
cudaError_t launch(Kernel kernel, DType dtype, int head_dim, const Params& p, long long grid, size_t smem,
                   cudaStream_t stream);

// Per element type (one translation unit each, compiled in parallel).
cudaError_t launch_fwd_tc_bf16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s);
cudaError_t launch_fwd_tc_fp16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s);
cudaError_t launch_dq_tc_bf16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s);
cudaError_t launch_dq_tc_fp16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s);
cudaError_t launch_dkv_tc_bf16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s);
cudaError_t launch_dkv_tc_fp16(int d, const Params& p, long long grid, size_t smem, cudaStream_t s);
cudaError_t launch_simt(Kernel kernel, DType dtype, const Params& p, long long grid, size_t smem, cudaStream_t s);
cudaError_t launch_aux(Kernel kernel, DType dtype, const Params& p, long long grid, size_t smem, cudaStream_t s);

}  // namespace cuda
}  // namespace memvit
