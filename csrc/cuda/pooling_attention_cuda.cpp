// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// CUDA kernels of memvit_ext::pooling_attention(_backward): registration for the CUDA
// dispatch key and the CUDA-runtime backend of host_impl.h (device limits, stream, launch
// checks). Compiled by the host compiler: the kernels live in the *.cu files, launch() in
// launch.cpp.

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <array>
#include <mutex>

#include "cuda/host_impl.h"

namespace memvit {
namespace cuda {
namespace {

// SM count and opt-in shared memory per block of each device, read once. (Not through
// ATen/cuda/CUDAContext.h: it needs the cuSPARSE/cuBLAS headers, which a minimal toolkit lacks.)
DeviceLimits device_limits(int device) {
  static std::mutex mutex;
  static std::array<DeviceLimits, 64> cache{};
  static std::array<bool, 64> known{};
  TORCH_CHECK(device >= 0 && device < 64, "memvit_ext: CUDA device index ", device, " out of range");
  const std::lock_guard<std::mutex> lock(mutex);
  if (!known[device]) {
    int sms = 0, smem = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    cache[device] = DeviceLimits{sms, static_cast<size_t>(smem)};
    known[device] = true;
  }
  return cache[device];
}

struct CudaBackend {
  static DeviceLimits limits(const at::Tensor& t) { return device_limits(t.device().index()); }
  static void run(Kernel kernel, DType dtype, int head_dim, const Params& p, long long grid, size_t smem,
                  const at::Tensor& on, const char* what) {
    const cudaError_t err =
        launch(kernel, dtype, head_dim, p, grid, smem, c10::cuda::getCurrentCUDAStream(on.device().index()).stream());
    TORCH_CHECK(err == cudaSuccess, "memvit_ext CUDA kernel (", what, ", grid ", grid, ", ", smem,
                " bytes of shared memory) failed to launch: ", cudaGetErrorString(err));
  }
};

std::tuple<at::Tensor, at::Tensor> pooling_attention_cuda(const at::Tensor& q, at::TensorList keys,
                                                          at::TensorList values,
                                                          const std::optional<at::Tensor>& rel_bias,
                                                          at::IntArrayRef kv_thw, at::IntArrayRef kv_cls,
                                                          at::IntArrayRef bin_offsets, double scale, bool residual,
                                                          bool q_cls, const std::optional<at::Tensor>& attn_mask) {
  const c10::cuda::CUDAGuard guard(q.device());
  return forward<CudaBackend>(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls,
                              attn_mask);
}

std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor> pooling_attention_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& q, at::TensorList keys, at::TensorList values,
    const std::optional<at::Tensor>& rel_bias, const at::Tensor& out, const at::Tensor& lse, at::IntArrayRef kv_thw,
    at::IntArrayRef kv_cls, at::IntArrayRef bin_offsets, double scale, bool residual, bool q_cls,
    const std::optional<at::Tensor>& attn_mask) {
  const c10::cuda::CUDAGuard guard(q.device());
  return backward<CudaBackend>(grad_out, q, keys, values, rel_bias, out, lse, kv_thw, kv_cls, bin_offsets, scale,
                               residual, q_cls, attn_mask);
}

}  // namespace

TORCH_LIBRARY_IMPL(memvit_ext, CUDA, m) {
  m.impl("pooling_attention", &pooling_attention_cuda);
  m.impl("pooling_attention_backward", &pooling_attention_backward_cuda);
}

}  // namespace cuda
}  // namespace memvit
