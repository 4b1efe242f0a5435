// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Tile shapes and shared-memory layouts of every kernel, visible to the host (launch
// configuration, shared-memory checks against the device's opt-in limit) and to the kernels.
#pragma once

#include <cstddef>

#include "kernel_table.h"

#if defined(__CUDACC__)
#define MV_HD __host__ __device__ __forceinline__
#else
#define MV_HD inline
#endif

namespace memvit {
namespace cuda {

MV_HD constexpr size_t align16(size_t x) { return (x + 15) / 16 * 16; }
MV_HD constexpr int round_up(int x, int m) { return (x + m - 1) / m * m; }

// bf16/fp16 tiles in shared memory have rows of D + 8 elements: the 16-byte pad puts the 8
// rows an ldmatrix reads on 8 distinct groups of 4 banks for D = 64, 96, 128.
MV_HD constexpr int row_elems(int d) { return d + 8; }

// ------------------------------------------------------------------ forward (tensor cores)
// CTA: 8 warps x 16 query rows; keys streamed 64 at a time, double buffered. Q is staged in
// the second K/V stage (128 rows == 2 x 64), then held in registers.
struct FwdTc {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockM = 16 * kWarps;
  static constexpr int kBlockN = 64;
  // Bias table in shared memory: [bin][row pair] floats. Rows r and r+8 of a warp are
  // adjacent (one 8-byte load serves both rows of an mma fragment); a row stride = 4 mod 16
  // words keeps the 4 column groups of a warp on distinct banks.
  static constexpr int kRelBiasLd = kBlockM + 4;

  size_t stage = 0, kv = 0, meta = 0, rel_bias = 0, total = 0;
  MV_HD FwdTc(int d, int bins, bool has_rel_bias) {
    stage = size_t(2) * kBlockN * row_elems(d) * 2;  // K + V, 2-byte elements
    kv = 0;
    meta = kv + 2 * stage;
    rel_bias = meta + 2 * kBlockN * 16;
    total = rel_bias + (has_rel_bias ? align16(size_t(bins + 1) * kRelBiasLd * 4) : 0);
  }
};

// ------------------------------------------------------------------ backward dQ (tensor cores)
// Query-tile major: CTA = 4 warps x 16 query rows, keys streamed 64 (head dim 128: 32) at a
// time. Produces dQ and the rel_bias gradient rows of its queries (no atomics: every
// (row, bin) has one owner). Q and dO are staged across both K/V stages before tile 0 loads.
struct DqTc {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockM = 16 * kWarps;
  static constexpr int kRelBiasLd = kBlockM + 4;
  // Smaller key tiles at head dim 128 keep S, dP, Q, dO and dQ in 255 registers.
  MV_HD static constexpr int block_n(int d) { return d <= 96 ? 64 : 32; }

  int bn = 0, bins16 = 0, oh_ld = 0, db_ld = 0;
  size_t stage = 0, kv = 0, meta = 0, onehot = 0, rel_bias = 0, d_rel_bias = 0, total = 0;
  MV_HD DqTc(int d, int bins, bool has_rel_bias) {
    bn = block_n(d);
    bins16 = round_up(bins, 16);
    oh_ld = bins16 + 8;  // one-hot rows: 16-byte pad for ldmatrix
    db_ld = bins16 + 8;  // d_rel_bias rows: = 8 mod 16 words, conflict-free float2 updates
    stage = size_t(2) * bn * row_elems(d) * 2;  // K + V
    kv = 0;
    meta = kv + 2 * stage;
    onehot = meta + 2 * bn * 16;
    rel_bias = onehot + (has_rel_bias ? align16(size_t(2) * bn * oh_ld * 2) : 0);
    d_rel_bias = rel_bias + (has_rel_bias ? align16(size_t(bins + 1) * kRelBiasLd * 4) : 0);
    total = d_rel_bias + (has_rel_bias ? align16(size_t(kBlockM) * db_ld * 4) : 0);
  }
};

// ------------------------------------------------------------------ backward dK/dV (tensor cores)
// Key-tile major: CTA = 8 warps x 16 keys; query blocks of kBlockQ rows streamed (double
// buffered) over one split of the query axis.
struct DkvTc {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockN = 16 * kWarps;
  MV_HD static constexpr int block_q(int d) { return d <= 96 ? 64 : 32; }

  int bq = 0, rel_bias_ld = 0;
  size_t kv = 0, qstage = 0, qs = 0, rel_bias_stage = 0, rel_bias = 0, stats = 0, total = 0;
  MV_HD DkvTc(int d, int bins, bool has_rel_bias) {
    bq = block_q(d);
    rel_bias_ld = bq + 8;  // [bin][query] rows: = 8 mod 32 words, conflict-free 8-byte gathers
    kv = 0;
    qs = kv + size_t(2) * kBlockN * row_elems(d) * 2;  // K, V of the CTA's keys
    qstage = size_t(2) * bq * row_elems(d) * 2;        // Q + dO of one query block
    rel_bias = qs + 2 * qstage;
    rel_bias_stage = has_rel_bias ? align16(size_t(bins + 1) * rel_bias_ld * 4) : 0;
    stats = rel_bias + 2 * rel_bias_stage;
    total = stats + 2 * 2 * bq * 4;  // lse2 + delta, two stages
  }
};

// ------------------------------------------------------------------ backward pre-pass and dK/dV reduction
// The pre-pass runs one warp per query row; the reduction one thread per 4 elements.
struct Prepass {
  static constexpr int kThreads = 256;
  static constexpr int kRowsPerBlock = kThreads / 32;
};
struct DkvReduce {
  static constexpr int kThreads = 256;
};

// ------------------------------------------------------------------ SIMT kernels (any dtype)
// Float32 inputs, and the fallback when a tensor-core kernel's shared memory does not fit.
// Tiles of 32 query rows x 32 keys, 8 threads per row (or per key); everything in float32.
struct Simt {
  static constexpr int kThreads = 256;
  static constexpr int kBlockM = 32;
  static constexpr int kBlockN = 32;
  static constexpr int kMaxD = 128;  // 16 accumulators per thread

  int ld = 0, rel_bias_ld = 0;
  size_t q = 0, k = 0, v = 0, dout = 0, p = 0, ds = 0, meta = 0, rel_bias = 0, d_rel_bias = 0, stats = 0, total = 0;
  // kernel: kFwdSimt, kDqSimt or kDkvSimt
  MV_HD Simt(Kernel kernel, int d, int bins) {
    ld = d + 1;
    rel_bias_ld = bins + 1;  // column `bins` is zero (cls keys, missing axes)
    const size_t tile = align16(size_t(kBlockM) * ld * 4);
    q = 0;
    k = q + tile;
    v = k + tile;
    dout = v + tile;
    p = dout + (kernel == Kernel::kFwdSimt ? 0 : tile);
    const size_t ptile = align16(size_t(kBlockM) * (kBlockN + 1) * 4);
    ds = p + ptile;
    meta = ds + (kernel == Kernel::kDkvSimt ? ptile : 0);
    rel_bias = meta + kBlockN * 16;
    d_rel_bias = rel_bias + (bins > 0 ? align16(size_t(kBlockM) * rel_bias_ld * 4) : 0);
    stats = d_rel_bias + (kernel == Kernel::kDqSimt && bins > 0 ? align16(size_t(kBlockM) * rel_bias_ld * 4) : 0);
    total = stats + 2 * kBlockM * 4;
  }
};

}  // namespace cuda
}  // namespace memvit
