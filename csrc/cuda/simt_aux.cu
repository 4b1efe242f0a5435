// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
// SIMT kernels (float32 / bf16 / fp16, any head dim <= 128) and the small backward kernels.
#include "aux.cuh"
#include "launch.h"
#include "launch_util.cuh"
#include "simt.cuh"

namespace memvit {
namespace cuda {

template <typename T>
static cudaError_t launch_simt_t(Kernel kernel, const Params& p, long long grid, size_t smem, cudaStream_t s) {
  switch (kernel) {
    case Kernel::kFwdSimt: return launch_kernel(simt_fwd_kernel<T>, Simt::kThreads, p, grid, smem, s);
    case Kernel::kDqSimt: return launch_kernel(simt_dq_kernel<T>, Simt::kThreads, p, grid, smem, s);
    case Kernel::kDkvSimt: return launch_kernel(simt_dkdv_kernel<T>, Simt::kThreads, p, grid, smem, s);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launch_simt(Kernel kernel, DType dtype, const Params& p, long long grid, size_t smem, cudaStream_t s) {
  switch (dtype) {
    case DType::kFloat32: return launch_simt_t<float>(kernel, p, grid, smem, s);
    case DType::kBFloat16: return launch_simt_t<bf16_t>(kernel, p, grid, smem, s);
    case DType::kFloat16: return launch_simt_t<f16_t>(kernel, p, grid, smem, s);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_aux(Kernel kernel, DType dtype, const Params& p, long long grid, size_t smem, cudaStream_t s) {
  if (kernel == Kernel::kPreprocess) {
    switch (dtype) {
      case DType::kFloat32: return launch_kernel(bwd_preprocess_kernel<float>, kAuxThreads, p, grid, smem, s);
      case DType::kBFloat16: return launch_kernel(bwd_preprocess_kernel<bf16_t>, kAuxThreads, p, grid, smem, s);
      case DType::kFloat16: return launch_kernel(bwd_preprocess_kernel<f16_t>, kAuxThreads, p, grid, smem, s);
    }
  } else if (kernel == Kernel::kReduce) {
    switch (dtype) {
      case DType::kBFloat16: return launch_kernel(dkdv_reduce_kernel<bf16_t>, kAuxThreads, p, grid, smem, s);
      case DType::kFloat16: return launch_kernel(dkdv_reduce_kernel<f16_t>, kAuxThreads, p, grid, smem, s);
      default: break;
    }
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace memvit
