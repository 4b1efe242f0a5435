// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The one table of the CUDA kernels: which element types and head dims they are built for.
// Everything else derives from the two lists below, in the style of flash-attention's
// static_switch.h: the launchers (*.cu) instantiate the kernels through visit_tc_head_dim,
// launch() selects them through visit_dtype, the host code checks its inputs against the
// table, and capabilities()/build_info() report it. The CPU emulator runs the same launchers.
// Plain C++ (no ATen, no CUDA headers): host code, kernels and emulator include it.
#pragma once

#include <cstddef>
#include <type_traits>

namespace memvit {
namespace cuda {

enum class DType : int { kFloat16 = 0, kBFloat16 = 1, kFloat32 = 2 };

// Every kernel, by role. *Tc: tensor cores (mma.sync), templated on the head dim; *Simt:
// CUDA cores, any head dim up to Simt::kMaxD; kPrepass (backward row statistics), kDeltaTc (the
// backward's exact softmax-gradient row term) and kReduce (sum of the dK/dV kernel's query-axis splits).
enum class Kernel : int { kFwdTc, kDqTc, kDkvTc, kFwdSimt, kDqSimt, kDkvSimt, kPrepass, kReduce, kDeltaTc };

// ---------------------------------------------------------------------------------- the table
// Element types: X(DType tag, c10::ScalarType name, torch dtype name, device element type,
// served by the tensor-core kernels). The others run the SIMT kernels only.
#define MEMVIT_CUDA_DTYPES(X)                        \
  X(kFloat16, Half, "float16", f16_t, true)          \
  X(kBFloat16, BFloat16, "bfloat16", bf16_t, true)   \
  X(kFloat32, Float, "float32", float, false)

// Head dims the tensor-core kernels are instantiated for.
#define MEMVIT_TC_HEAD_DIMS(X) X(64) X(96) X(128)
// ---------------------------------------------------------------------------------------------

constexpr bool uses_tensor_cores(DType dt) {
#define MEMVIT_X(tag, scalar, name, type, tc) \
  if (dt == DType::tag) return tc;
  MEMVIT_CUDA_DTYPES(MEMVIT_X)
#undef MEMVIT_X
  return false;
}

constexpr const char* dtype_name(DType dt) {
#define MEMVIT_X(tag, scalar, name, type, tc) \
  if (dt == DType::tag) return name;
  MEMVIT_CUDA_DTYPES(MEMVIT_X)
#undef MEMVIT_X
  return "?";
}

#define MEMVIT_X(tag, scalar, name, type, tc) DType::tag,
constexpr DType kDTypes[] = {MEMVIT_CUDA_DTYPES(MEMVIT_X)};
#undef MEMVIT_X

#define MEMVIT_X(d) d,
constexpr int kTcHeadDims[] = {MEMVIT_TC_HEAD_DIMS(MEMVIT_X)};
#undef MEMVIT_X

// fn(std::integral_constant<DType, dt>{}) for the table's entry of `dt`; false if none.
template <typename Fn>
bool visit_dtype(DType dt, Fn&& fn) {
#define MEMVIT_X(tag, scalar, name, type, tc)               \
  if (dt == DType::tag) {                                   \
    fn(std::integral_constant<DType, DType::tag>{});        \
    return true;                                            \
  }
  MEMVIT_CUDA_DTYPES(MEMVIT_X)
#undef MEMVIT_X
  return false;
}

// fn(std::integral_constant<int, d>{}) when `d` is a tensor-core head dim of the table; false if not.
template <typename Fn>
bool visit_tc_head_dim(int d, Fn&& fn) {
#define MEMVIT_X(D)                              \
  if (d == D) {                                  \
    fn(std::integral_constant<int, D>{});        \
    return true;                                 \
  }
  MEMVIT_TC_HEAD_DIMS(MEMVIT_X)
#undef MEMVIT_X
  return false;
}

}  // namespace cuda
}  // namespace memvit
