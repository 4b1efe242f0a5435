// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The backward's pre-pass: per-row statistics that the dQ and dK/dV kernels read.
#pragma once

#include "common.cuh"

namespace memvit {
namespace cuda {

// Per query row: delta = sum_d dO (out - residual) (the softmax-gradient row term, from the
// attention part of out only) and lse2 = lse log2(e) (+inf for rows with no key, so that
// exp2(x - lse2) = 0). One warp per row.
template <typename T>
MV_GLOBAL void MV_LAUNCH_BOUNDS(Prepass::kThreads, 1) bwd_prepass_kernel(const MV_GRID_CONSTANT Params p) {
  const int lane = thread_x() & 31;
  const int64_t rows = int64_t(p.batch) * p.heads * p.nq;
  const int64_t row = int64_t(block_x()) * Prepass::kRowsPerBlock + (thread_x() >> 5);
  if (row >= rows) return;  // whole warps
  const int d = p.head_dim;
  const int64_t bh = row / p.nq;
  const int r = int(row - bh * p.nq);
  const int b = int(bh / p.heads), h = int(bh - int64_t(b) * p.heads);
  const T* dout = static_cast<const T*>(p.dout) + row * d;
  const T* out = static_cast<const T*>(p.out_in) + row * d;
  const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh + r * p.q_sn;
  const bool res = residual_row(p, r);
  float acc = 0.f;
  for (int c = lane; c < d; c += 32) {
    const float o = Elem<T>::to_float(out[c]) - (res ? Elem<T>::to_float(q[c]) : 0.f);
    acc += Elem<T>::to_float(dout[c]) * o;
  }
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) acc += shfl_xor(acc, m);
  if (lane == 0) {
    p.delta[row] = acc;
    const float lse = p.lse_in[row];
    p.lse2[row] = lse == -inf() ? inf() : lse * kLog2e;
  }
}

}  // namespace cuda
}  // namespace memvit
