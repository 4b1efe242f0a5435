// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// A CPU emulator for the CUDA kernels of this directory, for checking them where there is no
// GPU. Each CUDA thread of a block runs as a fiber (ucontext) on one OS thread; barriers,
// warp shuffles, ldmatrix and mma.sync are warp/block rendezvous implemented from the PTX
// ISA's fragment layouts; cp.async copies are queued per thread and performed at
// cp.async.wait_group (so a read before the wait sees stale shared memory). Shared memory
// starts as 0xFF bytes (NaN) so unwritten reads show. Blocks run one after another; threads
// run in forward or reverse order (set_schedule) to expose missing barriers.
//
// It checks indexing, fragment layouts, barriers placement and the arithmetic, not timing,
// not memory-model subtleties, and not the inline PTX itself.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

struct alignas(8) float2 {  // CUDA's vector type
  float x, y;
};

namespace emu {

struct BF16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};

inline float to_float(BF16 x) {
  const uint32_t u = uint32_t(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline BF16 to_bf16(float f) { return BF16{c10::BFloat16(f).x}; }  // round to nearest even
inline float to_float(F16 x) { return float(c10::Half(x.bits, c10::Half::from_bits())); }
inline F16 to_f16(float f) { return F16{c10::Half(f).x}; }

int thread_index();
int block_index();
int grid_size();
void sync_threads();
void sync_warp();
float shfl_xor(float v, int mask);
void* shared_memory();
void cp_async(void* dst, const void* src, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int pending);
void ldmatrix_x4(uint32_t (&r)[4], const void* p, bool trans);
void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, bool bf16);

// Runs `body` as every thread of every block of a 1-D grid.
void launch(long long grid, int threads, size_t smem, const std::function<void()>& body);
// 0: threads resume in index order; 1: in reverse order.
void set_schedule(int order);

}  // namespace emu
