// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Backward, key-tile major: dK and dV (tensor cores, deterministic).
//
// CTA = one (batch, head), 128 keys (8 warps x 16 keys) and one split of the query axis. The
// CTA's K and V rows sit in shared memory; query blocks (Q, dO, their rel_bias rows, lse2,
// delta) are streamed through two stages. Computed transposed, keys as the mma M dimension,
// so that P^T and dS^T come out of the accumulators as A fragments with no shared-memory trip:
//   S^T = K Q^T, P^T = exp2(S^T scale log2e + bias + mask - lse2)
//   dV += P^T dO,  dP^T = V dO^T,  dS^T = P^T (dP^T - delta),  dK += dS^T Q
// A thread owns two keys for the whole kernel, so their three bin columns are fixed; the
// query block's bias rows are staged transposed ([bin][query], 4-byte cp.async, natural
// units), so one 8-byte load gives the thread's two query columns. With one split the CTA writes dK, dV into the
// segments' gradients; with several, float32 partials that a reduction adds in a fixed order.
#pragma once

#include "common.cuh"

namespace memvit {
namespace cuda {

// Query block qb of pair bh -> one stage: Q, dO rows; rel_bias rows transposed; lse2, delta.
template <typename T, int D, int kQ>
MV_DEVICE void dkv_load_qblock(const Params& p, const DkvTc& lay, unsigned char* smem, int stage, int bh, int b,
                               int h, int qb) {
  constexpr int kThreads = DkvTc::kThreads, kRow = row_elems(D);
  const int tid = thread_x();
  const int q0 = qb * kQ;
  T* qs = reinterpret_cast<T*>(smem + lay.qs + stage * lay.qstage);
  T* dos = qs + kQ * kRow;
  const T* q_base = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* do_base = static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * D;
  load_rows_async<T, D, kQ, kThreads>(qs, q_base, p.q_sn, q0, p.nq);
  load_rows_async<T, D, kQ, kThreads>(dos, do_base, D, q0, p.nq);
  if (p.rel_bias != nullptr) {
    // Warp w copies query rows w, w+8, ...; lane l bins l, l+32, ... (coalesced global reads).
    float* bt = reinterpret_cast<float*>(smem + lay.rel_bias + stage * lay.rel_bias_stage);
    const int warp = tid >> 5, lane = tid & 31;
    const float* src = p.rel_bias + (int64_t(bh) * p.nq + q0) * p.bins;
    for (int bin = lane; bin < p.bins; bin += 32) {
#pragma unroll
      for (int r = warp; r < kQ; r += DkvTc::kWarps) {
        const bool ok = q0 + r < p.nq;
        cp_async_4(bt + bin * lay.rel_bias_ld + r, ok ? src + r * p.bins + bin : p.rel_bias, ok);
      }
    }
  }
  float* stats = reinterpret_cast<float*>(smem + lay.stats) + stage * 2 * kQ;
  if (tid < 2 * kQ) {
    const int r = tid % kQ;
    const bool ok = q0 + r < p.nq;
    const float* src = (tid < kQ ? p.lse2 : p.delta) + int64_t(bh) * p.nq + q0 + r;
    cp_async_4(stats + tid, ok ? src : p.delta, ok);
  }
}

template <typename T, int D>
MV_GLOBAL void MV_LAUNCH_BOUNDS(DkvTc::kThreads, 1) dkdv_tc_kernel(const MV_GRID_CONSTANT Params p) {
  constexpr int kN = DkvTc::kBlockN, kThreads = DkvTc::kThreads, kQ = DkvTc::block_q(D);
  constexpr int kRow = row_elems(D);
  constexpr int kKSteps = D / 16, kQT = kQ / 8, kDT = D / 8;

  const bool has_rel_bias = p.rel_bias != nullptr;
  const DkvTc lay(D, p.bins, has_rel_bias);
  unsigned char* smem = dyn_smem();
  T* ks = reinterpret_cast<T*>(smem + lay.kv);
  T* vs = ks + kN * kRow;

  const int tid = thread_x(), warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int key_tiles = (p.nk + kN - 1) / kN;
  const int split = block_x() % p.splits;
  const int kt = (block_x() / p.splits) % key_tiles;
  const int bh = block_x() / (p.splits * key_tiles);
  const int b = bh / p.heads, h = bh - b * p.heads;
  const int q_blocks = (p.nq + kQ - 1) / kQ;
  const int qb_begin = int(int64_t(split) * q_blocks / p.splits);
  const int qb_end = int(int64_t(split + 1) * q_blocks / p.splits);
  const int key0 = kt * kN;

  load_kv_async<T, D, kN, kThreads>(ks, vs, p, b, h, key0);
  if (qb_begin < qb_end) dkv_load_qblock<T, D, kQ>(p, lay, smem, 0, bh, b, h, qb_begin);
  cp_async_commit();
  if (has_rel_bias) {  // the zero row `bins` of both stages (cls keys, missing axes); copies never touch it
    for (int i = tid; i < 2 * kQ; i += kThreads) {
      float* bt = reinterpret_cast<float*>(smem + lay.rel_bias + (i / kQ) * lay.rel_bias_stage);
      bt[p.bins * lay.rel_bias_ld + i % kQ] = 0.f;
    }
  }

  // This thread's two keys (rows g and g+8 of its warp's 16): validity and bin offsets.
  const int key_a = key0 + warp * 16 + g, key_b = key_a + 8;
  const bool valid_a = key_a < p.nk, valid_b = key_b < p.nk;
  int off[2][3];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const KeyBins kb = has_rel_bias ? key_bins(p, i == 0 ? key_a : key_b) : KeyBins{-1, -1, -1};
    off[i][0] = (kb.t >= 0 ? kb.t : p.bins) * lay.rel_bias_ld + 2 * t4;
    off[i][1] = (kb.h >= 0 ? kb.h : p.bins) * lay.rel_bias_ld + 2 * t4;
    off[i][2] = (kb.w >= 0 ? kb.w : p.bins) * lay.rel_bias_ld + 2 * t4;
  }

  float dk[kDT][4], dv[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i) {
    dk[i][0] = dk[i][1] = dk[i][2] = dk[i][3] = 0.f;
    dv[i][0] = dv[i][1] = dv[i][2] = dv[i][3] = 0.f;
  }

  for (int qb = qb_begin; qb < qb_end; ++qb) {
    cp_async_wait<0>();
    block_sync();
    const int st = (qb - qb_begin) & 1;
    if (qb + 1 < qb_end) {
      dkv_load_qblock<T, D, kQ>(p, lay, smem, st ^ 1, bh, b, h, qb + 1);
      cp_async_commit();
    }
    const T* qs = reinterpret_cast<const T*>(smem + lay.qs + st * lay.qstage);
    const T* dos = qs + kQ * kRow;
    const float* bt = reinterpret_cast<const float*>(smem + lay.rel_bias + st * lay.rel_bias_stage);
    const float* lse2 = reinterpret_cast<const float*>(smem + lay.stats) + st * 2 * kQ;
    const float* delta = lse2 + kQ;
    const int q0 = qb * kQ;

    // S^T = K Q^T and dP^T = V dO^T (A: the warp's 16 keys; B: query rows, n = query).
    float s[kQT][4], dp[kQT][4];
#pragma unroll
    for (int i = 0; i < kQT; ++i) {
      s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
      dp[i][0] = dp[i][1] = dp[i][2] = dp[i][3] = 0.f;
    }
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t kf[4], vf[4];
      const int a_off = (warp * 16 + (lane & 15)) * kRow + kk * 16 + (lane >> 4) * 8;
      ldsm_x4(kf, ks + a_off);
      ldsm_x4(vf, vs + a_off);
#pragma unroll
      for (int nt = 0; nt < kQT; nt += 2) {
        const int off_b = (nt * 8 + (lane >> 4) * 8 + (lane & 7)) * kRow + kk * 16 + ((lane >> 3) & 1) * 8;
        uint32_t bf[4];
        ldsm_x4(bf, qs + off_b);
        mma_16816<T>(s[nt], kf, bf[0], bf[1]);
        mma_16816<T>(s[nt + 1], kf, bf[2], bf[3]);
        ldsm_x4(bf, dos + off_b);
        mma_16816<T>(dp[nt], vf, bf[0], bf[1]);
        mma_16816<T>(dp[nt + 1], vf, bf[2], bf[3]);
      }
    }

    // P^T (rows: keys a, b; columns: queries q0 + nt*8 + 2*t4 + e), then dS^T in place.
    float pt[kQT][4];
#pragma unroll
    for (int nt = 0; nt < kQT; ++nt) {
      const int qi = nt * 8 + 2 * t4;
      const float2 l2 = *reinterpret_cast<const float2*>(lse2 + qi);
      const float2 dl = *reinterpret_cast<const float2*>(delta + qi);
#pragma unroll
      for (int i = 0; i < 2; ++i) {  // key a (i = 0) or b
        float x0 = s[nt][2 * i] * p.scale_log2, x1 = s[nt][2 * i + 1] * p.scale_log2;
        if (has_rel_bias) {
          const float2 bt0 = *reinterpret_cast<const float2*>(bt + off[i][0] + nt * 8);
          const float2 bt1 = *reinterpret_cast<const float2*>(bt + off[i][1] + nt * 8);
          const float2 bt2 = *reinterpret_cast<const float2*>(bt + off[i][2] + nt * 8);
          x0 += (bt0.x + bt1.x + bt2.x) * kLog2e;  // staged as copied: natural units
          x1 += (bt0.y + bt1.y + bt2.y) * kLog2e;
        }
        const bool key_ok = i == 0 ? valid_a : valid_b;
        const int key = i == 0 ? key_a : key_b;
        const bool ok0 = key_ok && q0 + qi < p.nq, ok1 = key_ok && q0 + qi + 1 < p.nq;
        if (p.mask != nullptr) {
          if (ok0) x0 += mask_at(p, b, h, q0 + qi, key) * kLog2e;
          if (ok1) x1 += mask_at(p, b, h, q0 + qi + 1, key) * kLog2e;
        }
        const float p0 = ok0 ? fast_exp2(x0 - l2.x) : 0.f;
        const float p1 = ok1 ? fast_exp2(x1 - l2.y) : 0.f;
        pt[nt][2 * i] = p0;
        pt[nt][2 * i + 1] = p1;
        s[nt][2 * i] = p0 * (dp[nt][2 * i] - dl.x);
        s[nt][2 * i + 1] = p1 * (dp[nt][2 * i + 1] - dl.y);
      }
    }

    // dV += P^T dO and dK += dS^T Q (B: query rows as k, transposed ldmatrix).
#pragma unroll
    for (int kq = 0; kq < kQ / 16; ++kq) {
      uint32_t pf[4], sf[4];
      pf[0] = Elem<T>::pack(pt[2 * kq][0], pt[2 * kq][1]);
      pf[1] = Elem<T>::pack(pt[2 * kq][2], pt[2 * kq][3]);
      pf[2] = Elem<T>::pack(pt[2 * kq + 1][0], pt[2 * kq + 1][1]);
      pf[3] = Elem<T>::pack(pt[2 * kq + 1][2], pt[2 * kq + 1][3]);
      sf[0] = Elem<T>::pack(s[2 * kq][0], s[2 * kq][1]);
      sf[1] = Elem<T>::pack(s[2 * kq][2], s[2 * kq][3]);
      sf[2] = Elem<T>::pack(s[2 * kq + 1][0], s[2 * kq + 1][1]);
      sf[3] = Elem<T>::pack(s[2 * kq + 1][2], s[2 * kq + 1][3]);
#pragma unroll
      for (int dt = 0; dt < kDT; dt += 2) {
        const int off_t = (kq * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * kRow + dt * 8 + (lane >> 4) * 8;
        uint32_t bf[4];
        ldsm_x4_t(bf, dos + off_t);
        mma_16816<T>(dv[dt], pf, bf[0], bf[1]);
        mma_16816<T>(dv[dt + 1], pf, bf[2], bf[3]);
        ldsm_x4_t(bf, qs + off_t);
        mma_16816<T>(dk[dt], sf, bf[0], bf[1]);
        mma_16816<T>(dk[dt + 1], sf, bf[2], bf[3]);
      }
    }
  }
  cp_async_wait<0>();  // an empty split still issued its K/V copies

  // Epilogue.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int key = i == 0 ? key_a : key_b;
    if (key >= p.nk) continue;
    if (p.splits == 1) {
      const int sidx = segment_of(p, key);
      const SegParams& sg = p.seg[sidx];
      const int64_t row = (int64_t(bh) * sg.tokens + (key - sg.key_offset)) * D;
      T* dk_row = static_cast<T*>(sg.dk) + row;
      T* dv_row = static_cast<T*>(sg.dv) + row;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        const int col = dt * 8 + 2 * t4;
        store_pair<T>(dk_row + col, dk[dt][2 * i] * p.scale, dk[dt][2 * i + 1] * p.scale);
        store_pair<T>(dv_row + col, dv[dt][2 * i], dv[dt][2 * i + 1]);
      }
    } else {
      const int64_t pairs = int64_t(p.batch) * p.heads;
      const int64_t slab = pairs * p.nk * D;  // one split of dK (or dV)
      float* dk_row = p.dkv_partial + split * slab + (int64_t(bh) * p.nk + key) * D;
      float* dv_row = dk_row + p.splits * slab;
#pragma unroll
      for (int dt = 0; dt < kDT; ++dt) {
        const int col = dt * 8 + 2 * t4;
        *reinterpret_cast<float2*>(dk_row + col) = float2{dk[dt][2 * i] * p.scale, dk[dt][2 * i + 1] * p.scale};
        *reinterpret_cast<float2*>(dv_row + col) = float2{dv[dt][2 * i], dv[dt][2 * i + 1]};
      }
    }
  }
}

// dK, dV = sum over splits of the float32 partials, in split order, into the segments'
// gradients. One thread per 4 elements.
template <typename T>
MV_GLOBAL void MV_LAUNCH_BOUNDS(DkvReduce::kThreads, 1) dkdv_reduce_kernel(const MV_GRID_CONSTANT Params p) {
  const int d = p.head_dim;
  const int64_t pairs = int64_t(p.batch) * p.heads;
  const int64_t slab = pairs * p.nk * d;
  const int64_t quads = 2 * slab / 4;
  const int64_t stride = int64_t(grid_x()) * DkvReduce::kThreads;
  for (int64_t i = int64_t(block_x()) * DkvReduce::kThreads + thread_x(); i < quads; i += stride) {
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
