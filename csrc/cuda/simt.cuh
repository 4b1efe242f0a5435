// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// SIMT kernels: float32 arithmetic on CUDA cores for any element type and any head dim up to
// 128. They serve float32 inputs (exact float32, no TF32), and bf16/fp16 problems whose
// tensor-core tiles do not fit the device's shared memory (very many bins, small-smem GPUs).
// Simple rather than fast: 32 x 32 tiles, 8 threads per query row (or per key), the bias
// table rows of the block in shared memory as [row][bin] with a zero column `bins`.
#pragma once

#include "common.cuh"

namespace memvit {
namespace cuda {

// rows [r0, r0 + 32) of the block's operand -> float32 shared rows of ld floats (0 past n).
template <typename T>
MV_DEVICE void simt_load_rows(float* dst, int ld, const T* base, int64_t sn, int r0, int n, int d) {
  for (int i = thread_x(); i < Simt::kBlockM * d; i += Simt::kThreads) {
    const int r = i / d, c = i - r * d;
    dst[r * ld + c] = r0 + r < n ? Elem<T>::to_float(base[int64_t(r0 + r) * sn + c]) : 0.f;
  }
}

template <typename T>
MV_DEVICE void simt_load_kv(float* ks, float* vs, int ld, const Params& p, int b, int h, int key0) {
  const int d = p.head_dim;
  for (int i = thread_x(); i < Simt::kBlockN * d; i += Simt::kThreads) {
    const int r = i / d, c = i - r * d;
    const int key = key0 + r;
    float kx = 0.f, vx = 0.f;
    if (key < p.nk) {
      const SegParams& sg = p.seg[segment_of(p, key)];
      const int64_t local = key - sg.key_offset;
      kx = Elem<T>::to_float(static_cast<const T*>(sg.k)[b * sg.k_sb + h * sg.k_sh + local * sg.k_sn + c]);
      vx = Elem<T>::to_float(static_cast<const T*>(sg.v)[b * sg.v_sb + h * sg.v_sh + local * sg.v_sn + c]);
    }
    ks[r * ld + c] = kx;
    vs[r * ld + c] = vx;
  }
}

// Raw bin columns of keys [key0, key0 + 32) (`bins` = the zero column) and validity.
MV_DEVICE void simt_key_meta(I4* meta, const Params& p, int key0) {
  for (int i = thread_x(); i < Simt::kBlockN; i += Simt::kThreads) {
    const KeyBins kb = key_bins(p, key0 + i);
    meta[i] = I4{kb.t >= 0 ? kb.t : p.bins, kb.h >= 0 ? kb.h : p.bins, kb.w >= 0 ? kb.w : p.bins,
                 key0 + i < p.nk ? 1 : 0};
  }
}

// rel_bias rows [r0, r0 + 32) -> [row][bin] (ld bins + 1), times log2e, zero column, 0 past nq.
MV_DEVICE void simt_load_rel_bias(float* tab, const Params& p, int bh, int r0) {
  const int ld = p.bins + 1;
  for (int i = thread_x(); i < Simt::kBlockM * ld; i += Simt::kThreads) {
    const int r = i / ld, c = i - r * ld;
    tab[i] = (c < p.bins && r0 + r < p.nq) ? p.rel_bias[(int64_t(bh) * p.nq + r0 + r) * p.bins + c] * kLog2e : 0.f;
  }
}

// Base-2 logit of (query row, key) from the staged tiles: dot + bias + mask (-inf past the end).
MV_DEVICE float simt_logit(const Params& p, const float* qrow, const float* krow, const float* rel_bias_row,
                           const I4& mk, int b, int h, int row, int key) {
  if (!mk.w) return -inf();
  float acc = 0.f;
  for (int c = 0; c < p.head_dim; ++c) acc += qrow[c] * krow[c];
  float x = acc * p.scale_log2;
  if (rel_bias_row != nullptr) x += rel_bias_row[mk.x] + rel_bias_row[mk.y] + rel_bias_row[mk.z];
  if (p.mask != nullptr && row < p.nq) x += mask_at(p, b, h, row, key) * kLog2e;
  return x;
}

// ------------------------------------------------------------------ forward
template <typename T>
MV_GLOBAL void MV_LAUNCH_BOUNDS(Simt::kThreads, 1) simt_fwd_kernel(const MV_GRID_CONSTANT Params p) {
  constexpr int kM = Simt::kBlockM, kN = Simt::kBlockN, kAcc = Simt::kMaxD / 8;
  const int d = p.head_dim;
  const Simt lay(Kernel::kFwdSimt, d, p.bins);
  unsigned char* smem = dyn_smem();
  float* qs = reinterpret_cast<float*>(smem + lay.q);
  float* ks = reinterpret_cast<float*>(smem + lay.k);
  float* vs = reinterpret_cast<float*>(smem + lay.v);
  float* ps = reinterpret_cast<float*>(smem + lay.p);
  I4* meta = reinterpret_cast<I4*>(smem + lay.meta);
  float* rel_bias_tile = reinterpret_cast<float*>(smem + lay.rel_bias);

  const int tid = thread_x(), r = tid >> 3, j = tid & 7;  // 8 threads per row, lanes 8r..8r+7
  const int q_blocks = (p.nq + kM - 1) / kM;
  const int bh = block_x() / q_blocks, r0 = (block_x() - bh * q_blocks) * kM;
  const int b = bh / p.heads, h = bh - b * p.heads, row = r0 + r;
  const T* q_base = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  simt_load_rows<T>(qs, lay.ld, q_base, p.q_sn, r0, p.nq, d);
  if (p.rel_bias != nullptr) simt_load_rel_bias(rel_bias_tile, p, bh, r0);
  const float* rel_bias_row = p.rel_bias != nullptr ? rel_bias_tile + r * lay.rel_bias_ld : nullptr;

  float o[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) o[i] = 0.f;
  float m = -inf(), l = 0.f;
  for (int key0 = 0; key0 < p.nk; key0 += kN) {
    block_sync();  // previous tile consumed
    simt_load_kv<T>(ks, vs, lay.ld, p, b, h, key0);
    simt_key_meta(meta, p, key0);
    block_sync();
    float x[kN / 8];
    float mx = m;
#pragma unroll
    for (int u = 0; u < kN / 8; ++u) {
      const int c = j + 8 * u;
      x[u] = simt_logit(p, qs + r * lay.ld, ks + c * lay.ld, rel_bias_row, meta[c], b, h, row, key0 + c);
      mx = fmaxf(mx, x[u]);
    }
    mx = fmaxf(mx, shfl_xor(mx, 1));
    mx = fmaxf(mx, shfl_xor(mx, 2));
    mx = fmaxf(mx, shfl_xor(mx, 4));
    const float base = mx == -inf() ? 0.f : mx;
    const float alpha = fast_exp2(m - base);
    m = mx;
    float rs = 0.f;
#pragma unroll
    for (int u = 0; u < kN / 8; ++u) {
      const float pv = fast_exp2(x[u] - base);
      rs += pv;
      ps[r * (kN + 1) + j + 8 * u] = pv;
    }
    l = l * alpha + rs;
    warp_sync();  // the row's 8 threads share a warp
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int c = j + 8 * i;
      if (c < d) {
        float acc = o[i] * alpha;
        for (int k = 0; k < kN; ++k) acc += ps[r * (kN + 1) + k] * vs[k * lay.ld + c];
        o[i] = acc;
      }
    }
  }
  l += shfl_xor(l, 1);
  l += shfl_xor(l, 2);
  l += shfl_xor(l, 4);
  if (row < p.nq) {
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const bool res = residual_row(p, row);
    T* out = static_cast<T*>(p.out) + (int64_t(bh) * p.nq + row) * d;
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int c = j + 8 * i;
      if (c < d) {
        float v = o[i] * inv;
        if (res) v += Elem<T>::to_float(q_base[int64_t(row) * p.q_sn + c]);
        out[c] = Elem<T>::from_float(v);
      }
    }
    if (j == 0) p.lse[int64_t(bh) * p.nq + row] = l > 0.f ? (m + fast_log2(l)) * kLn2 : -inf();
  }
}

// ------------------------------------------------------------------ backward: dQ and d_rel_bias
template <typename T>
MV_GLOBAL void MV_LAUNCH_BOUNDS(Simt::kThreads, 1) simt_dq_kernel(const MV_GRID_CONSTANT Params p) {
  constexpr int kM = Simt::kBlockM, kN = Simt::kBlockN, kAcc = Simt::kMaxD / 8;
  const int d = p.head_dim;
  const Simt lay(Kernel::kDqSimt, d, p.bins);
  unsigned char* smem = dyn_smem();
  float* qs = reinterpret_cast<float*>(smem + lay.q);
  float* ks = reinterpret_cast<float*>(smem + lay.k);
  float* vs = reinterpret_cast<float*>(smem + lay.v);
  float* dos = reinterpret_cast<float*>(smem + lay.dout);
  float* ps = reinterpret_cast<float*>(smem + lay.p);
  I4* meta = reinterpret_cast<I4*>(smem + lay.meta);
  float* rel_bias_tile = reinterpret_cast<float*>(smem + lay.rel_bias);
  float* d_rel_bias_tile = reinterpret_cast<float*>(smem + lay.d_rel_bias);

  const int tid = thread_x(), r = tid >> 3, j = tid & 7;
  const int q_blocks = (p.nq + kM - 1) / kM;
  const int bh = block_x() / q_blocks, r0 = (block_x() - bh * q_blocks) * kM;
  const int b = bh / p.heads, h = bh - b * p.heads, row = r0 + r;
  const T* q_base = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* do_base = static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * d;
  simt_load_rows<T>(qs, lay.ld, q_base, p.q_sn, r0, p.nq, d);
  simt_load_rows<T>(dos, lay.ld, do_base, d, r0, p.nq, d);
  const bool has_rel_bias = p.rel_bias != nullptr;
  if (has_rel_bias) {
    simt_load_rel_bias(rel_bias_tile, p, bh, r0);
    for (int i = tid; i < kM * lay.rel_bias_ld; i += Simt::kThreads) d_rel_bias_tile[i] = 0.f;
  }
  const float* rel_bias_row = has_rel_bias ? rel_bias_tile + r * lay.rel_bias_ld : nullptr;
  const bool row_ok = row < p.nq;
  const float lse2 = row_ok ? p.lse2[int64_t(bh) * p.nq + row] : inf();
  const float delta = row_ok ? p.delta[int64_t(bh) * p.nq + row] : 0.f;

  float dq[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) dq[i] = 0.f;
  for (int key0 = 0; key0 < p.nk; key0 += kN) {
    block_sync();
    simt_load_kv<T>(ks, vs, lay.ld, p, b, h, key0);
    simt_key_meta(meta, p, key0);
    block_sync();
#pragma unroll
    for (int u = 0; u < kN / 8; ++u) {
      const int c = j + 8 * u;
      const float x = simt_logit(p, qs + r * lay.ld, ks + c * lay.ld, rel_bias_row, meta[c], b, h, row, key0 + c);
      const float pv = fast_exp2(x - lse2);
      float dp = 0.f;
      for (int k = 0; k < d; ++k) dp += dos[r * lay.ld + k] * vs[c * lay.ld + k];
      ps[r * (kN + 1) + c] = pv * (dp - delta);
    }
    warp_sync();
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int c = j + 8 * i;
      if (c < d) {
        float acc = dq[i];
        for (int k = 0; k < kN; ++k) acc += ps[r * (kN + 1) + k] * ks[k * lay.ld + c];
        dq[i] = acc;
      }
    }
    if (has_rel_bias) {  // thread j owns the row's bins = j mod 8: no two threads add to one entry
      float* db = d_rel_bias_tile + r * lay.rel_bias_ld;
      for (int k = 0; k < kN; ++k) {
        const float v = ps[r * (kN + 1) + k];
        const I4 mk = meta[k];
        if (mk.x < p.bins && (mk.x & 7) == j) db[mk.x] += v;
        if (mk.y < p.bins && (mk.y & 7) == j) db[mk.y] += v;
        if (mk.z < p.bins && (mk.z & 7) == j) db[mk.z] += v;
      }
    }
  }
  if (row_ok) {
    const bool res = residual_row(p, row);
    T* out = static_cast<T*>(p.dq) + (int64_t(bh) * p.nq + row) * d;
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int c = j + 8 * i;
      if (c < d) out[c] = Elem<T>::from_float(dq[i] * p.scale + (res ? dos[r * lay.ld + c] : 0.f));
    }
  }
  if (has_rel_bias) {
    block_sync();
    const int rows = p.nq - r0 < kM ? p.nq - r0 : kM;
    for (int i = tid; i < rows * p.bins; i += Simt::kThreads) {
      const int rr = i / p.bins, c = i - rr * p.bins;
      p.d_rel_bias[(int64_t(bh) * p.nq + r0 + rr) * p.bins + c] = d_rel_bias_tile[rr * lay.rel_bias_ld + c];
    }
  }
}

// ------------------------------------------------------------------ backward: dK, dV
// CTA = 32 keys of one (batch, head), all query blocks; thread (key c = tid / 8, j = tid % 8).
template <typename T>
MV_GLOBAL void MV_LAUNCH_BOUNDS(Simt::kThreads, 1) simt_dkdv_kernel(const MV_GRID_CONSTANT Params p) {
  constexpr int kM = Simt::kBlockM, kN = Simt::kBlockN, kAcc = Simt::kMaxD / 8;
  const int d = p.head_dim;
  const Simt lay(Kernel::kDkvSimt, d, p.bins);
  unsigned char* smem = dyn_smem();
  float* qs = reinterpret_cast<float*>(smem + lay.q);
  float* ks = reinterpret_cast<float*>(smem + lay.k);
  float* vs = reinterpret_cast<float*>(smem + lay.v);
  float* dos = reinterpret_cast<float*>(smem + lay.dout);
  float* ps = reinterpret_cast<float*>(smem + lay.p);    // [key][query]
  float* dss = reinterpret_cast<float*>(smem + lay.ds);  // [key][query]
  I4* meta = reinterpret_cast<I4*>(smem + lay.meta);
  float* rel_bias_tile = reinterpret_cast<float*>(smem + lay.rel_bias);
  float* stats = reinterpret_cast<float*>(smem + lay.stats);  // lse2[32], delta[32]

  const int tid = thread_x(), c = tid >> 3, j = tid & 7;
  const int key_tiles = (p.nk + kN - 1) / kN;
  const int bh = block_x() / key_tiles, key0 = (block_x() - bh * key_tiles) * kN;
  const int b = bh / p.heads, h = bh - b * p.heads, key = key0 + c;
  const T* q_base = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* do_base = static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * d;
  const bool has_rel_bias = p.rel_bias != nullptr;
  simt_load_kv<T>(ks, vs, lay.ld, p, b, h, key0);
  simt_key_meta(meta, p, key0);

  float dk[kAcc], dv[kAcc];
#pragma unroll
  for (int i = 0; i < kAcc; ++i) dk[i] = dv[i] = 0.f;
  for (int r0 = 0; r0 < p.nq; r0 += kM) {
    block_sync();
    simt_load_rows<T>(qs, lay.ld, q_base, p.q_sn, r0, p.nq, d);
    simt_load_rows<T>(dos, lay.ld, do_base, d, r0, p.nq, d);
    if (has_rel_bias) simt_load_rel_bias(rel_bias_tile, p, bh, r0);
    for (int i = tid; i < kM; i += Simt::kThreads) {
      const bool ok = r0 + i < p.nq;
      stats[i] = ok ? p.lse2[int64_t(bh) * p.nq + r0 + i] : inf();
      stats[kM + i] = ok ? p.delta[int64_t(bh) * p.nq + r0 + i] : 0.f;
    }
    block_sync();
    const I4 mk = meta[c];
#pragma unroll
    for (int u = 0; u < kM / 8; ++u) {
      const int r = j + 8 * u;
      const float* rel_bias_row = has_rel_bias ? rel_bias_tile + r * lay.rel_bias_ld : nullptr;
      const float x = simt_logit(p, qs + r * lay.ld, ks + c * lay.ld, rel_bias_row, mk, b, h, r0 + r, key);
      const float pv = fast_exp2(x - stats[r]);
      float dp = 0.f;
      for (int k = 0; k < d; ++k) dp += dos[r * lay.ld + k] * vs[c * lay.ld + k];
      ps[c * (kM + 1) + r] = pv;
      dss[c * (kM + 1) + r] = pv * (dp - stats[kM + r]);
    }
    warp_sync();  // the key's 8 threads share a warp
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int col = j + 8 * i;
      if (col < d) {
        float a = dv[i], e = dk[i];
        for (int r = 0; r < kM; ++r) {
          a += ps[c * (kM + 1) + r] * dos[r * lay.ld + col];
          e += dss[c * (kM + 1) + r] * qs[r * lay.ld + col];
        }
        dv[i] = a;
        dk[i] = e;
      }
    }
  }
  if (key < p.nk) {
    const SegParams& sg = p.seg[segment_of(p, key)];
    const int64_t rowoff = (int64_t(bh) * sg.tokens + (key - sg.key_offset)) * d;
    T* dk_row = static_cast<T*>(sg.dk) + rowoff;
    T* dv_row = static_cast<T*>(sg.dv) + rowoff;
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const int col = j + 8 * i;
      if (col < d) {
        dk_row[col] = Elem<T>::from_float(dk[i] * p.scale);
        dv_row[col] = Elem<T>::from_float(dv[i]);
      }
    }
  }
}

}  // namespace cuda
}  // namespace memvit
