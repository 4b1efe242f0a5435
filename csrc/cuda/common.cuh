// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Pieces shared by the kernels: where a key lives (segment, grid coordinates, rel_bias bins),
// tile loaders that read each segment in place, and the staging of per-query bias rows.
#pragma once

#include "device.cuh"

namespace memvit {
namespace cuda {

// Segment of key `key` on the concatenated key axis (segments are few; the loop reads the
// parameter block).
MV_DEVICE int segment_of(const Params& p, int key) {
  int s = 0;
  for (int i = 1; i < p.nseg; ++i) s += key >= p.seg[i].key_offset ? 1 : 0;
  return s;
}

// The rel_bias columns key `local` of segment s adds (-1: none). The bin rule written in
// pooling_attention.h (and key_bin_onehot in memvit_ext/rel_pos.py): cls first, then
// (t, h, w) raster order with w fastest.
struct KeyBins {
  int t, h, w;
};
MV_DEVICE KeyBins key_bins(const Params& p, int s, int local) {
  const SegParams& sg = p.seg[s];
  KeyBins kb{-1, -1, -1};
  if (local < sg.cls) return kb;
  const int g = local - sg.cls;
  const int hw = sg.h * sg.w;
  const int kt = g / hw;
  const int rem = g - kt * hw;
  const int kh = rem / sg.w;
  const int kw = rem - kh * sg.w;
  if (sg.bin[0] >= 0) kb.t = sg.bin[0] + kt;
  if (sg.bin[1] >= 0) kb.h = sg.bin[1] + kh;
  if (sg.bin[2] >= 0) kb.w = sg.bin[2] + kw;
  return kb;
}

MV_DEVICE KeyBins key_bins(const Params& p, int key) {
  if (key >= p.nk) return KeyBins{-1, -1, -1};
  const int s = segment_of(p, key);
  return key_bins(p, s, key - p.seg[s].key_offset);
}

// Per-key metadata of a key tile: offsets of its three bins in a [bin][ld] bias table (the
// zero column `bins` when the key has no bin on an axis) and whether the key exists.
MV_DEVICE I4 key_meta(const Params& p, int key, int ld) {
  const int zero = p.bins * ld;
  if (key >= p.nk) return I4{zero, zero, zero, 0};
  if (p.rel_bias == nullptr) return I4{0, 0, 0, 1};
  const KeyBins kb = key_bins(p, key);
  return I4{kb.t >= 0 ? kb.t * ld : zero, kb.h >= 0 ? kb.h * ld : zero, kb.w >= 0 ? kb.w * ld : zero, 1};
}

// rows [row0, row0 + kRows) of a (.., N, D) view with row stride sn -> shared rows of
// row_elems(D), zero rows past n. 16-byte cp.async; base and sn must be 16-byte aligned.
template <typename T, int D, int kRows, int kThreads>
MV_DEVICE void load_rows_async(T* dst, const T* base, int64_t sn, int row0, int n) {
  constexpr int kChunks = D / 8;
  constexpr int kTotal = kRows * kChunks;
  const int tid = thread_x();
#pragma unroll
  for (int i = 0; i < (kTotal + kThreads - 1) / kThreads; ++i) {
    const int c = tid + i * kThreads;
    if (kTotal % kThreads == 0 || c < kTotal) {
      const int r = c / kChunks, ch = c - r * kChunks;
      const bool ok = row0 + r < n;
      const T* src = ok ? base + int64_t(row0 + r) * sn + ch * 8 : base;
      cp_async_16(dst + r * row_elems(D) + ch * 8, src, ok);
    }
  }
}

// Keys [key0, key0 + kRows) of (batch b, head h) -> K and V tiles; each key row is read in
// place from its segment. Keys past the end are zero rows (their logits are masked; zero V
// rows keep 0 * garbage out of the P.V product).
template <typename T, int D, int kRows, int kThreads>
MV_DEVICE void load_kv_async(T* ks, T* vs, const Params& p, int b, int h, int key0) {
  constexpr int kChunks = D / 8;
  constexpr int kTotal = kRows * kChunks;
  const int tid = thread_x();
#pragma unroll
  for (int i = 0; i < (kTotal + kThreads - 1) / kThreads; ++i) {
    const int c = tid + i * kThreads;
    if (kTotal % kThreads == 0 || c < kTotal) {
      const int r = c / kChunks, ch = c - r * kChunks;
      const int key = key0 + r;
      const bool ok = key < p.nk;
      const int s = ok ? segment_of(p, key) : 0;
      const SegParams& sg = p.seg[s];
      const int64_t local = ok ? key - sg.key_offset : 0;
      const T* k = static_cast<const T*>(sg.k);
      const T* v = static_cast<const T*>(sg.v);
      const T* ksrc = ok ? k + b * sg.k_sb + h * sg.k_sh + local * sg.k_sn + ch * 8 : k;
      const T* vsrc = ok ? v + b * sg.v_sb + h * sg.v_sh + local * sg.v_sn + ch * 8 : v;
      cp_async_16(ks + r * row_elems(D) + ch * 8, ksrc, ok);
      cp_async_16(vs + r * row_elems(D) + ch * 8, vsrc, ok);
    }
  }
}

// Position of block row r in a [bin][pair] bias table: warp w's rows g and g+8 are adjacent.
MV_DEVICE int pair_pos(int r) { return (r & ~15) + ((r & 7) << 1) + ((r >> 3) & 1); }

// rel_bias rows [r0, r0 + kRows) of pair (b, h) -> table[bin * kLd + pair_pos(row)], scaled
// by log2(e) (the kernels work in base 2); rows past nq and the zero column `bins` are 0.
template <int kRows, int kThreads, int kLd>
MV_DEVICE void stage_rel_bias_pairs(float* table, const Params& p, int bh, int r0) {
  const int tid = thread_x();
  const int bins = p.bins;
  const float* src = p.rel_bias + (int64_t(bh) * p.nq + r0) * bins;
  const int rows = p.nq - r0 < kRows ? p.nq - r0 : kRows;
  const int valid = rows * bins;
  for (int i = tid; i < kRows * bins; i += kThreads) {
    const int r = i / bins, bin = i - r * bins;
    table[bin * kLd + pair_pos(r)] = i < valid ? src[i] * kLog2e : 0.f;
  }
  for (int r = tid; r < kRows; r += kThreads) table[bins * kLd + r] = 0.f;
}

MV_DEVICE bool residual_row(const Params& p, int row) { return p.residual && !(p.q_cls && row == 0); }

MV_DEVICE float mask_at(const Params& p, int b, int h, int row, int key) {
  return p.mask[b * p.m_sb + h * p.m_sh + row * p.m_sq + key * p.m_sk];
}

// Base-2 logits of one mma accumulator pair (rows row_a, row_b; one key): the scaled scores
// (already in va, vb) plus the key's three table entries (staged as [bin][row pair] floats, so
// one 8-byte load serves both rows) plus the mask. Shared by the forward and the dQ backward,
// which must recompute the very logits the forward normalised.
MV_DEVICE void add_bias_and_mask(float& va, float& vb, const I4& mm, const float* rel_bias_rows, bool has_rel_bias,
                                 const Params& p, int b, int h, int row_a, int row_b, int key) {
  if (has_rel_bias) {
    const float2 bt = *reinterpret_cast<const float2*>(rel_bias_rows + mm.x);
    const float2 bhh = *reinterpret_cast<const float2*>(rel_bias_rows + mm.y);
    const float2 bw = *reinterpret_cast<const float2*>(rel_bias_rows + mm.z);
    va += bt.x + bhh.x + bw.x;
    vb += bt.y + bhh.y + bw.y;
  }
  if (p.mask != nullptr && mm.w) {
    if (row_a < p.nq) va += mask_at(p, b, h, row_a, key) * kLog2e;
    if (row_b < p.nq) vb += mask_at(p, b, h, row_b, key) * kLog2e;
  }
}

template <typename T>
MV_DEVICE void store_pair(T* dst, float lo, float hi) {
  *reinterpret_cast<uint32_t*>(dst) = Elem<T>::pack(lo, hi);
}

}  // namespace cuda
}  // namespace memvit
