// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// The attention core shared by the CPU and CUDA kernels:
//
//   out[r] = sum_j softmax_j(scale * q_r . k_j + bias(r, j) + mask(r, j)) v_j  (+ q_r, not on the cls row)
//   bias(r, j) = rel_bias[r, bin_t(j)] + rel_bias[r, bin_h(j)] + rel_bias[r, bin_w(j)]
//
// Keys/values come as segments (memory clips oldest first, then the current clip), each a
// (B, heads, N_s, D) tensor read in place. Key j of a segment is its cls token (no bias) or
// the grid token (kt, kh, kw) in raster order; bin_a(j) = bin_offsets[3*s + a] + coordinate a,
// or nothing when that offset is -1. rel_bias is the per-query relative-position bias, one column
// per bin (memvit_ext/rel_pos.py).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "op_limits.h"

namespace memvit {

// One key/value segment as the kernels see it.
struct SegmentDesc {
  int64_t tokens = 0;      // grid tokens + cls
  int64_t key_offset = 0;  // first key of this segment in the concatenated key axis
  int32_t t = 1, h = 1, w = 1;
  int32_t cls = 0;
  int32_t bin[3] = {-1, -1, -1};  // first rel_bias column of the t, h, w bins; -1: none
};

struct ProblemDesc {
  int64_t batch = 0, heads = 0, queries = 0, head_dim = 0, keys = 0, bins = 0;
  double scale = 1.0;
  bool residual = false, q_cls = false, has_rel_bias = false, has_mask = false;
  std::vector<SegmentDesc> segments;
};

// Validates the op's arguments (TORCH_CHECK with the argument's name and the expected shape)
// and returns the layout. Used by every backend.
ProblemDesc describe_problem(const char* op, const at::Tensor& q, at::TensorList keys, at::TensorList values,
                             const std::optional<at::Tensor>& rel_bias, at::IntArrayRef kv_thw,
                             at::IntArrayRef kv_cls, at::IntArrayRef bin_offsets, double scale, bool residual,
                             bool q_cls, const std::optional<at::Tensor>& attn_mask);

// Whether the CPU kernel is compiled for this element type (cpu/pooling_attention_kernel.cpp).
bool cpu_serves(at::ScalarType type);

// Extra checks of the backward's own inputs.
void check_backward_inputs(const ProblemDesc& p, const at::Tensor& grad_out, const at::Tensor& out,
                           const at::Tensor& lse);

}  // namespace memvit
