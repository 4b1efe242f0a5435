// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Row primitives of the CPU attention kernel: plain loops written so that the compiler
// vectorizes them (checked in the disassembly by tests/test_build.py). On x86-64
// Linux with GCC each float primitive is compiled three times (AVX-512, AVX2+FMA, baseline)
// and the loader picks the best one for the running CPU (target_clones), so one build runs
// on any x86-64 machine. The float64 versions serve gradcheck and are not tuned.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace memvit::cpu {

constexpr int kLanes = 16;  // independent accumulators: lets the compiler keep reductions in vectors

// exp(x) for x <= 0 (softmax arguments); 0 below -87.3 (and for -inf). Cody-Waite range
// reduction, degree-6 polynomial: about 1 ulp, no branches, vectorizes.
// always_inline: GCC does not inline a plain function into the arch-specific clones otherwise,
// and the call then keeps the AVX2 loop from vectorizing.
__attribute__((always_inline)) inline float exp_nonpositive(float x) {
  constexpr float kLow = -87.3365447f;
  const float xc = x < kLow ? kLow : x;
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (xc - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float poly = 1.0f / 720.0f;
  poly = poly * r + 1.0f / 120.0f;
  poly = poly * r + 1.0f / 24.0f;
  poly = poly * r + 1.0f / 6.0f;
  poly = poly * r + 0.5f;
  poly = poly * r + 1.0f;
  poly = poly * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof(two_n));
  return x < kLow ? 0.0f : poly * two_n;
}

float row_max(const float* __restrict x, int64_t n);
float exp_sub_sum(float* __restrict x, float shift, int64_t n);  // x = exp(x - shift); sum
void exp_sub(float* __restrict x, float shift, int64_t n);       // x = exp(x - shift)
void scale_inplace(float* __restrict x, float a, int64_t n);
void add_scalar_vec(float* __restrict dst, float c, const float* __restrict v, int64_t n);
void add_strided(float* __restrict dst, const float* __restrict src, int64_t stride, int64_t n);
float accumulate_sum(const float* __restrict src, float* __restrict acc, int64_t n);
float shifted_dot(const float* __restrict p, const float* __restrict dp, float c, int64_t n);  // sum p (dp - c)
void softmax_grad(float* __restrict dp, const float* __restrict p, float c, float d, int64_t n);  // dp = p (dp - c - d)

// float64: straightforward loops.
double row_max(const double* x, int64_t n);
double exp_sub_sum(double* x, double shift, int64_t n);
void exp_sub(double* x, double shift, int64_t n);
void scale_inplace(double* x, double a, int64_t n);
void add_scalar_vec(double* dst, double c, const double* v, int64_t n);
void add_strided(double* dst, const double* src, int64_t stride, int64_t n);
double accumulate_sum(const double* src, double* acc, int64_t n);
double shifted_dot(const double* p, const double* dp, double c, int64_t n);
void softmax_grad(double* dp, const double* p, double c, double d, int64_t n);

}  // namespace memvit::cpu
