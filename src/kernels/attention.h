// Multi-head scaled dot-product attention built from the GEMM seam and the softmax kernel.
//
// For each batch b and head h, with Q_bh = q[b, :, h*D:(h+1)*D] (and K_bh, V_bh likewise):
//   out[b, :, h*D:(h+1)*D] = softmax(scale * Q_bh K_bh^T + mask_b) V_bh
//
//   AttentionDims d{.batch = 2, .q_len = 77, .kv_len = 77, .num_heads = 8, .head_dim = 64};
//   kernels::attention(q, 512, k, 512, v, 512, out, 512, d, 0.125f, key_mask, /*causal=*/true);
//
// Rows are addressed with explicit row strides (*_ld, in floats) so that q, k and v can be
// column blocks of one fused QKV projection [B, T, 3*H*D] without a copy.
#pragma once

#include <cstdint>

namespace mmembed::kernels {

struct AttentionDims {
  std::int64_t batch = 0;
  std::int64_t q_len = 0;
  std::int64_t kv_len = 0;
  std::int64_t num_heads = 0;
  std::int64_t head_dim = 0;
};

// q: rows (b, t) at q + (b * q_len + t) * q_ld, each holding num_heads * head_dim values;
// k, v: rows (b, s) at k + (b * kv_len + s) * k_ld (v likewise); out: like q, with out_ld.
// Each *_ld >= num_heads * head_dim; out must not overlap q, k or v.
// key_mask: null, or [batch, kv_len] additive values (0 to keep a key; the lowest float, or
// -inf, to drop it), added to every query row of that batch item.
// causal: query t sees keys s <= t only (requires q_len == kv_len); the dropped keys get
// probability exactly 0.
// Uses the kernels' thread setting: GEMMs on the backend's threads, softmax rows on the pool.
// Results do not depend on the thread count when the GEMM backend's do not (docs/numerics.md).
void attention(const float* q, std::int64_t q_ld, const float* k, std::int64_t k_ld,
               const float* v, std::int64_t v_ld, float* out, std::int64_t out_ld,
               const AttentionDims& dims, float scale, const float* key_mask, bool causal);

namespace ref {
// Direct loops in double: the oracle for the tests.
void attention(const float* q, std::int64_t q_ld, const float* k, std::int64_t k_ld,
               const float* v, std::int64_t v_ld, float* out, std::int64_t out_ld,
               const AttentionDims& dims, float scale, const float* key_mask, bool causal);
}  // namespace ref

}  // namespace mmembed::kernels
