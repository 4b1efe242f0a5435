// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Argument checks shared by every backend of memvit_ext::pooling_attention(_backward).

#include "pooling_attention.h"

#include <c10/util/irange.h>

namespace memvit {

static std::string shape_str(at::IntArrayRef s) {
  std::string out = "(";
  for (const auto i : c10::irange(s.size())) {
    out += std::to_string(s[i]) + (i + 1 < s.size() ? ", " : "");
  }
  return out + ")";
}

ProblemDesc describe_problem(const char* op, const at::Tensor& q, at::TensorList keys, at::TensorList values,
                             const std::optional<at::Tensor>& rel_bias, at::IntArrayRef kv_thw,
                             at::IntArrayRef kv_cls, at::IntArrayRef bin_offsets, double scale, bool residual,
                             bool q_cls, const std::optional<at::Tensor>& attn_mask) {
  TORCH_CHECK(q.dim() == 4, op, ": q must be (batch, heads, tokens, head_dim); got ", shape_str(q.sizes()));
  ProblemDesc p;
  p.batch = q.size(0);
  p.heads = q.size(1);
  p.queries = q.size(2);
  p.head_dim = q.size(3);
  p.scale = scale;
  p.residual = residual;
  p.q_cls = q_cls;
  const auto n = static_cast<int64_t>(keys.size());
  TORCH_CHECK(n >= 1 && n <= kMaxSegments, op, ": between 1 and ", kMaxSegments, " key segments; got ", n);
  TORCH_CHECK(static_cast<int64_t>(values.size()) == n, op, ": ", n, " key segments but ", values.size(),
              " value segments");
  TORCH_CHECK(static_cast<int64_t>(kv_thw.size()) == 3 * n, op, ": kv_thw needs 3 ints per segment (", 3 * n,
              "); got ", kv_thw.size());
  TORCH_CHECK(static_cast<int64_t>(kv_cls.size()) == n, op, ": kv_cls needs one flag per segment; got ",
              kv_cls.size());
  TORCH_CHECK(static_cast<int64_t>(bin_offsets.size()) == 3 * n, op, ": bin_offsets needs 3 ints per segment (",
              3 * n, "); got ", bin_offsets.size());
  TORCH_CHECK(!q_cls || p.queries >= 1, op, ": q_cls needs at least one query");

  p.has_rel_bias = rel_bias.has_value() && rel_bias->defined();
  if (p.has_rel_bias) {
    const auto& b = *rel_bias;
    TORCH_CHECK(b.dim() == 4 && b.size(0) == p.batch && b.size(1) == p.heads && b.size(2) == p.queries, op,
                ": rel_bias must be (", p.batch, ", ", p.heads, ", ", p.queries, ", bins); got ", shape_str(b.sizes()));
    TORCH_CHECK(b.is_floating_point() && b.device() == q.device(), op,
                ": rel_bias must be floating point and on q's device");
    p.bins = b.size(3);
  }
  int64_t offset = 0;
  for (const auto s : c10::irange(n)) {
    SegmentDesc seg;
    seg.t = static_cast<int32_t>(kv_thw[3 * s]);
    seg.h = static_cast<int32_t>(kv_thw[3 * s + 1]);
    seg.w = static_cast<int32_t>(kv_thw[3 * s + 2]);
    TORCH_CHECK(seg.t > 0 && seg.h > 0 && seg.w > 0, op, ": kv_thw of segment ", s, " must be positive");
    seg.cls = kv_cls[s] ? 1 : 0;
    seg.tokens = static_cast<int64_t>(seg.t) * seg.h * seg.w + seg.cls;
    seg.key_offset = offset;
    offset += seg.tokens;
    const int32_t extent[3] = {seg.t, seg.h, seg.w};
    for (const auto a : c10::irange(3)) {
      const int64_t o = bin_offsets[3 * s + a];
      TORCH_CHECK(o == -1 || (p.has_rel_bias && o >= 0 && o + extent[a] <= p.bins), op, ": bin_offsets[", 3 * s + a,
                  "] = ", o, " does not fit rel_bias with ", p.bins, " bins (segment ", s, " has ", extent[a],
                  " positions on that axis)");
      seg.bin[a] = static_cast<int32_t>(o);
    }
    const auto expect = std::vector<int64_t>{p.batch, p.heads, seg.tokens, p.head_dim};
    for (const at::Tensor* t : {&keys[s], &values[s]}) {
      const char* name = t == &keys[s] ? "keys" : "values";
      TORCH_CHECK(t->sizes() == at::IntArrayRef(expect), op, ": ", name, "[", s, "] must have shape ",
                  shape_str(expect), " for its grid (", seg.t, ", ", seg.h, ", ", seg.w, ") and cls=", seg.cls,
                  "; got ", shape_str(t->sizes()));
      TORCH_CHECK(t->scalar_type() == q.scalar_type(), op, ": ", name, "[", s, "] has dtype ", t->scalar_type(),
                  " but q has ", q.scalar_type());
      TORCH_CHECK(t->device() == q.device(), op, ": ", name, "[", s, "] is on ", t->device(), " but q is on ",
                  q.device());
    }
    p.segments.push_back(seg);
  }
  p.keys = offset;
  p.has_mask = attn_mask.has_value() && attn_mask->defined();
  if (p.has_mask) {
    const auto& m = *attn_mask;
    TORCH_CHECK(m.is_floating_point() && m.device() == q.device() && m.dim() <= 4, op,
                ": attn_mask must be a floating-point tensor on q's device broadcastable to (", p.batch, ", ",
                p.heads, ", ", p.queries, ", ", p.keys, ")");
    const auto target = std::vector<int64_t>{p.batch, p.heads, p.queries, p.keys};
    const auto msz = m.sizes();
    for (const auto i : c10::irange(msz.size())) {
      const auto want = target[4 - msz.size() + i];
      TORCH_CHECK(msz[i] == want || msz[i] == 1, op, ": attn_mask of shape ", shape_str(msz),
                  " does not broadcast to ", shape_str(target));
    }
  }
  return p;
}

void check_backward_inputs(const ProblemDesc& p, const at::Tensor& grad_out, const at::Tensor& out,
                           const at::Tensor& lse) {
  const auto expect = std::vector<int64_t>{p.batch, p.heads, p.queries, p.head_dim};
  TORCH_CHECK(grad_out.sizes() == at::IntArrayRef(expect), "pooling_attention_backward: grad_out must be ",
              shape_str(expect), "; got ", shape_str(grad_out.sizes()));
  TORCH_CHECK(out.sizes() == at::IntArrayRef(expect), "pooling_attention_backward: out must be ", shape_str(expect),
              "; got ", shape_str(out.sizes()));
  TORCH_CHECK(lse.sizes() == at::IntArrayRef({p.batch, p.heads, p.queries}),
              "pooling_attention_backward: lse must be (", p.batch, ", ", p.heads, ", ", p.queries, "); got ",
              shape_str(lse.sizes()));
}

}  // namespace memvit
