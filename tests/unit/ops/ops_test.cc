// Ops: shape/dtype checks with their messages, and results equal to the kernels they call.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/softmax.h"
#include "mmembed/error.h"
#include "ops/ops.h"

namespace mmembed::ops {
namespace {

Tensor random_tensor(Shape shape, std::uint32_t seed) {
  Tensor t = Tensor::empty(DType::F32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

std::vector<float> values(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

// Runs `fn` and expects it to throw E with exactly `message`.
template <typename E, typename Fn>
void expect_error(Fn fn, const std::string& message) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected: " << message;
  } catch (const E& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(Linear, ShapesAndValues) {
  Tensor x = random_tensor({2, 7, 64}, 1);
  Tensor w = random_tensor({32, 64}, 2);
  Tensor b = random_tensor({32}, 3);
  Tensor y = linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{2, 7, 32}));
  std::vector<float> want(2 * 7 * 32);
  kernels::linear(x.data<float>(), w.data<float>(), b.data<float>(), want.data(), 14, 64, 32);
  EXPECT_EQ(values(y), want);  // the op adds nothing to the kernel's arithmetic
  Tensor y_nobias = linear(x, w);
  kernels::linear(x.data<float>(), w.data<float>(), nullptr, want.data(), 14, 64, 32);
  EXPECT_EQ(values(y_nobias), want);
  Tensor v = random_tensor({64}, 4);  // rank 1 input: one row
  EXPECT_EQ(linear(v, w, b).shape(), (Shape{32}));
}

TEST(Linear, ZeroInFeaturesGivesBias) {
  Tensor x = Tensor::empty(DType::F32, {3, 0});
  Tensor w = Tensor::empty(DType::F32, {4, 0});
  Tensor b = Tensor::from<float>({4}, {1, 2, 3, 4});
  Tensor y = linear(x, w, b);
  EXPECT_EQ(values(y), (std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}));
}

TEST(Linear, ErrorMessages) {
  Tensor x = random_tensor({2, 7, 64}, 1);
  expect_error<ShapeError>([&] { linear(x, random_tensor({128, 32}, 2)); },
                           "linear: input [2,7,64] does not match weight [128,32] (in_features 32)");
  expect_error<ShapeError>([&] { linear(x, random_tensor({64}, 2)); },
                           "linear: weight must be [out_features, in_features], got [64]");
  expect_error<ShapeError>([&] { linear(x, random_tensor({8, 64}, 2), random_tensor({7}, 3)); },
                           "linear: bias [7] does not match weight [8,64] (out_features 8)");
  expect_error<ShapeError>(
      [&] { linear(Tensor::zeros(DType::BF16, {2, 64}), random_tensor({8, 64}, 2)); },
      "linear: input must be f32, got bf16[2,64]");
  Tensor out = Tensor::empty(DType::F32, {2, 7, 9});
  expect_error<ShapeError>([&] { linear(x, random_tensor({8, 64}, 2), {}, out); },
                           "linear: output f32[2,7,9] does not match the result f32[2,7,8]");
}

TEST(LayerNorm, MatchesKernelAndChecks) {
  Tensor x = random_tensor({3, 5, 33}, 5);
  Tensor g = random_tensor({33}, 6), b = random_tensor({33}, 7);
  Tensor y = layer_norm(x, g, b, 1e-5f);
  std::vector<float> want(x.numel());
  kernels::layer_norm(x.data<float>(), g.data<float>(), b.data<float>(), want.data(), 15, 33,
                      1e-5f);
  EXPECT_EQ(values(y), want);
  Tensor in_place = x.clone();
  layer_norm(in_place, g, b, 1e-5f, in_place);
  EXPECT_EQ(values(in_place), want);
  expect_error<ShapeError>([&] { layer_norm(x, random_tensor({32}, 1), b, 1e-5f); },
                           "layer_norm: weight [32] does not match input [3,5,33] (normalized size 33)");
  expect_error<InvalidArgument>([&] { layer_norm(x, g, b, -1.0f); },
                                "layer_norm: eps must be >= 0, got -1");
}

// add_layer_norm: the bias and the residual added in the normalization's pass give the bits of
// the three steps one after the other, with or without the added bias, into out, x or residual.
TEST(LayerNorm, AddLayerNormEqualsTheStepsAndChecks) {
  Tensor x = random_tensor({3, 5, 33}, 15), r = random_tensor({3, 5, 33}, 16);
  Tensor g = random_tensor({33}, 17), b = random_tensor({33}, 18), add = random_tensor({33}, 19);
  for (bool with_bias : {true, false}) {
    Tensor steps = x.clone();
    if (with_bias) kernels::bias_add(steps.data<float>(), add.data<float>(), 15, 33);
    for (std::int64_t i = 0; i < steps.numel(); ++i) steps.data<float>()[i] += r.data<float>()[i];
    const std::vector<float> want = values(layer_norm(steps, g, b, 1e-5f));
    const std::optional<Tensor> added = with_bias ? std::optional<Tensor>(add) : std::nullopt;
    Tensor out = Tensor::empty(DType::F32, x.shape());
    add_layer_norm(x, added, r, g, b, 1e-5f, out);
    EXPECT_EQ(values(out), want) << with_bias;
    Tensor into_x = x.clone();
    add_layer_norm(into_x, added, r, g, b, 1e-5f, into_x);
    EXPECT_EQ(values(into_x), want) << with_bias;
    Tensor into_r = r.clone();
    add_layer_norm(x, added, into_r, g, b, 1e-5f, into_r);
    EXPECT_EQ(values(into_r), want) << with_bias;
  }
  Tensor out = Tensor::empty(DType::F32, x.shape());
  const Tensor short_residual = random_tensor({3, 5, 32}, 1), short_bias = random_tensor({32}, 1);
  expect_error<ShapeError>([&] { add_layer_norm(x, b, short_residual, g, b, 1e-5f, out); },
                           "layer_norm: residual [3,5,32] does not match input [3,5,33]");
  expect_error<ShapeError>(
      [&] { add_layer_norm(x, short_bias, r, g, b, 1e-5f, out); },
      "layer_norm: added bias [32] does not match input [3,5,33] (normalized size 33)");
}

TEST(Elementwise, MatchKernelsAndInPlace) {
  Tensor x = random_tensor({4, 17}, 8);
  struct Op {
    Tensor (*op)(const Tensor&);
    void (*op_out)(const Tensor&, Tensor&);
    void (*kernel)(const float*, float*, std::int64_t);
  };
  const Op ops[] = {{gelu, gelu, kernels::gelu},
                    {quick_gelu, quick_gelu, kernels::quick_gelu},
                    {tanh, tanh, kernels::tanh}};
  for (const Op& o : ops) {
    std::vector<float> want(x.numel());
    o.kernel(x.data<float>(), want.data(), x.numel());
    EXPECT_EQ(values(o.op(x)), want);
    Tensor t = x.clone();
    o.op_out(t, t);
    EXPECT_EQ(values(t), want);
  }
  expect_error<ShapeError>([&] { gelu(Tensor::zeros(DType::I64, {3})); },
                           "gelu: input must be f32, got i64[3]");
  Tensor wrong = Tensor::empty(DType::F32, {17, 4});
  expect_error<ShapeError>([&] { quick_gelu(x, wrong); },
                           "quick_gelu: output f32[17,4] does not match the result f32[4,17]");
}

TEST(Softmax, RowsSumToOneAndMaskChecks) {
  Tensor x = random_tensor({2, 3, 10}, 9);
  Tensor y = softmax(x);
  for (int r = 0; r < 6; ++r) {
    double s = 0;
    for (int c = 0; c < 10; ++c) s += y.data<float>()[r * 10 + c];
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  expect_error<ShapeError>([&] { softmax(x, random_tensor({9}, 1)); },
                           "softmax: mask [9] does not match input [2,3,10] (expected [10])");
}

TEST(L2Normalize, UnitNorms) {
  Tensor x = random_tensor({5, 512}, 10);
  Tensor y = l2_normalize(x);
  for (int r = 0; r < 5; ++r) {
    double s = 0;
    for (int c = 0; c < 512; ++c) s += std::pow(y.data<float>()[r * 512 + c], 2);
    EXPECT_NEAR(s, 1.0, 1e-6);
  }
  expect_error<ShapeError>([&] { l2_normalize(Tensor::zeros(DType::F32, {})); },
                           "l2_normalize: input must have rank >= 1, got []");
}

TEST(Attention, MatchesKernelWithIntegerMask) {
  const std::int64_t B = 2, T = 9, H = 3, D = 8, W = H * D;
  Tensor q = random_tensor({B, T, W}, 11), k = random_tensor({B, T, W}, 12),
         v = random_tensor({B, T, W}, 13);
  Tensor mask = Tensor::from<std::int64_t>({B, T}, {1, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                                    1, 1, 1, 1, 0, 0, 0, 0, 0});
  AttentionOptions opt;
  opt.key_padding_mask = mask;
  opt.causal = true;
  Tensor out = multi_head_attention(q, k, v, H, opt);
  EXPECT_EQ(out.shape(), (Shape{B, T, W}));

  std::vector<float> add(B * T, 0.0f);
  for (int i = 13; i < 18; ++i) add[static_cast<std::size_t>(i)] = std::numeric_limits<float>::lowest();
  std::vector<float> want(out.numel());
  kernels::attention(q.data<float>(), W, k.data<float>(), W, v.data<float>(), W, want.data(), W,
                     {B, T, T, H, D}, static_cast<float>(1.0 / std::sqrt(8.0)), add.data(), true);
  EXPECT_EQ(values(out), want);

  // Bool and f32 masks mean the same.
  Tensor fmask = mask.to_f32();
  opt.key_padding_mask = fmask;
  EXPECT_EQ(values(multi_head_attention(q, k, v, H, opt)), want);
}

TEST(Attention, PackedEqualsSeparate) {
  const std::int64_t B = 2, T = 7, H = 2, D = 16, W = H * D;
  Tensor qkv = random_tensor({B, T, 3 * W}, 14);
  Tensor q = Tensor::empty(DType::F32, {B, T, W}), k = q.clone(), v = q.clone();
  for (std::int64_t r = 0; r < B * T; ++r) {
    const float* src = qkv.data<float>() + r * 3 * W;
    std::copy(src, src + W, q.data<float>() + r * W);
    std::copy(src + W, src + 2 * W, k.data<float>() + r * W);
    std::copy(src + 2 * W, src + 3 * W, v.data<float>() + r * W);
  }
  AttentionOptions opt;
  opt.scale = 0.3f;
  EXPECT_EQ(values(multi_head_attention_packed(qkv, H, opt)),
            values(multi_head_attention(q, k, v, H, opt)));
}

TEST(Attention, ErrorMessages) {
  Tensor q = random_tensor({2, 5, 12}, 1), k = random_tensor({2, 6, 12}, 2);
  expect_error<ShapeError>([&] { multi_head_attention(q, k, k, 5); },
                           "multi_head_attention: q [2,5,12] width 12 is not a positive multiple "
                           "of num_heads 5");
  expect_error<ShapeError>([&] { multi_head_attention(q, k, random_tensor({2, 6, 8}, 3), 3); },
                           "multi_head_attention: q [2,5,12], k [2,6,12] and v [2,6,8] do not "
                           "match (expected k and v [2,kv_len,12])");
  AttentionOptions causal;
  causal.causal = true;
  expect_error<ShapeError>([&] { multi_head_attention(q, k, k, 3, causal); },
                           "multi_head_attention: causal attention needs q_len == kv_len, got q "
                           "[2,5,12] k [2,6,12]");
  AttentionOptions bad_mask;
  bad_mask.key_padding_mask = Tensor::zeros(DType::I64, {2, 5});
  expect_error<ShapeError>([&] { multi_head_attention(q, k, k, 3, bad_mask); },
                           "multi_head_attention: key_padding_mask [2,5] does not match keys "
                           "[2,6] (expected [batch, kv_len])");
}

}  // namespace
}  // namespace mmembed::ops
