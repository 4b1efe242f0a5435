// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Small backward kernels around the two main ones.
#pragma once

#include "common.cuh"
#include "launch.h"

namespace memvit {
namespace cuda {

constexpr int kAuxThreads = kAuxThreadsPerBlock;

// Per query row: delta = sum_d dO (out - residual) (the softmax-gradient row term, from the
// attention part of out only) and lse2 = lse log2(e) (+inf for rows with no key, so that
// exp2(x - lse2) = 0). One warp per row.
template <typename T>
MV_GLOBAL void MV_LAUNCH_BOUNDS(kAuxThreads, 1) bwd_preprocess_kernel(const MV_GRID_CONSTANT Params p) {
  const int lane = thread_x() & 31;
  const int64_t rows = int64_t(p.batch) * p.heads * p.nq;
  const int64_t row = int64_t(block_x()) * (kAuxThreads / 32) + (thread_x() >> 5);
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

// dK, dV = sum over splits of the float32 partials, in split order, into the segments'
// gradients. One thread per 4 elements.
template <typename T>
MV_GLOBAL void MV_LAUNCH_BOUNDS(kAuxThreads, 1) dkdv_reduce_kernel(const MV_GRID_CONSTANT Params p) {
  const int d = p.head_dim;
  const int64_t pairs = int64_t(p.batch) * p.heads;
  const int64_t slab = pairs * p.nk * d;
  const int64_t quads = 2 * slab / 4;
  for (int64_t i = int64_t(block_x()) * kAuxThreads + thread_x(); i < quads; i += int64_t(grid_x()) * kAuxThreads) {
    const int64_t e = i * 4;
    const int which = e >= slab ? 1 : 0;  // 0: dK, 1: dV
    const int64_t rest = e - which * slab;
    const int64_t bh = rest / (int64_t(p.nk) * d);
    const int64_t within = rest - bh * p.nk * d;
    const int key = int(within / d), col = int(within - int64_t(key) * d);
    const float* src = p.dkv_partial + which * p.splits * slab + rest;
    float a[4] = {0.f, 0.f, 0.f, 0.f};
    for (int s = 0; s < p.splits; ++s) {
      const float* v = src + s * slab;
#pragma unroll
      for (int k = 0; k < 4; ++k) a[k] += v[k];
    }
    const SegParams& sg = p.seg[segment_of(p, key)];
    T* dst = static_cast<T*>(which ? sg.dv : sg.dk) + (bh * sg.tokens + (key - sg.key_offset)) * d + col;
    store_pair<T>(dst, a[0], a[1]);
    store_pair<T>(dst + 2, a[2], a[3]);
  }
}

}  // namespace cuda
}  // namespace memvit
