// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.

#include "cpu/vec_math.h"

// The attribute goes on the definitions only: callers in other files then call the resolver.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MEMVIT_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MEMVIT_CPU_CLONES
#endif

namespace memvit::cpu {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

MEMVIT_CPU_CLONES float row_max(const float* __restrict x, int64_t n) {
  float m = kNegInf;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

MEMVIT_CPU_CLONES float exp_sub_sum(float* __restrict x, float shift, int64_t n) {
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int u = 0; u < kLanes; ++u) {
      const float e = exp_nonpositive(x[j + u] - shift);
      x[j + u] = e;
      lanes[u] += e;
    }
  }
  float s = 0.0f;
  for (; j < n; ++j) {
    const float e = exp_nonpositive(x[j] - shift);
    x[j] = e;
    s += e;
  }
  for (int u = 0; u < kLanes; ++u) s += lanes[u];
  return s;
}

MEMVIT_CPU_CLONES void exp_sub(float* __restrict x, float shift, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = exp_nonpositive(x[j] - shift);
}

MEMVIT_CPU_CLONES void scale_inplace(float* __restrict x, float a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] *= a;
}

MEMVIT_CPU_CLONES void add_scalar_vec(float* __restrict dst, float c, const float* __restrict v, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] += c + v[j];
}

MEMVIT_CPU_CLONES void add_strided(float* __restrict dst, const float* __restrict src, int64_t stride, int64_t n) {
  if (stride == 1) {
    for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
  } else {
    for (int64_t j = 0; j < n; ++j) dst[j] += src[j * stride];
  }
}

MEMVIT_CPU_CLONES float accumulate_sum(const float* __restrict src, float* __restrict acc, int64_t n) {
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int u = 0; u < kLanes; ++u) {
      acc[j + u] += src[j + u];
      lanes[u] += src[j + u];
    }
  }
  float s = 0.0f;
  for (; j < n; ++j) {
    acc[j] += src[j];
    s += src[j];
  }
  for (int u = 0; u < kLanes; ++u) s += lanes[u];
  return s;
}

MEMVIT_CPU_CLONES float shifted_dot(const float* __restrict p, const float* __restrict dp, float c, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += p[j] * (dp[j] - c);
  return s;
}

MEMVIT_CPU_CLONES void softmax_grad(float* __restrict dp, const float* __restrict p, float c, float d, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * ((dp[j] - c) - d);
}

double row_max(const double* x, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

double exp_sub_sum(double* x, double shift, int64_t n) {
  double s = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - shift);
    s += x[j];
  }
  return s;
}

void exp_sub(double* x, double shift, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::exp(x[j] - shift);
}

void scale_inplace(double* x, double a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] *= a;
}

void add_scalar_vec(double* dst, double c, const double* v, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] += c + v[j];
}

void add_strided(double* dst, const double* src, int64_t stride, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] += src[j * stride];
}

double accumulate_sum(const double* src, double* acc, int64_t n) {
  double s = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    acc[j] += src[j];
    s += src[j];
  }
  return s;
}

double shifted_dot(const double* p, const double* dp, double c, int64_t n) {
  double s = 0.0;
  for (int64_t j = 0; j < n; ++j) s += p[j] * (dp[j] - c);
  return s;
}

void softmax_grad(double* dp, const double* p, double c, double d, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * ((dp[j] - c) - d);
}

}  // namespace memvit::cpu
