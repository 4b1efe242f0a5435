// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Forward kernel, FlashAttention-2 style on mma.sync m16n8k16 (bf16/fp16 in, fp32 accumulate).
//
// CTA = one (batch, head) and 128 query rows, 8 warps of 16 rows. Keys are streamed 64 at a
// time through a double-buffered shared K/V stage filled with cp.async, each key row read in
// place from its segment (no concatenation; a tile may span segments). Per tile:
//   S = Q K^T (Q fragments stay in registers)
//   x = S * scale*log2e + bias + mask       bias gathered from the CTA's rel_bias rows, staged
//                                           once in shared memory as [bin][row pair] (pre-scaled
//                                           by log2e): 3 eight-byte loads per column per thread
//   online softmax in base 2 (running max m, running sum l), P rounded to 16 bits
//   O += P V
// Epilogue: O / l + the residual q (not on the cls row when q_cls), lse = (m + log2 l) ln 2.
#pragma once

#include "common.cuh"

namespace memvit {
namespace cuda {

template <typename T, int D>
MV_GLOBAL void MV_LAUNCH_BOUNDS(FwdTc::kThreads, 1) fwd_tc_kernel(const MV_GRID_CONSTANT Params p) {
  constexpr int kM = FwdTc::kBlockM, kN = FwdTc::kBlockN, kThreads = FwdTc::kThreads;
  constexpr int kLd = FwdTc::kRelBiasLd, kRow = row_elems(D);
  constexpr int kKSteps = D / 16;  // k steps of Q K^T
  constexpr int kNT = kN / 8;      // n8 tiles of S
  constexpr int kDT = D / 8;       // n8 tiles of O
  static_assert(D % 16 == 0 && kDT % 2 == 0, "head dim must be a multiple of 16");
  static_assert(kM * kRow <= 2 * kN * kRow, "Q must fit in one K/V stage");

  const bool has_rel_bias = p.rel_bias != nullptr;
  const FwdTc lay(D, p.bins, has_rel_bias);
  unsigned char* smem = dyn_smem();
  T* kv = reinterpret_cast<T*>(smem + lay.kv);  // stage s: K at kv + s*2*kN*kRow, V after it
  I4* meta = reinterpret_cast<I4*>(smem + lay.meta);
  float* rel_bias_tab = reinterpret_cast<float*>(smem + lay.rel_bias);

  const int tid = thread_x(), warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int q_blocks = (p.nq + kM - 1) / kM;
  const int bh = block_x() / q_blocks;
  const int r0 = (block_x() - bh * q_blocks) * kM;
  const int b = bh / p.heads, h = bh - b * p.heads;
  const int n_tiles = (p.nk + kN - 1) / kN;
  const T* q_base = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;

  // Prologue: Q into stage 1, key tile 0 into stage 0, its metadata, the bias rows.
  T* q_stage = kv + 2 * kN * kRow;
  load_rows_async<T, D, kM, kThreads>(q_stage, q_base, p.q_sn, r0, p.nq);
  load_kv_async<T, D, kN, kThreads>(kv, kv + kN * kRow, p, b, h, 0);
  cp_async_commit();
  if (tid < kN) meta[tid] = key_meta(p, tid, kLd);
  if (has_rel_bias) stage_rel_bias_pairs<kM, kThreads, kLd>(rel_bias_tab, p, bh, r0);
  cp_async_wait<0>();
  block_sync();

  uint32_t qf[kKSteps][4];
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk) ldsm_x4(qf[kk], q_stage + (warp * 16 + (lane & 15)) * kRow + kk * 16 + (lane >> 4) * 8);

  float o[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m[2] = {-inf(), -inf()}, l[2] = {0.f, 0.f};
  const int row_a = r0 + warp * 16 + g, row_b = row_a + 8;
  const float* rel_bias_rows = rel_bias_tab + warp * 16 + 2 * g;

  for (int it = 0; it < n_tiles; ++it) {
    // Tile `it` has landed for every thread, and every thread is done with tile it-1, whose
    // stage the prefetch below overwrites (also the Q stage at it = 0).
    cp_async_wait<0>();
    block_sync();
    if (it + 1 < n_tiles) {
      const int st = (it + 1) & 1;
      T* ks_next = kv + st * 2 * kN * kRow;
      load_kv_async<T, D, kN, kThreads>(ks_next, ks_next + kN * kRow, p, b, h, (it + 1) * kN);
      cp_async_commit();
      if (tid < kN) meta[st * kN + tid] = key_meta(p, (it + 1) * kN + tid, kLd);
    }
    const T* ks = kv + (it & 1) * 2 * kN * kRow;
    const T* vs = ks + kN * kRow;
    const I4* mt = meta + (it & 1) * kN;

    float s[kNT][4];
#pragma unroll
    for (int i = 0; i < kNT; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int nt = 0; nt < kNT; nt += 2) {
        uint32_t bf[4];
        ldsm_x4(bf, ks + (nt * 8 + (lane >> 4) * 8 + (lane & 7)) * kRow + kk * 16 + ((lane >> 3) & 1) * 8);
        mma_16816<T>(s[nt], qf[kk], bf[0], bf[1]);
        mma_16816<T>(s[nt + 1], qf[kk], bf[2], bf[3]);
      }
    }

    // Logits in base 2 with bias and mask; keys past the end are -inf.
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = nt * 8 + 2 * t4 + e;
        const I4 mm = mt[col];
        float va = s[nt][e] * p.scale_log2, vb = s[nt][2 + e] * p.scale_log2;
        add_bias_and_mask(va, vb, mm, rel_bias_rows, has_rel_bias, p, b, h, row_a, row_b, it * kN + col);
        s[nt][e] = mm.w ? va : -inf();
        s[nt][2 + e] = mm.w ? vb : -inf();
      }
    }

    // Online softmax: rows g (i = 0) and g + 8 (i = 1); a row's 64 columns live on 4 lanes.
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      mx[0] = fmaxf(mx[0], fmaxf(s[nt][0], s[nt][1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[nt][2], s[nt][3]));
    }
    float base[2], alpha[2], rs[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], shfl_xor(mx[i], 1));
      mx[i] = fmaxf(mx[i], shfl_xor(mx[i], 2));
      base[i] = mx[i] == -inf() ? 0.f : mx[i];  // a row with no key yet: exp2(-inf - 0) = 0
      alpha[i] = fast_exp2(m[i] - base[i]);
      m[i] = mx[i];
    }
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[nt][j] = fast_exp2(s[nt][j] - base[j >> 1]);
        rs[j >> 1] += s[nt][j];
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) l[i] = l[i] * alpha[i] + rs[i];
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt) {
      o[dt][0] *= alpha[0];
      o[dt][1] *= alpha[0];
      o[dt][2] *= alpha[1];
      o[dt][3] *= alpha[1];
    }

    // O += P V: the S accumulators of n-tiles 2kk, 2kk+1 are the A fragment of k-step kk.
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
      uint32_t a[4];
      a[0] = Elem<T>::pack(s[2 * kk][0], s[2 * kk][1]);
      a[1] = Elem<T>::pack(s[2 * kk][2], s[2 * kk][3]);
      a[2] = Elem<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = Elem<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dt = 0; dt < kDT; dt += 2) {
        uint32_t bf[4];
        ldsm_x4_t(bf, vs + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * kRow + dt * 8 + (lane >> 4) * 8);
        mma_16816<T>(o[dt], a, bf[0], bf[1]);
        mma_16816<T>(o[dt + 1], a, bf[2], bf[3]);
      }
    }
  }

  // Epilogue.
  T* out = static_cast<T*>(p.out) + int64_t(bh) * p.nq * D;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += shfl_xor(l[i], 1);
    l[i] += shfl_xor(l[i], 2);
    const int row = i == 0 ? row_a : row_b;
    if (row < p.nq) {
      const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
      const bool res = residual_row(p, row);
      const T* q_row = q_base + row * p.q_sn;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        const int col = dt * 8 + 2 * t4;
        float v0 = o[dt][2 * i] * inv, v1 = o[dt][2 * i + 1] * inv;
        if (res) {
          v0 += Elem<T>::to_float(q_row[col]);
          v1 += Elem<T>::to_float(q_row[col + 1]);
        }
        store_pair<T>(out + int64_t(row) * D + col, v0, v1);
      }
      if (t4 == 0) p.lse[int64_t(bh) * p.nq + row] = l[i] > 0.f ? (m[i] + fast_log2(l[i])) * kLn2 : -inf();
    }
  }
}

}  // namespace cuda
}  // namespace memvit
