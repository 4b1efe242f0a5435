// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The CUDA kernels, their launchers (the *.cu files and launch.cpp, compiled as C++) and their
// host code (host_impl.h) run on CPU tensors through the emulator: a test-only extension
// (tests/test_kernels_cuda.py builds it with torch.utils.cpp_extension.load) that checks the
// kernels' results where there is no GPU. Compiled with MEMVIT_CUDA_EMULATION.

#include <torch/extension.h>

#include "cuda/emu/emulator.h"
#include "cuda/host_impl.h"
#include "cuda/launch.h"

namespace memvit {
namespace cuda {
namespace {

DeviceLimits g_limits{132, 227 * 1024, 8};

struct EmuBackend {
  static DeviceLimits limits(const at::Tensor&) { return g_limits; }
  static void run(Kernel kernel, DType dtype, int d, const Params& p, long long grid, size_t smem, const at::Tensor&,
                  const char* what) {
    TORCH_CHECK(smem <= g_limits.smem_optin, "emulator: ", what, " asks for ", smem, " bytes of shared memory");
    TORCH_CHECK(launch(kernel, dtype, d, p, grid, smem, nullptr) == cudaSuccess, "emulator: the kernel table has no ",
                what, " kernel for ", dtype_name(dtype), " and head_dim ", d);
  }
};

std::tuple<at::Tensor, at::Tensor> emu_forward(const at::Tensor& q, std::vector<at::Tensor> keys,
                                               std::vector<at::Tensor> values, std::optional<at::Tensor> rel_bias,
                                               std::vector<int64_t> kv_thw, std::vector<int64_t> kv_cls,
                                               std::vector<int64_t> bin_offsets, double scale, bool residual,
                                               bool q_cls, std::optional<at::Tensor> attn_mask) {
  return forward<EmuBackend>(q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls,
                             attn_mask);
}

std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor> emu_backward(
    const at::Tensor& grad_out, const at::Tensor& q, std::vector<at::Tensor> keys, std::vector<at::Tensor> values,
    std::optional<at::Tensor> rel_bias, const at::Tensor& out, const at::Tensor& lse, std::vector<int64_t> kv_thw,
    std::vector<int64_t> kv_cls, std::vector<int64_t> bin_offsets, double scale, bool residual, bool q_cls,
    std::optional<at::Tensor> attn_mask) {
  return backward<EmuBackend>(grad_out, q, keys, values, rel_bias, out, lse, kv_thw, kv_cls, bin_offsets, scale,
                              residual, q_cls, attn_mask);
}

void set_device(int sm_count, int64_t smem_optin, int min_blocks_per_split) {
  g_limits.sm_count = sm_count;
  g_limits.smem_optin = static_cast<size_t>(smem_optin);
  g_limits.min_blocks_per_split = min_blocks_per_split;
}

}  // namespace
}  // namespace cuda
}  // namespace memvit

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "memvit_ext CUDA kernels on the CPU emulator (tests only)";
  m.def("forward", &memvit::cuda::emu_forward);
  m.def("backward", &memvit::cuda::emu_backward);
  m.def("set_device", &memvit::cuda::set_device, "SM count, opt-in shared memory and dK/dV split floor the host code sees");
  m.def("set_schedule", &emu::set_schedule, "0: threads resume in index order, 1: reverse");
}
