// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// CPU kernels of memvit_ext::pooling_attention (forward) and _backward, flash-attention style:
// a task owns a block of queries of one (batch, head) and streams over the key segments in
// chunks, in place (no concatenation): logits of the block against one chunk (GEMM), the
// decomposed bias added from the per-query tables, online softmax, P.V accumulated (GEMM).
// Nothing of size Nq x Nk is ever allocated; the backward recomputes P from the saved
// logsumexp (out is not needed) and returns the per-query table gradients as plain row sums
// (no scatter, no atomics).
//
// Chunks are whole (h, w) planes of a segment (plus its cls token), so the bias of a chunk is,
// per query row, "one scalar per plane (t) + one vector per plane (h, w)": two vectorized adds
// per plane instead of three gathers per logit.

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#if __has_include(<ATen/native/CPUBlas.h>)
#include <ATen/native/CPUBlas.h>  // cpublas::brgemm; it defines CPUBLAS_BRGEMM_F32F32F32 where float has one
#endif
#include <c10/util/irange.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu/vec_math.h"
#include "pooling_attention.h"

namespace memvit {
namespace {

constexpr int64_t kBlockRowsForward = 128;
constexpr int64_t kBlockRowsBackward = 64;
constexpr int64_t kChunkKeys = 512;  // target keys per chunk (at least one plane)

// ---------------------------------------------------------------------------- GEMM helpers
// One product shape: C (m x n) = A (m x k) B (k x n) [+ C], row-major with leading dimensions;
// transposed operands are laid out beforehand (keys and values once per call, P and dS per
// block). float runs on oneDNN's batch-reduce GEMM micro-kernel through ATen's cpublas::brgemm
// where ATen has one (it then defines CPUBLAS_BRGEMM_F32F32F32): no tensor is made per tile,
// and it uses AVX-512 on any x86 CPU, 2.2-2.5x MKL's sgemm (addmm) on this kernel's
// 64-128 x 393 x 96 products on the AMD EPYC it was measured on. float64, or an older torch:
// addmm on views. Single-threaded inside the parallel region either way.
template <typename T>
at::Tensor matrix(const T* data, int64_t rows, int64_t cols, int64_t ld) {
  return at::from_blob(const_cast<T*>(data), {rows, cols}, {ld, 1},
                       at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
}

template <typename T>
void matmul(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, bool accumulate,
            T* c, int64_t ldc) {
#ifdef CPUBLAS_BRGEMM_F32F32F32
  if constexpr (std::is_same_v<T, float>) {
    at::native::cpublas::brgemm(m, n, k, lda, ldb, ldc, accumulate, a, b, c, /*is_vnni=*/false);
    return;
  }
#endif
  auto out = matrix(c, m, n, ldc);
  at::addmm_out(out, out, matrix(a, m, k, lda), matrix(b, k, n, ldb), accumulate ? 1 : 0, 1);
}

// dst (cols x rows, leading dimension rows) = src (rows x cols, leading dimension ld)^T, in
// tiles that stay in L1.
template <typename T>
void transpose(const T* src, int64_t ld, int64_t rows, int64_t cols, T* dst) {
  constexpr int64_t kTile = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t r1 = std::min(rows, r0 + kTile);
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t c1 = std::min(cols, c0 + kTile);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * ld + c];
      }
    }
  }
}

// ---------------------------------------------------------------------------- layout
// A 4-D (B, H, N, D) tensor with unit last stride.
template <typename T>
struct Rows {
  const T* data = nullptr;
  int64_t sb = 0, sh = 0, sn = 0;
  const T* at(int64_t b, int64_t h, int64_t n) const { return data + b * sb + h * sh + n * sn; }
};

template <typename T>
Rows<T> rows_of(const at::Tensor& t) {
  TORCH_INTERNAL_ASSERT(t.stride(3) == 1 || t.size(3) == 1);
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2)};
}

// A chunk: keys [start, start + count) of one segment = optional cls + whole planes.
struct Chunk {
  int seg = 0;
  int64_t start = 0, count = 0;
  int64_t first_plane = 0, planes = 0;
  bool has_cls = false;
};

std::vector<Chunk> plan_chunks(const ProblemDesc& p) {
  std::vector<Chunk> chunks;
  for (const auto s : c10::irange(p.segments.size())) {
    const auto& seg = p.segments[s];
    const int64_t plane = static_cast<int64_t>(seg.h) * seg.w;
    const int64_t per_chunk = std::max<int64_t>(1, kChunkKeys / plane);
    for (int64_t first = 0; first < seg.t; first += per_chunk) {
      Chunk c;
      c.seg = static_cast<int>(s);
      c.first_plane = first;
      c.planes = std::min<int64_t>(per_chunk, seg.t - first);
      c.has_cls = first == 0 && seg.cls;
      c.start = first == 0 ? 0 : seg.cls + first * plane;
      c.count = c.planes * plane + (c.has_cls ? 1 : 0);
      chunks.push_back(c);
    }
  }
  return chunks;
}

int64_t widest(const std::vector<Chunk>& chunks) {
  int64_t w = 0;
  for (const auto& c : chunks) w = std::max(w, c.count);
  return w;
}

// Everything a task reads, in the accumulation type (keys/values converted when the input
// is bfloat16; float32/float64 inputs are read in place).
template <typename scalar_t, typename acc_t>
struct Operands {
  Rows<scalar_t> q;
  std::vector<Rows<acc_t>> k, v;
  // (B, H, D, N) copies: row d of kt is feature d of every key; k_t(b, h, start) points at key
  // `start` of row 0, leading dimension sn. kt always, vt for the backward.
  std::vector<Rows<acc_t>> kt, vt;
  const acc_t* rel_bias = nullptr;  // (B, H, Nq, bins) contiguous
  const acc_t* mask = nullptr;  // expanded (B, H, Nq, Nk) view
  int64_t mask_stride[4] = {0, 0, 0, 0};
  std::vector<at::Tensor> keep_alive;
};

template <typename scalar_t, typename acc_t>
Operands<scalar_t, acc_t> prepare(const ProblemDesc& p, const at::Tensor& q, at::TensorList keys,
                                  at::TensorList values, const std::optional<at::Tensor>& rel_bias,
                                  const std::optional<at::Tensor>& attn_mask, bool transposed_values) {
  constexpr auto acc_type = c10::CppTypeToScalarType<acc_t>::value;
  Operands<scalar_t, acc_t> ops;
  auto unit_stride = [](const at::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); };
  auto qq = unit_stride(q);
  ops.keep_alive.push_back(qq);
  ops.q = rows_of<scalar_t>(qq);
  auto keep = [&](const at::Tensor& t, std::vector<Rows<acc_t>>& dst) {
    ops.keep_alive.push_back(t);
    dst.push_back(rows_of<acc_t>(t));
  };
  for (const auto s : c10::irange(keys.size())) {
    const auto k = unit_stride(keys[s].to(acc_type));
    const auto v = unit_stride(values[s].to(acc_type));
    keep(k, ops.k);
    keep(v, ops.v);
    keep(k.transpose(2, 3).contiguous(), ops.kt);
    if (transposed_values) keep(v.transpose(2, 3).contiguous(), ops.vt);
  }
  if (p.has_rel_bias) {
    auto b = rel_bias->to(acc_type).contiguous();
    ops.keep_alive.push_back(b);
    ops.rel_bias = b.template const_data_ptr<acc_t>();
  }
  if (p.has_mask) {
    auto m = attn_mask->to(acc_type).expand({p.batch, p.heads, p.queries, p.keys});
    ops.keep_alive.push_back(m);
    ops.mask = m.template const_data_ptr<acc_t>();
    for (const auto i : c10::irange(4)) ops.mask_stride[i] = m.stride(i);
  }
  return ops;
}

// Adds bias and mask of one chunk to a block of logits S (rows x ld), query rows r0.. of (b, h).
template <typename scalar_t, typename acc_t>
void add_bias_and_mask(const ProblemDesc& p, const Operands<scalar_t, acc_t>& ops, const Chunk& c, int64_t b,
                       int64_t h, int64_t r0, int64_t rows, acc_t* S, int64_t ld, std::vector<acc_t>& plane_bias) {
  const auto& seg = p.segments[c.seg];
  const int32_t bt = seg.bin[0], bh = seg.bin[1], bw = seg.bin[2];
  if (ops.rel_bias && (bt >= 0 || bh >= 0 || bw >= 0)) {
    const int64_t plane = static_cast<int64_t>(seg.h) * seg.w;
    plane_bias.resize(plane);
    const int64_t grid0 = c.has_cls ? 1 : 0;
    for (const auto r : c10::irange(rows)) {
      const acc_t* tb = ops.rel_bias + ((b * p.heads + h) * p.queries + r0 + r) * p.bins;
      for (const auto y : c10::irange(seg.h)) {
        const acc_t hy = bh >= 0 ? tb[bh + y] : acc_t(0);
        for (const auto x : c10::irange(seg.w)) plane_bias[y * seg.w + x] = hy + (bw >= 0 ? tb[bw + x] : acc_t(0));
      }
      acc_t* row = S + r * ld + grid0;
      for (const auto k : c10::irange(c.planes)) {
        const acc_t t = bt >= 0 ? tb[bt + c.first_plane + k] : acc_t(0);
        cpu::add_scalar_vec(row + k * plane, t, plane_bias.data(), plane);
      }
    }
  }
  if (ops.mask) {
    const int64_t key0 = seg.key_offset + c.start;
    for (const auto r : c10::irange(rows)) {
      const acc_t* m = ops.mask + b * ops.mask_stride[0] + h * ops.mask_stride[1] + (r0 + r) * ops.mask_stride[2] +
                       key0 * ops.mask_stride[3];
      cpu::add_strided(S + r * ld, m, ops.mask_stride[3], c.count);
    }
  }
}

// Row-wise sums of dS over each bin of a chunk, added into the table gradient rows.
template <typename acc_t>
void accumulate_rel_bias_grad(const ProblemDesc& p, const Chunk& c, const acc_t* dS, int64_t ld, int64_t rows,
                          acc_t* d_rel_bias, std::vector<acc_t>& plane_sum) {
  const auto& seg = p.segments[c.seg];
  const int32_t bt = seg.bin[0], bh = seg.bin[1], bw = seg.bin[2];
  if (bt < 0 && bh < 0 && bw < 0) return;
  const int64_t plane = static_cast<int64_t>(seg.h) * seg.w;
  plane_sum.resize(plane);
  const int64_t grid0 = c.has_cls ? 1 : 0;
  for (const auto r : c10::irange(rows)) {
    std::fill(plane_sum.begin(), plane_sum.end(), acc_t(0));
    acc_t* g = d_rel_bias + r * p.bins;
    const acc_t* row = dS + r * ld + grid0;
    for (const auto k : c10::irange(c.planes)) {
      const acc_t total = cpu::accumulate_sum(row + k * plane, plane_sum.data(), plane);
      if (bt >= 0) g[bt + c.first_plane + k] += total;
    }
    for (const auto y : c10::irange(seg.h)) {
      for (const auto x : c10::irange(seg.w)) {
        const acc_t v = plane_sum[y * seg.w + x];
        if (bh >= 0) g[bh + y] += v;
        if (bw >= 0) g[bw + x] += v;
      }
    }
  }
}

// Rows [r0, r0 + rows) of q times the softmax scale, contiguous: the left operand of Q K^T
// (scaling q once instead of every logit).
template <typename scalar_t, typename acc_t>
const acc_t* load_scaled_rows(const Rows<scalar_t>& src, int64_t b, int64_t h, int64_t r0, int64_t rows,
                              int64_t dim, acc_t scale, std::vector<acc_t>& buffer) {
  buffer.resize(rows * dim);
  for (const auto r : c10::irange(rows)) {
    const scalar_t* s = src.at(b, h, r0 + r);
    for (const auto c : c10::irange(dim)) buffer[r * dim + c] = scale * static_cast<acc_t>(s[c]);
  }
  return buffer.data();
}

bool residual_row(const ProblemDesc& p, int64_t row) { return p.residual && !(p.q_cls && row == 0); }

// ---------------------------------------------------------------------------- forward
template <typename scalar_t>
std::tuple<at::Tensor, at::Tensor> forward(const ProblemDesc& p, const at::Tensor& q, at::TensorList keys,
                                           at::TensorList values, const std::optional<at::Tensor>& rel_bias,
                                           const std::optional<at::Tensor>& attn_mask) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto ops = prepare<scalar_t, acc_t>(p, q, keys, values, rel_bias, attn_mask, /*transposed_values=*/false);
  auto out = at::empty({p.batch, p.heads, p.queries, p.head_dim}, q.options());
  auto lse = at::empty({p.batch, p.heads, p.queries}, q.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  const auto chunks = plan_chunks(p);
  const int64_t width = widest(chunks);
  const int64_t D = p.head_dim;
  const int64_t blocks = (p.queries + kBlockRowsForward - 1) / kBlockRowsForward;
  scalar_t* out_data = out.template mutable_data_ptr<scalar_t>();
  acc_t* lse_data = lse.template mutable_data_ptr<acc_t>();
  const acc_t scale = static_cast<acc_t>(p.scale);
  constexpr acc_t kNegInf = -std::numeric_limits<acc_t>::infinity();

  at::parallel_for(0, p.batch * p.heads * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> S(kBlockRowsForward * width), O(kBlockRowsForward * D), q_buf, plane_bias;
    std::vector<acc_t> m(kBlockRowsForward), l(kBlockRowsForward);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / blocks, b = bh / p.heads, h = bh % p.heads;
      const int64_t r0 = (task % blocks) * kBlockRowsForward;
      const int64_t rows = std::min(kBlockRowsForward, p.queries - r0);
      const acc_t* qs = load_scaled_rows<scalar_t, acc_t>(ops.q, b, h, r0, rows, D, scale, q_buf);
      std::fill(O.begin(), O.end(), acc_t(0));
      std::fill(m.begin(), m.end(), kNegInf);
      std::fill(l.begin(), l.end(), acc_t(0));
      for (const auto& c : chunks) {
        const auto& kt = ops.kt[c.seg];
        const auto& v = ops.v[c.seg];
        matmul<acc_t>(rows, c.count, D, qs, D, kt.at(b, h, 0) + c.start, kt.sn, false, S.data(), width);
        add_bias_and_mask(p, ops, c, b, h, r0, rows, S.data(), width, plane_bias);
        for (const auto r : c10::irange(rows)) {
          acc_t* s = S.data() + r * width;
          const acc_t m_new = std::max(m[r], cpu::row_max(s, c.count));
          if (m_new == kNegInf) {  // every key so far masked out
            std::fill(s, s + c.count, acc_t(0));
            continue;
          }
          const acc_t alpha = m[r] == kNegInf ? acc_t(0) : std::exp(m[r] - m_new);
          l[r] = l[r] * alpha + cpu::exp_sub_sum(s, m_new, c.count);
          if (alpha != acc_t(1)) cpu::scale_inplace(O.data() + r * D, alpha, D);
          m[r] = m_new;
        }
        matmul<acc_t>(rows, D, c.count, S.data(), width, v.at(b, h, c.start), v.sn, true, O.data(), D);
      }
      for (const auto r : c10::irange(rows)) {
        const int64_t row = r0 + r;
        const acc_t inv = l[r] > 0 ? acc_t(1) / l[r] : acc_t(0);
        scalar_t* o = out_data + (bh * p.queries + row) * D;
        const scalar_t* qr = ops.q.at(b, h, row);
        const bool add_q = residual_row(p, row);
        for (const auto c : c10::irange(D)) {
          acc_t value = O[r * D + c] * inv;
          if (add_q) value += static_cast<acc_t>(qr[c]);
          o[c] = static_cast<scalar_t>(value);
        }
        lse_data[bh * p.queries + row] = l[r] > 0 ? m[r] + std::log(l[r]) : kNegInf;
      }
    }
  });
  return {out, lse};
}

// ---------------------------------------------------------------------------- backward
// Work items are (batch*head, split of its query blocks). With at least as many (b, h) pairs
// as threads there is one split and each item owns its dK/dV rows; otherwise the query blocks
// are split and the per-split partial dK/dV are summed in a fixed order (deterministic).
int64_t backward_splits(int64_t pairs, int64_t blocks) {
  const int64_t threads = at::get_num_threads();
  int64_t splits = threads / std::gcd(pairs, threads);
  return std::max<int64_t>(1, std::min(splits, blocks));
}

template <typename scalar_t>
std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor> backward(
    const ProblemDesc& p, const at::Tensor& grad_out, const at::Tensor& q, at::TensorList keys, at::TensorList values,
    const std::optional<at::Tensor>& rel_bias, const at::Tensor& lse, const std::optional<at::Tensor>& attn_mask) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr auto acc_type = c10::CppTypeToScalarType<acc_t>::value;
  const auto ops = prepare<scalar_t, acc_t>(p, q, keys, values, rel_bias, attn_mask, /*transposed_values=*/true);
  const auto d_out_t = grad_out.stride(3) == 1 ? grad_out : grad_out.contiguous();
  const auto lse_t = lse.to(acc_type).contiguous();
  const Rows<scalar_t> d_out = rows_of<scalar_t>(d_out_t);
  const acc_t* lse_data = lse_t.template const_data_ptr<acc_t>();

  const int64_t D = p.head_dim, B = p.batch, H = p.heads, pairs = B * H;
  const int64_t blocks = (p.queries + kBlockRowsBackward - 1) / kBlockRowsBackward;
  const int64_t splits = backward_splits(pairs, blocks);
  const auto chunks = plan_chunks(p);
  const acc_t scale = static_cast<acc_t>(p.scale);
  constexpr acc_t kNegInf = -std::numeric_limits<acc_t>::infinity();

  auto d_q = at::empty({B, H, p.queries, D}, q.options());
  auto d_rel_bias = p.has_rel_bias ? at::zeros({B, H, p.queries, p.bins}, q.options().dtype(acc_type)) : at::Tensor();
  // dK/dV accumulators over the concatenated keys: (pairs, splits, Nk, D).
  auto d_kv = at::empty({2, pairs, splits, p.keys, D}, q.options().dtype(acc_type));
  scalar_t* d_q_data = d_q.template mutable_data_ptr<scalar_t>();
  acc_t* d_rel_bias_data = p.has_rel_bias ? d_rel_bias.template mutable_data_ptr<acc_t>() : nullptr;
  acc_t* d_k_all = d_kv.template mutable_data_ptr<acc_t>();
  acc_t* d_v_all = d_k_all + pairs * splits * p.keys * D;

  // A block keeps P and dP of all its keys (rows x Nk: at most a few MB, never Nq x Nk), so the
  // softmax backward uses delta = sum_j P dP exactly as autograd does, instead of dO . (out - q),
  // which loses digits to cancellation when a row attends to few keys.
  at::parallel_for(0, pairs * splits, 1, [&](int64_t begin, int64_t end) {
    const int64_t R = kBlockRowsBackward, ld = p.keys;
    std::vector<acc_t> P(R * ld), dP(R * ld), dQ(R * D), dO_buf(R * D), qs_buf, plane;
    std::vector<acc_t> T(R * widest(chunks));  // a chunk of P or dS, transposed
    std::vector<acc_t> row_lse(R), row_delta(R), row_pivot(R);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bh = item / splits, split = item % splits, b = bh / H, h = bh % H;
      acc_t* d_k = d_k_all + item * p.keys * D;
      acc_t* d_v = d_v_all + item * p.keys * D;
      std::fill(d_k, d_k + p.keys * D, acc_t(0));
      std::fill(d_v, d_v + p.keys * D, acc_t(0));
      for (int64_t blk = blocks * split / splits; blk < blocks * (split + 1) / splits; ++blk) {
        const int64_t r0 = blk * R, rows = std::min(R, p.queries - r0);
        const acc_t* qs = load_scaled_rows<scalar_t, acc_t>(ops.q, b, h, r0, rows, D, scale, qs_buf);
        for (const auto r : c10::irange(rows)) {
          const scalar_t* go = d_out.at(b, h, r0 + r);
          for (const auto c : c10::irange(D)) dO_buf[r * D + c] = static_cast<acc_t>(go[c]);
          row_lse[r] = lse_data[bh * p.queries + r0 + r];
        }
        // Phase 1: P = exp(S - lse) and dP = dO V^T for every chunk.
        for (const auto& c : chunks) {
          const auto& kt = ops.kt[c.seg];
          const auto& vt = ops.vt[c.seg];
          const int64_t key0 = p.segments[c.seg].key_offset + c.start;
          acc_t* Pc = P.data() + key0;
          acc_t* dPc = dP.data() + key0;
          matmul<acc_t>(rows, c.count, D, qs, D, kt.at(b, h, 0) + c.start, kt.sn, false, Pc, ld);
          add_bias_and_mask(p, ops, c, b, h, r0, rows, Pc, ld, plane);
          matmul<acc_t>(rows, c.count, D, dO_buf.data(), D, vt.at(b, h, 0) + c.start, vt.sn, false, dPc, ld);
          for (const auto r : c10::irange(rows)) {
            acc_t* s = Pc + r * ld;
            if (row_lse[r] == kNegInf) {
              std::fill(s, s + c.count, acc_t(0));
            } else {
              cpu::exp_sub(s, row_lse[r], c.count);
            }
          }
        }
        // delta = sum_j P_j dP_j, taken about the dP of the row's largest P: with sum P = 1,
        // dP_i - delta = (dP_i - dP_m) - sum_j P_j (dP_j - dP_m). The dominant key's term is then
        // exactly 0 instead of dP_m (1 - P_m) left over from two large numbers, so a peaked row
        // (a softmax that one key wins) keeps the digits of its small dS (row_pivot).
        for (const auto r : c10::irange(rows)) {
          const acc_t* pr = P.data() + r * ld;
          const acc_t* dpr = dP.data() + r * ld;
          int64_t m = 0;
          for (const auto j : c10::irange(p.keys)) m = pr[j] > pr[m] ? j : m;
          row_pivot[r] = dpr[m];
          row_delta[r] = cpu::shifted_dot(pr, dpr, row_pivot[r], p.keys);
        }
        // Phase 2: dS = P (dP - delta); dV += P^T dO, dK += dS^T (scale Q), dQ += dS K (times scale
        // when written), tables.
        std::fill(dQ.begin(), dQ.end(), acc_t(0));
        acc_t* d_rel_bias_rows = d_rel_bias_data ? d_rel_bias_data + (bh * p.queries + r0) * p.bins : nullptr;
        for (const auto& c : chunks) {
          const auto& k = ops.k[c.seg];
          const int64_t key0 = p.segments[c.seg].key_offset + c.start;
          acc_t* Pc = P.data() + key0;
          acc_t* dSc = dP.data() + key0;
          transpose(Pc, ld, rows, c.count, T.data());
          matmul<acc_t>(c.count, D, rows, T.data(), rows, dO_buf.data(), D, true, d_v + key0 * D, D);
          for (const auto r : c10::irange(rows)) {
            cpu::softmax_grad(dSc + r * ld, Pc + r * ld, row_pivot[r], row_delta[r], c.count);
          }
          if (d_rel_bias_rows) accumulate_rel_bias_grad(p, c, dSc, ld, rows, d_rel_bias_rows, plane);
          transpose(dSc, ld, rows, c.count, T.data());
          matmul<acc_t>(c.count, D, rows, T.data(), rows, qs, D, true, d_k + key0 * D, D);
          matmul<acc_t>(rows, D, c.count, dSc, ld, k.at(b, h, c.start), k.sn, true, dQ.data(), D);
        }
        for (const auto r : c10::irange(rows)) {
          const bool res = residual_row(p, r0 + r);
          scalar_t* dq = d_q_data + (bh * p.queries + r0 + r) * D;
          for (const auto c : c10::irange(D)) {
            dq[c] = static_cast<scalar_t>(scale * dQ[r * D + c] + (res ? dO_buf[r * D + c] : acc_t(0)));
          }
        }
      }
    }
  });

  // Sum the splits (fixed order) and cut the concatenated key axis back into segments.
  auto d_kv_sum = splits == 1 ? d_kv.select(2, 0) : d_kv.sum(2);
  d_kv_sum = d_kv_sum.view({2, B, H, p.keys, D});
  std::vector<at::Tensor> d_keys, d_values;
  for (const auto& seg : p.segments) {
    d_keys.push_back(d_kv_sum[0].narrow(2, seg.key_offset, seg.tokens).to(q.scalar_type()).contiguous());
    d_values.push_back(d_kv_sum[1].narrow(2, seg.key_offset, seg.tokens).to(q.scalar_type()).contiguous());
  }
  at::Tensor d_rel_bias_out = p.has_rel_bias ? d_rel_bias.to(rel_bias->scalar_type()) : q.new_empty({0});
  return {d_q, d_keys, d_values, d_rel_bias_out};
}

// ---------------------------------------------------------------------------- registration
// The element types this kernel is compiled for. This dispatch is their only list: the
// input check and capabilities() ask it (cpu_serves).
#define MEMVIT_CPU_DISPATCH(TYPE, NAME, ...) AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, TYPE, NAME, __VA_ARGS__)

void check_cpu(const at::Tensor& q) {
  TORCH_CHECK(cpu_serves(q.scalar_type()), "memvit_ext.pooling_attention (CPU kernel): no kernel for ",
              q.scalar_type(), " inputs (memvit_ext.kernel_capabilities() lists the served dtypes); "
              "memvit_ext.memory_pooling_attention falls back to PyTorch for them.");
}

std::tuple<at::Tensor, at::Tensor> pooling_attention_cpu(const at::Tensor& q, at::TensorList keys,
                                                         at::TensorList values,
                                                         const std::optional<at::Tensor>& rel_bias,
                                                         at::IntArrayRef kv_thw, at::IntArrayRef kv_cls,
                                                         at::IntArrayRef bin_offsets, double scale, bool residual,
                                                         bool q_cls, const std::optional<at::Tensor>& attn_mask) {
  const auto p = describe_problem("memvit_ext.pooling_attention", q, keys, values, rel_bias, kv_thw, kv_cls,
                                  bin_offsets, scale, residual, q_cls, attn_mask);
  check_cpu(q);
  return MEMVIT_CPU_DISPATCH(q.scalar_type(), "pooling_attention_cpu",
                                        [&] { return forward<scalar_t>(p, q, keys, values, rel_bias, attn_mask); });
}

std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>, at::Tensor> pooling_attention_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& q, at::TensorList keys, at::TensorList values,
    const std::optional<at::Tensor>& rel_bias, const at::Tensor& out, const at::Tensor& lse, at::IntArrayRef kv_thw,
    at::IntArrayRef kv_cls, at::IntArrayRef bin_offsets, double scale, bool residual, bool q_cls,
    const std::optional<at::Tensor>& attn_mask) {
  const auto p = describe_problem("memvit_ext.pooling_attention_backward", q, keys, values, rel_bias, kv_thw, kv_cls,
                                  bin_offsets, scale, residual, q_cls, attn_mask);
  check_cpu(q);
  check_backward_inputs(p, grad_out, out, lse);
  return MEMVIT_CPU_DISPATCH(q.scalar_type(), "pooling_attention_backward_cpu", [&] {
    return backward<scalar_t>(p, grad_out, q, keys, values, rel_bias, lse, attn_mask);
  });
}

}  // namespace

bool cpu_serves(at::ScalarType type) {
  bool served = false;
  try {
    MEMVIT_CPU_DISPATCH(type, "memvit_ext CPU kernel", [&] { served = true; });
  } catch (const c10::Error&) {  // the dispatch's "not implemented for" error
  }
  return served;
}

TORCH_LIBRARY_IMPL(memvit_ext, CPU, m) {
  m.impl("pooling_attention", &pooling_attention_cpu);
  m.impl("pooling_attention_backward", &pooling_attention_backward_cpu);
}

}  // namespace memvit
