// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The few device primitives the kernels use (cp.async, ldmatrix, mma.sync, shuffles,
// barriers, exp2), written once for nvcc (inline PTX) and once for the CPU emulator in emu/
// (MEMVIT_CUDA_EMULATION), which runs the same kernel source one fiber per thread so that
// the indexing, the fragment layouts and the math can be checked without a GPU.
#pragma once

#include <cstdint>

#include "params.h"
#include "tiles.h"

#if defined(MEMVIT_CUDA_EMULATION)
#include <cmath>
#include "emu/emulator.h"
#define MV_DEVICE inline
#define MV_GLOBAL
#define MV_LAUNCH_BOUNDS(threads, blocks)
#define MV_GRID_CONSTANT
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define MV_DEVICE __device__ __forceinline__
#define MV_GLOBAL __global__
#define MV_LAUNCH_BOUNDS(threads, blocks) __launch_bounds__(threads, blocks)
#define MV_GRID_CONSTANT __grid_constant__
#endif

namespace memvit {
namespace cuda {

#if defined(MEMVIT_CUDA_EMULATION)
using bf16_t = emu::BF16;
using f16_t = emu::F16;
#else
using bf16_t = __nv_bfloat16;
using f16_t = __half;
#endif

// The device element type of each DType of the kernel table.
template <DType>
struct ElementOf;
#define MEMVIT_X(tag, scalar, name, type, tc) \
  template <>                                 \
  struct ElementOf<DType::tag> {              \
    using Type = type;                        \
  };
MEMVIT_CUDA_DTYPES(MEMVIT_X)
#undef MEMVIT_X

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct alignas(16) I4 {
  int x, y, z, w;
};

// ------------------------------------------------------------------ element types
template <typename T>
struct Elem;

template <>
struct Elem<float> {
  static MV_DEVICE float to_float(float x) { return x; }
  static MV_DEVICE float from_float(float x) { return x; }
};

#if defined(MEMVIT_CUDA_EMULATION)
template <>
struct Elem<bf16_t> {
  static float to_float(bf16_t x) { return emu::to_float(x); }
  static bf16_t from_float(float x) { return emu::to_bf16(x); }
  static uint32_t pack(float lo, float hi) { return emu::to_bf16(lo).bits | (uint32_t(emu::to_bf16(hi).bits) << 16); }
  static uint16_t bits(float x) { return emu::to_bf16(x).bits; }
};
template <>
struct Elem<f16_t> {
  static float to_float(f16_t x) { return emu::to_float(x); }
  static f16_t from_float(float x) { return emu::to_f16(x); }
  static uint32_t pack(float lo, float hi) { return emu::to_f16(lo).bits | (uint32_t(emu::to_f16(hi).bits) << 16); }
  static uint16_t bits(float x) { return emu::to_f16(x).bits; }
};
#else
template <>
struct Elem<bf16_t> {
  static MV_DEVICE float to_float(bf16_t x) { return __bfloat162float(x); }
  static MV_DEVICE bf16_t from_float(float x) { return __float2bfloat16_rn(x); }
  static MV_DEVICE uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
  static MV_DEVICE uint16_t bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }
};
template <>
struct Elem<f16_t> {
  static MV_DEVICE float to_float(f16_t x) { return __half2float(x); }
  static MV_DEVICE f16_t from_float(float x) { return __float2half_rn(x); }
  static MV_DEVICE uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
  static MV_DEVICE uint16_t bits(float x) { return __half_as_ushort(__float2half_rn(x)); }
};
#endif

// ------------------------------------------------------------------ thread geometry, sync, math
#if defined(MEMVIT_CUDA_EMULATION)
MV_DEVICE int thread_x() { return emu::thread_index(); }
MV_DEVICE int block_x() { return emu::block_index(); }
MV_DEVICE int grid_x() { return emu::grid_size(); }
MV_DEVICE void block_sync() { emu::sync_threads(); }
MV_DEVICE void warp_sync() { emu::sync_warp(); }
MV_DEVICE float shfl_xor(float v, int m) { return emu::shfl_xor(v, m); }
MV_DEVICE float fast_exp2(float x) { return std::exp2(x); }
MV_DEVICE float fast_log2(float x) { return std::log2(x); }
MV_DEVICE float inf() { return HUGE_VALF; }
MV_DEVICE unsigned char* dyn_smem() { return static_cast<unsigned char*>(emu::shared_memory()); }
#else
extern __shared__ __align__(16) unsigned char memvit_dyn_smem[];
MV_DEVICE int thread_x() { return static_cast<int>(threadIdx.x); }
MV_DEVICE int block_x() { return static_cast<int>(blockIdx.x); }
MV_DEVICE int grid_x() { return static_cast<int>(gridDim.x); }
MV_DEVICE void block_sync() { __syncthreads(); }
MV_DEVICE void warp_sync() { __syncwarp(); }
MV_DEVICE float shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
// ex2.approx: 2 ulp, ex2(-inf) = +0 (masked logits), ex2(+inf) = +inf.
MV_DEVICE float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
MV_DEVICE float fast_log2(float x) { return __log2f(x); }
MV_DEVICE float inf() { return __int_as_float(0x7f800000); }
MV_DEVICE unsigned char* dyn_smem() { return memvit_dyn_smem; }
#endif

// ------------------------------------------------------------------ async copies, ldmatrix, mma
#if defined(MEMVIT_CUDA_EMULATION)
// 16 bytes from global to shared; zero-filled when !valid (src must still be a valid address).
MV_DEVICE void cp_async_16(void* dst, const void* src, bool valid) { emu::cp_async(dst, src, 16, valid ? 16 : 0); }
MV_DEVICE void cp_async_4(void* dst, const void* src, bool valid) { emu::cp_async(dst, src, 4, valid ? 4 : 0); }
MV_DEVICE void cp_async_commit() { emu::cp_async_commit(); }
template <int N>
MV_DEVICE void cp_async_wait() { emu::cp_async_wait(N); }
MV_DEVICE void ldsm_x4(uint32_t (&r)[4], const void* p) { emu::ldmatrix_x4(r, p, false); }
MV_DEVICE void ldsm_x4_t(uint32_t (&r)[4], const void* p) { emu::ldmatrix_x4(r, p, true); }
template <typename T>
MV_DEVICE void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  emu::mma_16816(d, a, b0, b1, std::is_same<T, bf16_t>::value);
}
#else
MV_DEVICE uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
MV_DEVICE void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
MV_DEVICE void cp_async_4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 4 : 0));
}
MV_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
MV_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
MV_DEVICE void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
MV_DEVICE void ldsm_x4_t(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
template <typename T>
MV_DEVICE void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
MV_DEVICE void mma_16816<bf16_t>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
MV_DEVICE void mma_16816<f16_t>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

}  // namespace cuda
}  // namespace memvit
