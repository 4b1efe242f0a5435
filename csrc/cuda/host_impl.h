// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Host side of the CUDA kernels: argument checks (describe_problem, and the kernel table's
// element types and head dims), kernel views of the inputs, the parameter block, the choice
// of kernels and their launch configuration. Written against a Backend (the CUDA runtime in
// pooling_attention_cuda.cpp, the CPU emulator in emu/), so that the emulator tests exercise
// this code too.
//
//   Backend::limits(tensor) -> DeviceLimits     SM count, opt-in shared memory per block
//   Backend::run(kernel, dtype, head_dim, params, grid, smem, tensor, what)   launch + check
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/kernel_table.h"
#include "cuda/launch.h"
#include "cuda/params.h"
#include "cuda/tiles.h"
#include "pooling_attention.h"

namespace memvit {
namespace cuda {

struct DeviceLimits {
  int sm_count = 1;
  size_t smem_optin = 48 * 1024;
  int min_blocks_per_split = 8;  // dK/dV kernel: fewest query blocks per split of the query axis
};

// The kernel table's element type of a tensor (nullopt: not served).
inline std::optional<DType> dtype_of(at::ScalarType st) {
#define MEMVIT_X(tag, scalar, name, type, tc) \
  if (st == at::ScalarType::scalar) return DType::tag;
  MEMVIT_CUDA_DTYPES(MEMVIT_X)
#undef MEMVIT_X
  return std::nullopt;
}

template <typename List>
std::string join(const List& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + std::string(c10::str(item));
  return out;
}

inline void check_served(const char* op, const ProblemDesc& p, const at::Tensor& q) {
  std::vector<std::string> names;
  for (const DType dt : kDTypes) names.emplace_back(dtype_name(dt));
  TORCH_CHECK(dtype_of(q.scalar_type()).has_value(), op, ": the CUDA kernel serves ", join(names), "; got ",
              q.scalar_type(), " (memvit_ext.memory_pooling_attention falls back to PyTorch for other dtypes)");
  TORCH_CHECK(visit_tc_head_dim(static_cast<int>(p.head_dim), [](auto) {}), op, ": the CUDA kernel serves head_dim ",
              join(kTcHeadDims), "; got ", p.head_dim, " (memvit_ext.memory_pooling_attention falls back to PyTorch)");
  TORCH_CHECK(p.batch * p.heads * std::max<int64_t>(p.queries, p.keys) < (int64_t(1) << 31) &&
                  p.queries < (int64_t(1) << 30) && p.keys < (int64_t(1) << 30),
              op, ": problem too large for 32-bit row indices");
}

// A (B, H, N, D) view the kernels can read in place: unit last stride, base and row strides
// 16-byte aligned (cp.async moves 16 bytes); otherwise a contiguous copy.
inline at::Tensor kernel_view(const at::Tensor& t) {
  const int64_t per16 = 16 / t.element_size();
  bool ok = t.stride(3) == 1 && reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
  for (int i = 0; i < 3; ++i) ok = ok && (t.size(i) == 1 || t.stride(i) % per16 == 0);
  return ok ? t : t.clone(at::MemoryFormat::Contiguous);
}

inline at::Tensor contiguous_aligned(const at::Tensor& t) {
  auto c = t.contiguous();
  return reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0 ? c : c.clone();
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The parameter block of a problem; backward fields are filled by the caller.
inline Params make_params(const ProblemDesc& pd, const at::Tensor& q, const std::vector<at::Tensor>& keys,
                          const std::vector<at::Tensor>& values, const at::Tensor& rel_bias, const at::Tensor& mask) {
  Params p;
  p.batch = static_cast<int>(pd.batch);
  p.heads = static_cast<int>(pd.heads);
  p.nq = static_cast<int>(pd.queries);
  p.nk = static_cast<int>(pd.keys);
  p.head_dim = static_cast<int>(pd.head_dim);
  p.nseg = static_cast<int>(pd.segments.size());
  p.bins = pd.has_rel_bias ? static_cast<int>(pd.bins) : 0;
  p.scale = static_cast<float>(pd.scale);
  p.scale_log2 = static_cast<float>(pd.scale * 1.4426950408889634);
  p.residual = pd.residual ? 1 : 0;
  p.q_cls = pd.q_cls ? 1 : 0;
  p.q = q.data_ptr();
  p.q_sb = q.stride(0);
  p.q_sh = q.stride(1);
  p.q_sn = q.stride(2);
  if (pd.has_rel_bias) p.rel_bias = rel_bias.data_ptr<float>();
  if (pd.has_mask) {
    p.mask = mask.data_ptr<float>();
    p.m_sb = mask.stride(0);
    p.m_sh = mask.stride(1);
    p.m_sq = mask.stride(2);
    p.m_sk = mask.stride(3);
  }
  for (size_t s = 0; s < pd.segments.size(); ++s) {
    const SegmentDesc& sd = pd.segments[s];
    SegParams& sp = p.seg[s];
    sp.k = keys[s].data_ptr();
    sp.v = values[s].data_ptr();
    sp.k_sb = keys[s].stride(0);
    sp.k_sh = keys[s].stride(1);
    sp.k_sn = keys[s].stride(2);
    sp.v_sb = values[s].stride(0);
    sp.v_sh = values[s].stride(1);
    sp.v_sn = values[s].stride(2);
    sp.key_offset = static_cast<int>(sd.key_offset);
    sp.tokens = static_cast<int>(sd.tokens);
    sp.t = sd.t;
    sp.h = sd.h;
    sp.w = sd.w;
    sp.cls = sd.cls;
    for (int a = 0; a < 3; ++a) sp.bin[a] = sd.bin[a];
  }
  return p;
}

struct Prepared {
  ProblemDesc pd;
  at::Tensor q, rel_bias, mask;
  std::vector<at::Tensor> keys, values;
  Params params;
};

inline Prepared prepare(const char* op, const at::Tensor& q, at::TensorList keys, at::TensorList values,
                        const std::optional<at::Tensor>& rel_bias, at::IntArrayRef kv_thw, at::IntArrayRef kv_cls,
                        at::IntArrayRef bin_offsets, double scale, bool residual, bool q_cls,
                        const std::optional<at::Tensor>& attn_mask) {
  Prepared r;
  r.pd = describe_problem(op, q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls,
                          attn_mask);
  check_served(op, r.pd, q);
  r.q = kernel_view(q);
  for (size_t s = 0; s < keys.size(); ++s) {
    r.keys.push_back(kernel_view(keys[s]));
    r.values.push_back(kernel_view(values[s]));
  }
  if (r.pd.has_rel_bias) r.rel_bias = contiguous_aligned(rel_bias->to(at::kFloat));
  if (r.pd.has_mask) r.mask = attn_mask->to(at::kFloat).expand({r.pd.batch, r.pd.heads, r.pd.queries, r.pd.keys});
  r.params = make_params(r.pd, r.q, r.keys, r.values, r.rel_bias, r.mask);
  return r;
}

// Splits of the query axis for the dK/dV kernel: about two waves of CTAs (one CTA per SM
// fits), at least min_blocks_per_split query blocks per split (each split re-reads its keys
// and writes a float32 partial).
inline int dkv_splits(int64_t pairs, int64_t key_tiles, int64_t q_blocks, const DeviceLimits& lim) {
  const int64_t base = pairs * key_tiles;
  if (base >= 2 * lim.sm_count) return 1;
  const int64_t want = ceil_div(2 * lim.sm_count, base);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, q_blocks / lim.min_blocks_per_split)));
}

template <class Backend>
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& q, at::TensorList keys, at::TensorList values,
                                           const std::optional<at::Tensor>& rel_bias, at::IntArrayRef kv_thw,
                                           at::IntArrayRef kv_cls, at::IntArrayRef bin_offsets, double scale,
                                           bool residual, bool q_cls, const std::optional<at::Tensor>& attn_mask) {
  const char* op = "memvit_ext.pooling_attention (CUDA)";
  Prepared r = prepare(op, q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls, attn_mask);
  const ProblemDesc& pd = r.pd;
  auto out = at::empty({pd.batch, pd.heads, pd.queries, pd.head_dim}, q.options());
  auto lse = at::empty({pd.batch, pd.heads, pd.queries}, q.options().dtype(at::kFloat));
  if (out.numel() == 0) return {out, lse};
  Params& p = r.params;
  p.out = out.data_ptr();
  p.lse = lse.data_ptr<float>();
  const DeviceLimits lim = Backend::limits(q);
  const DType dt = *dtype_of(q.scalar_type());
  const int d = p.head_dim;
  const int64_t pairs = pd.batch * pd.heads;
  const FwdTc tc(d, p.bins, pd.has_rel_bias);
  if (uses_tensor_cores(dt) && tc.total <= lim.smem_optin) {
    Backend::run(Kernel::kFwdTc, dt, d, p, pairs * ceil_div(pd.queries, FwdTc::kBlockM), tc.total, q, "forward");
  } else {
    const Simt simt(Kernel::kFwdSimt, d, p.bins);
    TORCH_CHECK(simt.total <= lim.smem_optin, op, ": ", p.bins, " rel_bias bins need ", simt.total,
                " bytes of shared memory; the device allows ", lim.smem_optin);
    Backend::run(Kernel::kFwdSimt, dt, d, p, pairs * ceil_div(pd.queries, Simt::kBlockM), simt.total, q,
                 "forward (SIMT)");
  }
  return {out, lse};
}

template <class Backend>
std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor> backward(
    const at::Tensor& grad_out, const at::Tensor& q, at::TensorList keys, at::TensorList values,
    const std::optional<at::Tensor>& rel_bias, const at::Tensor& out, const at::Tensor& lse, at::IntArrayRef kv_thw,
    at::IntArrayRef kv_cls, at::IntArrayRef bin_offsets, double scale, bool residual, bool q_cls,
    const std::optional<at::Tensor>& attn_mask) {
  const char* op = "memvit_ext.pooling_attention_backward (CUDA)";
  Prepared r = prepare(op, q, keys, values, rel_bias, kv_thw, kv_cls, bin_offsets, scale, residual, q_cls, attn_mask);
  const ProblemDesc& pd = r.pd;
  check_backward_inputs(pd, grad_out, out, lse);
  TORCH_CHECK(grad_out.scalar_type() == q.scalar_type() && out.scalar_type() == q.scalar_type(), op,
              ": grad_out and out must have q's dtype");
  const int64_t B = pd.batch, H = pd.heads, D = pd.head_dim, pairs = B * H;

  auto d_q = at::empty({B, H, pd.queries, D}, q.options());
  std::vector<at::Tensor> d_keys, d_values;
  for (const auto& seg : pd.segments) {
    d_keys.push_back(at::empty({B, H, seg.tokens, D}, q.options()));
    d_values.push_back(at::empty({B, H, seg.tokens, D}, q.options()));
  }
  at::Tensor d_rel_bias = pd.has_rel_bias ? at::empty({B, H, pd.queries, pd.bins}, q.options().dtype(at::kFloat))
                                  : q.new_empty({0});
  auto finish_d_rel_bias = [&]() { return pd.has_rel_bias ? d_rel_bias.to(rel_bias->scalar_type()) : d_rel_bias; };
  if (pairs == 0) return {d_q, d_keys, d_values, finish_d_rel_bias()};
  if (pd.queries == 0) {  // nothing attends: zero key/value gradients
    for (auto& t : d_keys) t.zero_();
    for (auto& t : d_values) t.zero_();
    return {d_q, d_keys, d_values, finish_d_rel_bias()};
  }

  const auto dout = contiguous_aligned(grad_out);
  const auto out_c = contiguous_aligned(out);
  const auto lse_c = lse.to(at::kFloat).contiguous();
  auto stats = at::empty({2, pairs * pd.queries}, q.options().dtype(at::kFloat));
  Params& p = r.params;
  p.out_in = out_c.data_ptr();
  p.lse_in = lse_c.data_ptr<float>();
  p.dout = dout.data_ptr();
  p.lse2 = stats[0].data_ptr<float>();
  p.delta = stats[1].data_ptr<float>();
  p.dq = d_q.data_ptr();
  if (pd.has_rel_bias) p.d_rel_bias = d_rel_bias.data_ptr<float>();
  for (size_t s = 0; s < pd.segments.size(); ++s) {
    p.seg[s].dk = d_keys[s].data_ptr();
    p.seg[s].dv = d_values[s].data_ptr();
  }

  const DeviceLimits lim = Backend::limits(q);
  const DType dt = *dtype_of(q.scalar_type());
  const int d = p.head_dim;
  Backend::run(Kernel::kPrepass, dt, d, p, ceil_div(pairs * pd.queries, Prepass::kRowsPerBlock), 0, q,
               "backward pre-pass");

  // dQ and d_rel_bias; on the tensor-core path first the exact delta (sum P dP, bwd_dq_tc.cuh),
  // replacing the pre-pass's, which reads the 16-bit out.
  const DqTc dq_tc(d, p.bins, pd.has_rel_bias);
  if (uses_tensor_cores(dt) && dq_tc.total <= lim.smem_optin) {
    Backend::run(Kernel::kDeltaTc, dt, d, p, pairs * ceil_div(pd.queries, DqTc::kBlockM), dq_tc.total, q,
                 "backward delta");
    Backend::run(Kernel::kDqTc, dt, d, p, pairs * ceil_div(pd.queries, DqTc::kBlockM), dq_tc.total, q,
                 "backward dQ");
  } else {
    const Simt simt(Kernel::kDqSimt, d, p.bins);
    TORCH_CHECK(simt.total <= lim.smem_optin, op, ": ", p.bins, " rel_bias bins need ", simt.total,
                " bytes of shared memory; the device allows ", lim.smem_optin);
    Backend::run(Kernel::kDqSimt, dt, d, p, pairs * ceil_div(pd.queries, Simt::kBlockM), simt.total, q,
                 "backward dQ (SIMT)");
  }

  // dK and dV.
  const DkvTc dkv_tc(d, p.bins, pd.has_rel_bias);
  at::Tensor partial;
  if (uses_tensor_cores(dt) && dkv_tc.total <= lim.smem_optin) {
    const int64_t key_tiles = ceil_div(pd.keys, DkvTc::kBlockN);
    const int64_t q_blocks = ceil_div(pd.queries, DkvTc::block_q(d));
    p.splits = dkv_splits(pairs, key_tiles, q_blocks, lim);
    if (p.splits > 1) {
      partial = at::empty({2, p.splits, pairs, pd.keys, D}, q.options().dtype(at::kFloat));
      p.dkv_partial = partial.data_ptr<float>();
    }
    Backend::run(Kernel::kDkvTc, dt, d, p, pairs * key_tiles * p.splits, dkv_tc.total, q, "backward dK/dV");
    if (p.splits > 1) {
      const int64_t quads = 2 * pairs * pd.keys * D / 4;
      Backend::run(Kernel::kReduce, dt, d, p, std::min<int64_t>(ceil_div(quads, DkvReduce::kThreads), 8 * lim.sm_count),
                   0, q, "backward dK/dV reduction");
    }
  } else {
    const Simt simt(Kernel::kDkvSimt, d, p.bins);
    TORCH_CHECK(simt.total <= lim.smem_optin, op, ": ", p.bins, " rel_bias bins need ", simt.total,
                " bytes of shared memory; the device allows ", lim.smem_optin);
    Backend::run(Kernel::kDkvSimt, dt, d, p, pairs * ceil_div(pd.keys, Simt::kBlockN), simt.total, q,
                 "backward dK/dV (SIMT)");
  }
  return {d_q, d_keys, d_values, finish_d_rel_bias()};
}

}  // namespace cuda
}  // namespace memvit
