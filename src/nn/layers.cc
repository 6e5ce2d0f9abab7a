#include "nn/layers.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "core/check.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"

namespace mmembed::nn {

std::string join(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  std::string s(prefix);
  s += '.';
  s += name;
  return s;
}

// ---- Scratch ----

Tensor Scratch::get(std::size_t slot, const Shape& shape) {
  if (slot >= buffers_.size()) buffers_.resize(slot + 1);
  Buffer& b = buffers_[slot];
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * sizeof(float);
  if (b.storage == nullptr || b.bytes < bytes) {
    b.storage = aligned_alloc_shared(std::max<std::size_t>(bytes, sizeof(float)));
    b.bytes = bytes;
  }
  return Tensor::wrap(b.storage.get(), DType::F32, shape, b.storage);
}

// ---- activations ----

Activation parse_activation(std::string_view name, std::string_view what) {
  if (name == "gelu") return Activation::Gelu;
  if (name == "quick_gelu") return Activation::QuickGelu;
  if (name == "tanh") return Activation::Tanh;
  throw Unsupported(str_cat(what, ": activation '", name,
                            "' is not supported (supported: gelu, quick_gelu, tanh)"));
}

void activate(Activation act, const Tensor& x, Tensor& out) {
  switch (act) {
    case Activation::Gelu:
      ops::gelu(x, out);
      return;
    case Activation::QuickGelu:
      ops::quick_gelu(x, out);
      return;
    case Activation::Tanh:
      ops::tanh(x, out);
      return;
  }
  MMEMBED_ASSERT(false);
}

// ---- element-wise helpers ----

void add_row_inplace(Tensor& x, const float* row) {
  const std::int64_t c = x.dim(-1);
  const std::int64_t rows = c == 0 ? 0 : x.numel() / c;
  float* base = x.data<float>();
  kernels::parallel_for(rows, kernels::row_grain(c), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      float* p = base + r * c;
      for (std::int64_t j = 0; j < c; ++j)
        p[j] += row[j];
    }
  });
}

void add_inplace(Tensor& x, const Tensor& y) {
  MMEMBED_CHECK(x.shape() == y.shape(), ShapeError, "add: ", shape_str(x.shape()), " and ",
                shape_str(y.shape()), " differ");
  float* p = x.data<float>();
  const float* q = y.data<float>();
  // Element-wise, so the split over the kernels' threads does not change the results.
  kernels::parallel_for(x.numel(), 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i)
      p[i] += q[i];
  });
}

void gather_token(const Tensor& x, std::int64_t index, Tensor& out) {
  MMEMBED_CHECK(x.rank() == 3 && index >= 0 && index < x.dim(1), ShapeError,
                "gather_token: ", shape_str(x.shape()), " has no token ", index);
  const std::int64_t b = x.dim(0), t = x.dim(1), c = x.dim(2);
  MMEMBED_CHECK(out.shape() == Shape({b, c}), ShapeError, "gather_token: output ",
                shape_str(out.shape()), " expected [", b, ",", c, "]");
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (std::int64_t i = 0; i < b; ++i) {
    std::copy_n(src + (i * t + index) * c, c, dst + i * c);
  }
}

// ---- batch parts ----

std::int64_t batch_parts(std::int64_t batch, std::int64_t rows_per_item) {
  static const bool disabled = [] {
    const char* e = std::getenv("MMEMBED_BATCH_PARTS");
    return e != nullptr && std::string_view(e) == "0";
  }();
  const std::int64_t threads = kernels::num_threads();
  if (disabled || threads <= 1 || kernels::in_parallel_task() || batch < threads) return 1;
  return (batch / threads) * rows_per_item >= kMinRowsPerPart ? threads : 1;
}

void for_batch_parts(std::int64_t batch, std::int64_t parts,
                     const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (parts <= 1) {
    fn(0, batch);
    return;
  }
  kernels::parallel_tasks(parts,
                          [&](std::int64_t i) { fn(batch * i / parts, batch * (i + 1) / parts); });
}

void run_layers_in_parts(Tensor& X, Tensor& Y, std::int64_t parts, std::size_t count,
                         const LayerStep& step, Scratch* whole) {
  for_batch_parts(X.dim(0), parts, [&](std::int64_t b0, std::int64_t b1) {
    Scratch own;
    Scratch& scratch = parts <= 1 && whole != nullptr ? *whole : own;
    Tensor x = X.slice_rows(b0, b1), y = Y.slice_rows(b0, b1);
    for (std::size_t l = 0; l < count; ++l) {
      step(l, b0, b1, x, y, scratch);
      std::swap(x, y);
    }
  });
  if (count % 2 == 1) std::swap(X, Y);
}

// ---- Linear ----

void Linear::expect(WeightList& list, const std::string& prefix, std::int64_t in_features,
                    std::int64_t out_features, bool bias) {
  list.push_back({join(prefix, "weight"), {out_features, in_features}});
  if (bias) list.push_back({join(prefix, "bias"), {out_features}});
}

Linear::Linear(const io::BoundWeights& w, const std::string& prefix) {
  io::BoundWeights::Matrix m = w.get_matrix(join(prefix, "weight"));
  weight_ = std::move(m.weight);
  scales_ = std::move(m.scales);
  if (w.matrix_dtype() == DType::I8 && weight_.dtype() != DType::I8) quantize_weight();
  if (w.has(join(prefix, "bias"))) bias_ = w.get_f32(join(prefix, "bias"));
}

void Linear::quantize_weight() {
  const Tensor f = weight_.to_f32();
  const std::int64_t rows = f.dim(0), cols = f.dim(1);
  const float* src = f.data<float>();
  for (std::int64_t i = 0; i < f.numel(); ++i) {
    MMEMBED_CHECK(std::isfinite(src[i]), FormatError, "a weight matrix [", rows, ", ", cols,
                  "] has a non-finite value at row ", i / cols, "; it cannot be quantized");
  }
  Tensor q = Tensor::empty(DType::I8, f.shape());
  Tensor scales = Tensor::empty(DType::F32, {rows});
  kernels::quantize_rows_s8(src, rows, cols, static_cast<std::int8_t*>(q.raw()),
                            scales.data<float>());
  weight_ = std::move(q);
  scales_ = std::move(scales);
}

Linear::Linear(Tensor weight, std::optional<Tensor> bias, std::optional<Tensor> weight_scales)
    : weight_(std::move(weight)), bias_(std::move(bias)), scales_(std::move(weight_scales)) {
  MMEMBED_ASSERT(weight_.rank() == 2);
  MMEMBED_ASSERT((weight_.dtype() == DType::I8) == scales_.has_value());
}

Tensor Linear::forward(const Tensor& x) const {
  Shape shape = x.shape();
  MMEMBED_CHECK(!shape.empty(), ShapeError, "linear: input must have rank >= 1");
  shape.back() = out_features();
  Tensor out = Tensor::empty(DType::F32, shape);
  apply(x, out, true);
  return out;
}

void Linear::apply(const Tensor& x, Tensor& out, bool with_bias,
                   ops::LinearEpilogue epilogue) const {
  static const std::optional<Tensor> none;
  const std::optional<Tensor>& bias = with_bias ? bias_ : none;
  if (scales_) {
    ops::linear(x, weight_, *scales_, bias, epilogue, out);
  } else {
    ops::linear(x, weight_, bias, epilogue, out);
  }
}

// ---- LayerNorm ----

void LayerNorm::expect(WeightList& list, const std::string& prefix, std::int64_t dim) {
  list.push_back({join(prefix, "weight"), {dim}});
  list.push_back({join(prefix, "bias"), {dim}});
}

LayerNorm::LayerNorm(const io::BoundWeights& w, const std::string& prefix, float eps)
    : weight_(w.get_f32(join(prefix, "weight"))),
      bias_(w.get_f32(join(prefix, "bias"))),
      eps_(eps) {}

// ---- Embedding ----

void Embedding::expect(WeightList& list, const std::string& prefix, std::int64_t num,
                       std::int64_t dim) {
  list.push_back({join(prefix, "weight"), {num, dim}});
}

Embedding::Embedding(const io::BoundWeights& w, const std::string& prefix)
    : Embedding(w.get_f32(join(prefix, "weight"))) {}

Embedding::Embedding(Tensor table) : table_(std::move(table)) {
  if (table_.rank() == 1) table_ = table_.reshape({1, table_.dim(0)});
  MMEMBED_ASSERT(table_.rank() == 2);
}

const float* Embedding::row(std::int64_t i, std::string_view what) const {
  MMEMBED_CHECK(i >= 0 && i < num(), InvalidArgument, what, " ", i, " is out of range [0, ", num(),
                ")");
  return table_.data<float>() + i * dim();
}

// ---- MultiHeadAttention ----

void MultiHeadAttention::expect(WeightList& list, const std::string& prefix,
                                const AttentionDims& dims, const AttentionNames& names) {
  Linear::expect(list, join(prefix, names.query), dims.hidden, dims.hidden);
  Linear::expect(list, join(prefix, names.key), dims.hidden, dims.hidden);
  Linear::expect(list, join(prefix, names.value), dims.hidden, dims.hidden);
  Linear::expect(list, join(prefix, names.output), dims.hidden, dims.hidden);
}

MultiHeadAttention::MultiHeadAttention(const io::BoundWeights& w, const std::string& prefix,
                                       const AttentionDims& dims, const AttentionNames& names)
    : query_(w, join(prefix, names.query)),
      key_(w, join(prefix, names.key)),
      value_(w, join(prefix, names.value)),
      output_(w, join(prefix, names.output)),
      num_heads_(dims.num_heads) {
  MMEMBED_CHECK(dims.num_heads > 0 && dims.hidden % dims.num_heads == 0, InvalidArgument, prefix,
                ": hidden size ", dims.hidden, " is not a multiple of the number of heads ",
                dims.num_heads);
}

void MultiHeadAttention::forward(const Tensor& x, const Tensor& context,
                                 const ops::AttentionOptions& attention, Tensor& out,
                                 Scratch& scratch, bool output_bias) const {
  const std::int64_t b = x.dim(0), t = x.dim(1), tc = context.dim(1);
  Tensor q = scratch.get(0, {b, t, query_.out_features()});
  Tensor k = scratch.get(1, {b, tc, key_.out_features()});
  Tensor v = scratch.get(2, {b, tc, value_.out_features()});
  Tensor a = scratch.get(3, {b, t, query_.out_features()});
  query_.forward(x, q);
  key_.forward(context, k);
  value_.forward(context, v);
  ops::multi_head_attention(q, k, v, num_heads_, attention, a);
  if (output_bias) {
    output_.forward(a, out);
  } else {
    output_.apply(a, out, /*with_bias=*/false);
  }
}

// ---- PackedSelfAttention ----

void PackedSelfAttention::expect(WeightList& list, const std::string& prefix,
                                 const AttentionDims& dims) {
  list.push_back({join(prefix, "in_proj_weight"), {3 * dims.hidden, dims.hidden}});
  list.push_back({join(prefix, "in_proj_bias"), {3 * dims.hidden}});
  Linear::expect(list, join(prefix, "out_proj"), dims.hidden, dims.hidden);
}

namespace {
Linear packed_in_proj(const io::BoundWeights& w, const std::string& prefix) {
  io::BoundWeights::Matrix m = w.get_matrix(join(prefix, "in_proj_weight"));
  Linear l(std::move(m.weight), w.get_f32(join(prefix, "in_proj_bias")), std::move(m.scales));
  if (w.matrix_dtype() == DType::I8 && l.weight().dtype() != DType::I8) l.quantize_weight();
  return l;
}
}  // namespace

PackedSelfAttention::PackedSelfAttention(const io::BoundWeights& w, const std::string& prefix,
                                         const AttentionDims& dims)
    : in_proj_(packed_in_proj(w, prefix)),
      out_proj_(w, join(prefix, "out_proj")),
      num_heads_(dims.num_heads) {
  MMEMBED_CHECK(dims.num_heads > 0 && dims.hidden % dims.num_heads == 0, InvalidArgument, prefix,
                ": hidden size ", dims.hidden, " is not a multiple of the number of heads ",
                dims.num_heads);
  const std::int64_t d = dims.hidden;
  const Tensor& weight = in_proj_.weight();
  const Tensor& bias = *in_proj_.bias();
  const std::optional<Tensor>& scales = in_proj_.weight_scales();
  auto rows = [&](std::int64_t r0, std::int64_t r1) {
    return scales ? std::optional<Tensor>(scales->slice_rows(r0, r1)) : std::nullopt;
  };
  q_proj_ = Linear(weight.slice_rows(0, d), bias.slice_rows(0, d), rows(0, d));
  k_proj_ = Linear(weight.slice_rows(d, 2 * d), bias.slice_rows(d, 2 * d), rows(d, 2 * d));
  v_proj_ =
      Linear(weight.slice_rows(2 * d, 3 * d), bias.slice_rows(2 * d, 3 * d), rows(2 * d, 3 * d));
}

void PackedSelfAttention::forward(const Tensor& x, const ops::AttentionOptions& attention,
                                  Tensor& out, Scratch& scratch) const {
  const std::int64_t b = x.dim(0), t = x.dim(1);
  Tensor qkv = scratch.get(0, {b, t, in_proj_.out_features()});
  Tensor a = scratch.get(1, {b, t, in_proj_.out_features() / 3});
  in_proj_.forward(x, qkv);
  ops::multi_head_attention_packed(qkv, num_heads_, attention, a);
  out_proj_.forward(a, out);
}

void PackedSelfAttention::forward_first_token(const Tensor& x,
                                              const ops::AttentionOptions& attention, Tensor& out,
                                              Scratch& scratch) const {
  MMEMBED_ASSERT(!attention.causal);
  const std::int64_t b = x.dim(0), t = x.dim(1), d = q_proj_.out_features();
  Tensor x0 = scratch.get(9, {b, x.dim(2)});
  gather_token(x, 0, x0);
  Tensor q = scratch.get(0, {b, 1, d}), k = scratch.get(1, {b, t, d});
  Tensor v = scratch.get(2, {b, t, d}), a = scratch.get(3, {b, 1, d});
  q_proj_.forward(x0.reshape({b, 1, x.dim(2)}), q);
  k_proj_.forward(x, k);
  v_proj_.forward(x, v);
  ops::multi_head_attention(q, k, v, num_heads_, attention, a);
  out_proj_.forward(a, out);
}

// ---- Mlp ----

void Mlp::expect(WeightList& list, const std::string& fc1, const std::string& fc2, std::int64_t dim,
                 std::int64_t hidden) {
  Linear::expect(list, fc1, dim, hidden);
  Linear::expect(list, fc2, hidden, dim);
}

Mlp::Mlp(const io::BoundWeights& w, const std::string& fc1, const std::string& fc2, Activation act)
    : fc1_(w, fc1), fc2_(w, fc2), act_(act) {}

void Mlp::forward(const Tensor& x, Tensor& out, Scratch& scratch, bool fc2_bias) const {
  Shape hidden_shape = x.shape();
  hidden_shape.back() = fc1_.out_features();
  Tensor h = scratch.get(4, hidden_shape);
  // GELU / QuickGELU (and fc1's bias) run fused into fc1's tiles, within rounding of the
  // separate passes.
  if (act_ == Activation::Gelu || act_ == Activation::QuickGelu) {
    fc1_.apply(
        x, h, /*with_bias=*/true,
        act_ == Activation::Gelu ? ops::LinearEpilogue::Gelu : ops::LinearEpilogue::QuickGelu);
  } else {
    fc1_.forward(x, h);
    activate(act_, h, h);
  }
  if (fc2_bias) {
    fc2_.forward(h, out);
  } else {
    fc2_.apply(h, out, /*with_bias=*/false);
  }
}

// ---- BertAttention ----

void BertAttention::expect(WeightList& list, const std::string& prefix, const BertDims& dims) {
  MultiHeadAttention::expect(list, prefix, {dims.hidden, dims.num_heads}, AttentionNames::bert());
  LayerNorm::expect(list, join(prefix, "output.LayerNorm"), dims.hidden);
}

BertAttention::BertAttention(const io::BoundWeights& w, const std::string& prefix,
                             const BertDims& dims, float eps)
    : attention_(w, prefix, {dims.hidden, dims.num_heads}, AttentionNames::bert()),
      norm_(w, join(prefix, "output.LayerNorm"), eps) {}

void BertAttention::forward(const Tensor& x, const Tensor& context,
                            const std::optional<Tensor>& key_mask, Tensor& out,
                            Scratch& scratch) const {
  ops::AttentionOptions options;
  options.key_padding_mask = key_mask;
  Tensor projected = scratch.get(5, x.shape());
  attention_.forward(x, context, options, projected, scratch, /*output_bias=*/false);
  // LN((dense(attn) + dense.bias) + input), as BertSelfOutput, in one pass.
  norm_.forward_sum(projected, attention_.output().bias(), x, out);
}

// ---- BertLayer ----

void BertLayer::expect(WeightList& list, const std::string& prefix, const BertDims& dims) {
  BertAttention::expect(list, join(prefix, "attention"), dims);
  Mlp::expect(list, join(prefix, "intermediate.dense"), join(prefix, "output.dense"), dims.hidden,
              dims.intermediate);
  LayerNorm::expect(list, join(prefix, "output.LayerNorm"), dims.hidden);
}

BertLayer::BertLayer(const io::BoundWeights& w, const std::string& prefix, const BertDims& dims,
                     Activation act, float eps)
    : attention_(w, join(prefix, "attention"), dims, eps),
      mlp_(w, join(prefix, "intermediate.dense"), join(prefix, "output.dense"), act),
      output_norm_(w, join(prefix, "output.LayerNorm"), eps) {}

void BertLayer::forward(const Tensor& x, const std::optional<Tensor>& key_mask, Tensor& out,
                        Scratch& scratch) const {
  Tensor a = scratch.get(6, x.shape());
  attention_.forward(x, x, key_mask, a, scratch);
  Tensor f = scratch.get(7, x.shape());
  mlp_.forward(a, f, scratch, /*fc2_bias=*/false);
  output_norm_.forward_sum(f, mlp_.fc2().bias(), a, out);  // LN((fc2 + bias) + a), one pass
}

void BertLayer::forward_first_token(const Tensor& x, const std::optional<Tensor>& key_mask,
                                    Tensor& out, Scratch& scratch) const {
  const std::int64_t b = x.dim(0), d = x.dim(2);
  Tensor x0 = scratch.get(10, {b, d});
  gather_token(x, 0, x0);
  const Tensor query = x0.reshape({b, 1, d});
  Tensor a = scratch.get(6, {b, 1, d});
  attention_.forward(query, x, key_mask, a, scratch);
  Tensor f = scratch.get(7, {b, 1, d});
  mlp_.forward(a, f, scratch, /*fc2_bias=*/false);
  output_norm_.forward_sum(f, mlp_.fc2().bias(), a, out);  // LN((fc2 + bias) + a), one pass
}

// ---- BertCrossLayer ----

void BertCrossLayer::expect(WeightList& list, const std::string& prefix, const BertDims& dims) {
  BertAttention::expect(list, join(prefix, "attention"), dims);
  BertAttention::expect(list, join(prefix, "crossattention"), dims);
  Mlp::expect(list, join(prefix, "intermediate.dense"), join(prefix, "output.dense"), dims.hidden,
              dims.intermediate);
  LayerNorm::expect(list, join(prefix, "output.LayerNorm"), dims.hidden);
}

BertCrossLayer::BertCrossLayer(const io::BoundWeights& w, const std::string& prefix,
                               const BertDims& dims, Activation act, float eps)
    : self_attention_(w, join(prefix, "attention"), dims, eps),
      cross_attention_(w, join(prefix, "crossattention"), dims, eps),
      mlp_(w, join(prefix, "intermediate.dense"), join(prefix, "output.dense"), act),
      output_norm_(w, join(prefix, "output.LayerNorm"), eps) {}

void BertCrossLayer::forward(const Tensor& x, const Tensor& context,
                             const std::optional<Tensor>& x_mask,
                             const std::optional<Tensor>& context_mask, Tensor& out,
                             Scratch& scratch) const {
  Tensor a1 = scratch.get(8, x.shape());
  self_attention_.forward(x, x, x_mask, a1, scratch);
  Tensor a2 = scratch.get(9, x.shape());
  cross_attention_.forward(a1, context, context_mask, a2, scratch);
  Tensor f = scratch.get(7, x.shape());
  mlp_.forward(a2, f, scratch, /*fc2_bias=*/false);
  output_norm_.forward_sum(f, mlp_.fc2().bias(), a2, out);  // LN((fc2 + bias) + a2), one pass
}

void BertCrossLayer::forward_first_token(const Tensor& x, const Tensor& context,
                                         const std::optional<Tensor>& x_mask,
                                         const std::optional<Tensor>& context_mask, Tensor& out,
                                         Scratch& scratch) const {
  const std::int64_t b = x.dim(0), d = x.dim(2);
  Tensor x0 = scratch.get(10, {b, d});
  gather_token(x, 0, x0);
  Tensor a1 = scratch.get(8, {b, 1, d});
  self_attention_.forward(x0.reshape({b, 1, d}), x, x_mask, a1, scratch);
  Tensor a2 = scratch.get(9, {b, 1, d});
  cross_attention_.forward(a1, context, context_mask, a2, scratch);
  Tensor f = scratch.get(7, {b, 1, d});
  mlp_.forward(a2, f, scratch, /*fc2_bias=*/false);
  output_norm_.forward_sum(f, mlp_.fc2().bias(), a2, out);  // LN((fc2 + bias) + a2), one pass
}

// ---- PreLnBlock ----

void PreLnBlock::expect(WeightList& list, const std::string& prefix, const PreLnBlockDims& dims,
                        const PreLnBlockNames& names) {
  LayerNorm::expect(list, join(prefix, names.ln_1), dims.hidden);
  if (names.packed_qkv) {
    PackedSelfAttention::expect(list, join(prefix, names.attention), {dims.hidden, dims.num_heads});
  } else {
    MultiHeadAttention::expect(list, join(prefix, names.attention), {dims.hidden, dims.num_heads},
                               AttentionNames::clip());
  }
  LayerNorm::expect(list, join(prefix, names.ln_2), dims.hidden);
  Mlp::expect(list, join(prefix, names.fc1), join(prefix, names.fc2), dims.hidden, dims.mlp_hidden);
}

PreLnBlock::PreLnBlock(const io::BoundWeights& w, const std::string& prefix,
                       const PreLnBlockDims& dims, const PreLnBlockNames& names, Activation act,
                       float eps)
    : ln_1_(w, join(prefix, names.ln_1), eps),
      ln_2_(w, join(prefix, names.ln_2), eps),
      mlp_(w, join(prefix, names.fc1), join(prefix, names.fc2), act) {
  if (names.packed_qkv) {
    packed_.emplace(w, join(prefix, names.attention), AttentionDims{dims.hidden, dims.num_heads});
  } else {
    separate_.emplace(w, join(prefix, names.attention), AttentionDims{dims.hidden, dims.num_heads},
                      AttentionNames::clip());
  }
}

void PreLnBlock::forward(const Tensor& x, const ops::AttentionOptions& attention, Tensor& out,
                         Scratch& scratch) const {
  Tensor h = scratch.get(5, x.shape());
  ln_1_.forward(x, h);
  Tensor residual = scratch.get(6, x.shape());
  if (packed_) {
    packed_->forward(h, attention, residual, scratch);
  } else {
    separate_->forward(h, h, attention, residual, scratch);
  }
  add_inplace(residual, x);  // x + attn(ln_1(x))
  ln_2_.forward(residual, h);
  mlp_.forward(h, out, scratch);
  add_inplace(out, residual);
}

void PreLnBlock::forward_first_token(const Tensor& x, const ops::AttentionOptions& attention,
                                     Tensor& out, Scratch& scratch) const {
  MMEMBED_ASSERT(!attention.causal);
  const std::int64_t b = x.dim(0), d = x.dim(2);
  Tensor h = scratch.get(5, x.shape());
  ln_1_.forward(x, h);  // keys and values: every token
  Tensor residual = scratch.get(6, {b, 1, d});
  if (packed_) {
    packed_->forward_first_token(h, attention, residual, scratch);
  } else {
    Tensor h0 = scratch.get(9, {b, d});
    gather_token(h, 0, h0);
    separate_->forward(h0.reshape({b, 1, d}), h, attention, residual, scratch);
  }
  Tensor x0 = scratch.get(10, {b, d});
  gather_token(x, 0, x0);
  add_inplace(residual, x0.reshape({b, 1, d}));  // x + attn(ln_1(x)), row 0
  Tensor h2 = scratch.get(5, {b, 1, d});         // h is no longer needed
  ln_2_.forward(residual, h2);
  mlp_.forward(h2, out, scratch);
  add_inplace(out, residual);
}

}  // namespace mmembed::nn
