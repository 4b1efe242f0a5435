// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Backward, query-tile major: dQ and the rel_bias gradient (tensor cores, deterministic).
//
// CTA = one (batch, head) and 64 query rows (4 warps x 16). Per key tile (64 keys, 32 at head
// dim 128; double buffered, read in place from the segments):
//   S = Q K^T, x = S scale log2e + bias + mask, P = exp2(x - lse2)    (lse2 from the pre-pass)
//   dP = dO V^T, dS = P (dP - delta)                                 (delta from delta_tc_kernel)
//   dQ += dS K                                                       (registers)
//   d_rel_bias[row, bin] += sum over the tile's keys of dS[row, key] * onehot[key, bin]
// The last product runs on the tensor cores (dS split into a 16-bit value and its rounding
// residue, so the bias gradient keeps about float32 accuracy) against a one-hot tile built in shared memory per
// key tile (count of the key's t, h, w bins per column). Its accumulator fragment gives every
// (row, bin) to exactly one thread, which adds it into a shared float32 table: no atomics,
// and tiles are added in a fixed order, so two runs give identical bits.
#pragma once

#include "common.cuh"

namespace memvit {
namespace cuda {

//
// delta_tc_kernel is the same loop stopped after P and dP: delta = sum over keys of P dP, the
// softmax-gradient row term, in float32 from the recomputed P, exactly as the CPU kernel takes
// it. The pre-pass's dO . (out - residual) reads the 16-bit `out`, and subtracting the residual
// from it cancels: up to ~1e-2 relative error in the bias gradient, whose bin sums cancel again.
// Costs the two products S and dP once more per tile.

// Metadata and one-hot rows of keys [key0, key0 + kN) (threads < kN, one key each).
template <typename T, int kN, int kLd>
MV_DEVICE void dq_key_tile_info(const Params& p, int key0, I4* meta, T* onehot, int oh_ld, int bins16,
                                bool need_onehot) {
  const int tid = thread_x();
  if (tid >= kN) return;
  const int key = key0 + tid;
  meta[tid] = key_meta(p, key, kLd);
  if (p.rel_bias == nullptr || !need_onehot) return;
  const KeyBins kb = key_bins(p, key);
  T* row = onehot + tid * oh_ld;
  for (int c = 0; c < bins16; c += 8) *reinterpret_cast<I4*>(row + c) = I4{0, 0, 0, 0};
  const int bins[3] = {kb.t, kb.h, kb.w};
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    if (bins[a] >= 0) {
      const int count = (bins[0] == bins[a]) + (bins[1] == bins[a]) + (bins[2] == bins[a]);
      row[bins[a]] = Elem<T>::from_float(float(count));
    }
  }
}

template <typename T, int D, bool kDeltaOnly>
MV_DEVICE void dq_tc_body(const Params& p) {
  constexpr int kM = DqTc::kBlockM, kN = DqTc::block_n(D), kThreads = DqTc::kThreads;
  constexpr int kLd = DqTc::kRelBiasLd, kRow = row_elems(D);
  constexpr int kKSteps = D / 16, kNT = kN / 8, kDT = D / 8;
  static_assert(2 * kM * kRow <= 2 * (2 * kN * kRow), "Q and dO must fit in the two K/V stages");

  const bool has_rel_bias = p.rel_bias != nullptr;
  const DqTc lay(D, p.bins, has_rel_bias);
  unsigned char* smem = dyn_smem();
  T* kv = reinterpret_cast<T*>(smem + lay.kv);
  I4* meta = reinterpret_cast<I4*>(smem + lay.meta);
  T* onehot = reinterpret_cast<T*>(smem + lay.onehot);
  float* rel_bias_tab = reinterpret_cast<float*>(smem + lay.rel_bias);
  float* d_rel_bias_tab = reinterpret_cast<float*>(smem + lay.d_rel_bias);

  const int tid = thread_x(), warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int q_blocks = (p.nq + kM - 1) / kM;
  const int bh = block_x() / q_blocks;
  const int r0 = (block_x() - bh * q_blocks) * kM;
  const int b = bh / p.heads, h = bh - b * p.heads;
  const int n_tiles = (p.nk + kN - 1) / kN;
  const T* q_base = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* do_base = static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * D;

  // Prologue: Q and dO across the K/V stages, to registers; then key tile 0 into stage 0.
  T* q_stage = kv;
  T* do_stage = q_stage + kM * kRow;
  load_rows_async<T, D, kM, kThreads>(q_stage, q_base, p.q_sn, r0, p.nq);
  load_rows_async<T, D, kM, kThreads>(do_stage, do_base, D, r0, p.nq);
  cp_async_commit();
  dq_key_tile_info<T, kN, kLd>(p, 0, meta, onehot, lay.oh_ld, lay.bins16, !kDeltaOnly);
  if (has_rel_bias) {
    stage_rel_bias_pairs<kM, kThreads, kLd>(rel_bias_tab, p, bh, r0);
    if (!kDeltaOnly)
      for (int i = tid; i < kM * lay.db_ld; i += kThreads) d_rel_bias_tab[i] = 0.f;
  }
  const int row_a = r0 + warp * 16 + g, row_b = row_a + 8;
  float lse2[2], delta[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = i == 0 ? row_a : row_b;
    const bool ok = row < p.nq;
    lse2[i] = ok ? p.lse2[int64_t(bh) * p.nq + row] : inf();  // rows past the end: P = 0
    delta[i] = ok && !kDeltaOnly ? p.delta[int64_t(bh) * p.nq + row] : 0.f;
  }
  cp_async_wait<0>();
  block_sync();

  uint32_t qf[kKSteps][4], dof[kKSteps][4];
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk) {
    const int off = (warp * 16 + (lane & 15)) * kRow + kk * 16 + (lane >> 4) * 8;
    ldsm_x4(qf[kk], q_stage + off);
    ldsm_x4(dof[kk], do_stage + off);
  }
  block_sync();  // every warp has its fragments: the stages are free for K/V
  load_kv_async<T, D, kN, kThreads>(kv, kv + kN * kRow, p, b, h, 0);
  cp_async_commit();

  float dq[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.f;
  float p_dp[2] = {0.f, 0.f};  // kDeltaOnly: this thread's part of sum P dP of rows a and b
  const float* rel_bias_rows = rel_bias_tab + warp * 16 + 2 * g;
  float* d_rel_bias_a = d_rel_bias_tab + (warp * 16 + g) * lay.db_ld + 2 * t4;
  float* d_rel_bias_b = d_rel_bias_a + 8 * lay.db_ld;

  for (int it = 0; it < n_tiles; ++it) {
    cp_async_wait<0>();
    block_sync();
    if (it + 1 < n_tiles) {
      const int st = (it + 1) & 1;
      T* ks_next = kv + st * 2 * kN * kRow;
      load_kv_async<T, D, kN, kThreads>(ks_next, ks_next + kN * kRow, p, b, h, (it + 1) * kN);
      cp_async_commit();
      dq_key_tile_info<T, kN, kLd>(p, (it + 1) * kN, meta + st * kN, onehot + st * kN * lay.oh_ld, lay.oh_ld,
                                   lay.bins16, !kDeltaOnly);
    }
    const T* ks = kv + (it & 1) * 2 * kN * kRow;
    const T* vs = ks + kN * kRow;
    const I4* mt = meta + (it & 1) * kN;
    const T* oh = onehot + (it & 1) * kN * lay.oh_ld;

    // S = Q K^T and dP = dO V^T share the B-operand addressing.
    float s[kNT][4], dp[kNT][4];
#pragma unroll
    for (int i = 0; i < kNT; ++i) {
      s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
      dp[i][0] = dp[i][1] = dp[i][2] = dp[i][3] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int nt = 0; nt < kNT; nt += 2) {
        const int off = (nt * 8 + (lane >> 4) * 8 + (lane & 7)) * kRow + kk * 16 + ((lane >> 3) & 1) * 8;
        uint32_t bf[4];
        ldsm_x4(bf, ks + off);
        mma_16816<T>(s[nt], qf[kk], bf[0], bf[1]);
        mma_16816<T>(s[nt + 1], qf[kk], bf[2], bf[3]);
        ldsm_x4(bf, vs + off);
        mma_16816<T>(dp[nt], dof[kk], bf[0], bf[1]);
        mma_16816<T>(dp[nt + 1], dof[kk], bf[2], bf[3]);
      }
    }

    // P = exp2(x - lse2); dS = P (dP - delta), kept in s.
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = nt * 8 + 2 * t4 + e;
        const I4 mm = mt[col];
        float va = s[nt][e] * p.scale_log2, vb = s[nt][2 + e] * p.scale_log2;
        add_bias_and_mask(va, vb, mm, rel_bias_rows, has_rel_bias, p, b, h, row_a, row_b, it * kN + col);
        const float pa = mm.w ? fast_exp2(va - lse2[0]) : 0.f;
        const float pb = mm.w ? fast_exp2(vb - lse2[1]) : 0.f;
        if (kDeltaOnly) {
          p_dp[0] += pa * dp[nt][e];
          p_dp[1] += pb * dp[nt][2 + e];
        } else {
          s[nt][e] = pa * (dp[nt][e] - delta[0]);
          s[nt][2 + e] = pb * (dp[nt][2 + e] - delta[1]);
        }
      }
    }
    if (kDeltaOnly) continue;

    // dS as A fragments (k = keys). For the bias gradient also the rounding residue
    // dS - round16(dS): summing dS over a bin cancels most of it (a row of dS sums to 0), so
    // the 16-bit rounding of dS alone would cost ~1% relative error there; hi + lo keeps ~2^-16.
    uint32_t dsf[kN / 16][4], dsl[kN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float* src = s[2 * kk + (r >> 1)] + 2 * (r & 1);
        dsf[kk][r] = Elem<T>::pack(src[0], src[1]);
        dsl[kk][r] = Elem<T>::pack(src[0] - Elem<T>::to_float(Elem<T>::from_float(src[0])),
                                   src[1] - Elem<T>::to_float(Elem<T>::from_float(src[1])));
      }
    }

    // dQ += dS K (K as a k = key, n = d operand: transposed ldmatrix).
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
#pragma unroll
      for (int dt = 0; dt < kDT; dt += 2) {
        uint32_t bf[4];
        ldsm_x4_t(bf, ks + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * kRow + dt * 8 + (lane >> 4) * 8);
        mma_16816<T>(dq[dt], dsf[kk], bf[0], bf[1]);
        mma_16816<T>(dq[dt + 1], dsf[kk], bf[2], bf[3]);
      }
    }

    // d_rel_bias += dS onehot, 16 bins at a time, into this thread's own (row, bin) entries.
    if (has_rel_bias) {
      for (int c = 0; c < lay.bins16; c += 16) {
        float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
        for (int kk = 0; kk < kN / 16; ++kk) {
          uint32_t bf[4];
          ldsm_x4_t(bf, oh + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * lay.oh_ld + c + (lane >> 4) * 8);
          mma_16816<T>(acc[0], dsf[kk], bf[0], bf[1]);
          mma_16816<T>(acc[1], dsf[kk], bf[2], bf[3]);
          mma_16816<T>(acc[0], dsl[kk], bf[0], bf[1]);
          mma_16816<T>(acc[1], dsl[kk], bf[2], bf[3]);
        }
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          float2* pa = reinterpret_cast<float2*>(d_rel_bias_a + c + j * 8);
          float2* pb = reinterpret_cast<float2*>(d_rel_bias_b + c + j * 8);
          pa->x += acc[j][0];
          pa->y += acc[j][1];
          pb->x += acc[j][2];
          pb->y += acc[j][3];
        }
      }
    }
  }

  if (kDeltaOnly) {  // the four threads of a quad hold a row's columns: sum them in a fixed order
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      p_dp[i] += shfl_xor(p_dp[i], 1);
      p_dp[i] += shfl_xor(p_dp[i], 2);
      const int row = i == 0 ? row_a : row_b;
      if (t4 == 0 && row < p.nq) p.delta[int64_t(bh) * p.nq + row] = p_dp[i];
    }
    return;
  }

  // Epilogue: dQ = scale dS K + the residual's dO; d_rel_bias rows after a barrier (other threads'
  // entries).
  T* dq_out = static_cast<T*>(p.dq) + int64_t(bh) * p.nq * D;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = i == 0 ? row_a : row_b;
    if (row < p.nq) {
      const bool res = residual_row(p, row);
      const T* do_row = do_base + int64_t(row) * D;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        const int col = dt * 8 + 2 * t4;
        float v0 = dq[dt][2 * i] * p.scale, v1 = dq[dt][2 * i + 1] * p.scale;
        if (res) {
          v0 += Elem<T>::to_float(do_row[col]);
          v1 += Elem<T>::to_float(do_row[col + 1]);
        }
        store_pair<T>(dq_out + int64_t(row) * D + col, v0, v1);
      }
    }
  }
  if (has_rel_bias) {
    block_sync();
    const int bins = p.bins;
    const int rows = p.nq - r0 < kM ? p.nq - r0 : kM;
    float* dst = p.d_rel_bias + (int64_t(bh) * p.nq + r0) * bins;
    for (int i = tid; i < rows * bins; i += kThreads) {
      const int r = i / bins, bin = i - r * bins;
      dst[i] = d_rel_bias_tab[r * lay.db_ld + bin];
    }
  }
}

template <typename T, int D>
MV_GLOBAL void MV_LAUNCH_BOUNDS(DqTc::kThreads, 1) delta_tc_kernel(const MV_GRID_CONSTANT Params p) {
  dq_tc_body<T, D, true>(p);
}

template <typename T, int D>
MV_GLOBAL void MV_LAUNCH_BOUNDS(DqTc::kThreads, 1) dq_tc_kernel(const MV_GRID_CONSTANT Params p) {
  dq_tc_body<T, D, false>(p);
}

}  // namespace cuda
}  // namespace memvit
