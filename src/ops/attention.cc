#include <cmath>
#include <limits>
#include <vector>

#include "core/check.h"
#include "kernels/attention.h"
#include "ops/check.h"
#include "ops/ops.h"

namespace mmembed::ops {

namespace {

constexpr const char* kOp = "multi_head_attention";

// The HF attention_mask [B, Tk] (nonzero = keep) as additive f32: 0 or the lowest float.
std::vector<float> additive_key_mask(const Tensor& mask, std::int64_t batch, std::int64_t kv_len) {
  MMEMBED_CHECK(mask.rank() == 2 && mask.dim(0) == batch && mask.dim(1) == kv_len, ShapeError, kOp,
                ": key_padding_mask ", shape_str(mask.shape()), " does not match keys [", batch,
                ",", kv_len, "] (expected [batch, kv_len])");
  const DType dt = mask.dtype();
  MMEMBED_CHECK(dt == DType::F32 || dt == DType::I64 || dt == DType::I32 || dt == DType::U8 ||
                    dt == DType::Bool,
                ShapeError, kOp, ": key_padding_mask must be f32, i64, i32, u8 or bool, got ",
                mask.describe());
  std::vector<float> add(static_cast<std::size_t>(mask.numel()));
  for (std::int64_t i = 0; i < mask.numel(); ++i) {
    // value_at reads any dtype; the mask is small (B * Tk), so its cost does not matter.
    add[static_cast<std::size_t>(i)] =
        mask.value_at(i) != 0.0 ? 0.0f : std::numeric_limits<float>::lowest();
  }
  return add;
}

struct Geometry {
  kernels::AttentionDims dims;
  float scale;
};

Geometry check_qkv(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t num_heads,
                   const AttentionOptions& options) {
  detail::require_f32(kOp, "q", q);
  detail::require_f32(kOp, "k", k);
  detail::require_f32(kOp, "v", v);
  MMEMBED_CHECK(q.rank() == 3 && k.rank() == 3 && v.rank() == 3, ShapeError, kOp,
                ": q, k, v must be [batch, len, heads*head_dim], got q ", shape_str(q.shape()),
                " k ", shape_str(k.shape()), " v ", shape_str(v.shape()));
  MMEMBED_CHECK(num_heads >= 1, InvalidArgument, kOp, ": num_heads must be >= 1, got ", num_heads);
  const std::int64_t width = q.dim(2);
  MMEMBED_CHECK(width % num_heads == 0 && width > 0, ShapeError, kOp, ": q ",
                shape_str(q.shape()), " width ", width, " is not a positive multiple of num_heads ",
                num_heads);
  MMEMBED_CHECK(k.shape() == v.shape() && k.dim(0) == q.dim(0) && k.dim(2) == width, ShapeError,
                kOp, ": q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), " and v ",
                shape_str(v.shape()), " do not match (expected k and v [", q.dim(0), ",kv_len,",
                width, "])");
  MMEMBED_CHECK(!options.causal || q.dim(1) == k.dim(1), ShapeError, kOp,
                ": causal attention needs q_len == kv_len, got q ", shape_str(q.shape()), " k ",
                shape_str(k.shape()));
  Geometry g;
  g.dims = {q.dim(0), q.dim(1), k.dim(1), num_heads, width / num_heads};
  g.scale = options.scale ? *options.scale
                          : static_cast<float>(1.0 / std::sqrt(static_cast<double>(g.dims.head_dim)));
  return g;
}

void run(const float* q, std::int64_t q_ld, const float* k, std::int64_t k_ld, const float* v,
         std::int64_t v_ld, float* out, const Geometry& g, const AttentionOptions& options) {
  std::vector<float> mask;
  if (options.key_padding_mask) {
    mask = additive_key_mask(*options.key_padding_mask, g.dims.batch, g.dims.kv_len);
  }
  const std::int64_t width = g.dims.num_heads * g.dims.head_dim;
  kernels::attention(q, q_ld, k, k_ld, v, v_ld, out, width, g.dims, g.scale,
                     options.key_padding_mask ? mask.data() : nullptr, options.causal);
}

}  // namespace

void multi_head_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                          std::int64_t num_heads, const AttentionOptions& options, Tensor& out) {
  Geometry g = check_qkv(q, k, v, num_heads, options);
  detail::require_out(kOp, out, q.shape());
  MMEMBED_CHECK(out.numel() == 0 || (out.raw() != q.raw() && out.raw() != k.raw() &&
                                     out.raw() != v.raw()),
                ShapeError, kOp, ": output must not share storage with q, k or v");
  const std::int64_t width = q.dim(2);
  run(q.data<float>(), width, k.data<float>(), width, v.data<float>(), width, out.data<float>(), g,
      options);
}

Tensor multi_head_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                            std::int64_t num_heads, const AttentionOptions& options) {
  check_qkv(q, k, v, num_heads, options);
  Tensor out = Tensor::empty(DType::F32, q.shape());
  multi_head_attention(q, k, v, num_heads, options, out);
  return out;
}

namespace {
Geometry check_packed(const Tensor& qkv, std::int64_t num_heads, const AttentionOptions& options) {
  detail::require_f32(kOp, "qkv", qkv);
  MMEMBED_CHECK(qkv.rank() == 3 && qkv.dim(2) % 3 == 0, ShapeError, kOp, ": qkv must be [batch, ",
                "len, 3*heads*head_dim], got ", shape_str(qkv.shape()));
  const std::int64_t width = qkv.dim(2) / 3;
  // Shape checks on views of the three column blocks' shapes (the data is read in place).
  Tensor shape_only = Tensor::borrow(qkv.raw(), DType::F32, {qkv.dim(0), qkv.dim(1), width});
  return check_qkv(shape_only, shape_only, shape_only, num_heads, options);
}
}  // namespace

void multi_head_attention_packed(const Tensor& qkv, std::int64_t num_heads,
                                 const AttentionOptions& options, Tensor& out) {
  Geometry g = check_packed(qkv, num_heads, options);
  const std::int64_t width = qkv.dim(2) / 3;
  detail::require_out(kOp, out, {qkv.dim(0), qkv.dim(1), width});
  if (out.numel() == 0) return;
  MMEMBED_CHECK(out.raw() != qkv.raw(), ShapeError, kOp,
                ": output must not share storage with qkv");
  const float* base = qkv.data<float>();
  const std::int64_t ld = 3 * width;
  run(base, ld, base + width, ld, base + 2 * width, ld, out.data<float>(), g, options);
}

Tensor multi_head_attention_packed(const Tensor& qkv, std::int64_t num_heads,
                                   const AttentionOptions& options) {
  check_packed(qkv, num_heads, options);
  Tensor out = Tensor::empty(DType::F32, {qkv.dim(0), qkv.dim(1), qkv.dim(2) / 3});
  multi_head_attention_packed(qkv, num_heads, options, out);
  return out;
}

}  // namespace mmembed::ops
