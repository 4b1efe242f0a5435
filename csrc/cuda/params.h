// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The kernel parameter block of the CUDA kernels: plain data, shared by the host glue
// (pooling_attention_cuda.cpp, compiled by the C++ compiler) and the kernels (*.cu). It holds
// no ATen types so that the kernel translation units never parse the ATen headers (that keeps
// nvcc's per-architecture device passes short).
#pragma once

#include <cstdint>

#include "op_limits.h"

namespace memvit {
namespace cuda {

// One key/value segment, read in place: element (b, h, n, d) of k is k[b*k_sb + h*k_sh + n*k_sn + d].
struct SegParams {
  const void* k = nullptr;
  const void* v = nullptr;
  void* dk = nullptr;  // backward outputs, contiguous (B, H, tokens, D)
  void* dv = nullptr;
  int64_t k_sb = 0, k_sh = 0, k_sn = 0;
  int64_t v_sb = 0, v_sh = 0, v_sn = 0;
  int key_offset = 0;  // first key of the segment on the concatenated key axis
  int tokens = 0;      // cls + t*h*w
  int t = 1, h = 1, w = 1, cls = 0;
  int bin[3] = {-1, -1, -1};  // first rel_bias column of the t, h, w bins; -1: that axis adds nothing
};

struct Params {
  int batch = 0, heads = 0, nq = 0, nk = 0, head_dim = 0, nseg = 0;
  int bins = 0;  // rel_bias columns (0: no rel_bias)
  float scale = 1.f;
  float scale_log2 = 1.f;  // scale * log2(e): the kernels work in base 2
  int residual = 0, q_cls = 0;

  const void* q = nullptr;  // (B, H, Nq, D), unit last stride
  int64_t q_sb = 0, q_sh = 0, q_sn = 0;
  const float* rel_bias = nullptr;  // rel_bias (B, H, Nq, bins), contiguous float32, or null
  const float* mask = nullptr;  // additive float32 mask, element (b,h,r,j) at b*m_sb + h*m_sh + r*m_sq + j*m_sk
  int64_t m_sb = 0, m_sh = 0, m_sq = 0, m_sk = 0;

  void* out = nullptr;  // forward: contiguous (B, H, Nq, D)
  float* lse = nullptr;  // forward: (B, H, Nq), natural log

  // backward
  const void* out_in = nullptr;  // the forward's out, contiguous
  const float* lse_in = nullptr;  // the forward's lse, contiguous
  const void* dout = nullptr;     // contiguous (B, H, Nq, D)
  float* lse2 = nullptr;   // scratch (B, H, Nq): lse * log2(e), +inf for rows that attend to nothing
  // scratch (B, H, Nq): the softmax-gradient row term sum_k P dP; exact on the tensor-core path
  // (delta_tc_kernel), sum_d dO (out - residual) on the float32 path (bwd_prepass.cuh)
  float* delta = nullptr;
  void* dq = nullptr;      // contiguous (B, H, Nq, D)
  float* d_rel_bias = nullptr;  // contiguous (B, H, Nq, bins)
  float* dkv_partial = nullptr;  // [2][splits][B*H][Nk][D] float32 when splits > 1
  int splits = 1;                // query-axis splits of the dK/dV kernel

  SegParams seg[kMaxSegments];
};

}  // namespace cuda
}  // namespace memvit
