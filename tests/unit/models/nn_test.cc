// nn layers on synthetic weights: what the BridgeTower goldens do not reach (separate-q/k/v
// pre-LN blocks as in Hugging Face CLIP, the packed attention against the separate one, the
// scratch arena, errors). The BERT/RoBERTa layers, the cross layer and the packed pre-LN block
// are checked against the reference through bridgetower_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/weight_map.h"
#include "mmembed/error.h"
#include "kernels/parallel.h"
#include "nn/layers.h"

namespace mmembed::nn {
namespace {

Tensor random_tensor(const Shape& shape, std::mt19937& rng, float scale = 0.5f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  Tensor t = Tensor::empty(DType::F32, shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Writes `tensors` to a temporary safetensors file and binds `want` against it.
class Weights {
 public:
  Weights(const std::map<std::string, Tensor>& tensors, const WeightList& want) {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("mmembed_nn_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
             ".safetensors");
    io::write_safetensors(path_.string(), tensors);
    bound_ = io::bind_weights(io::open_checkpoint(path_.string()), want);
  }
  ~Weights() { std::filesystem::remove(path_); }
  const io::BoundWeights& bound() const { return bound_; }

 private:
  std::filesystem::path path_;
  io::BoundWeights bound_;
};

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double d = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, std::abs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  }
  return d;
}

TEST(Scratch, GrowsAndKeepsHandedOutStorageAlive) {
  Scratch s;
  Tensor a = s.get(3, {2, 4});
  a.data<float>()[7] = 42.0f;
  Tensor same = s.get(3, {8});
  EXPECT_EQ(same.raw(), a.raw());  // reused when large enough
  Tensor bigger = s.get(3, {100, 10});
  EXPECT_NE(bigger.raw(), a.raw());
  EXPECT_EQ(a.data<float>()[7], 42.0f);  // the old storage is still alive
  EXPECT_EQ(s.get(0, {0}).numel(), 0);
}

// Each step adds 1 + l to every element of its part, and records which items it saw: after
// `count` layers X holds x0 + sum(1 + l), whatever the parity of `count` and the part count, and
// the parts cover the batch once per layer.
TEST(RunLayersInParts, AlternatesTheBuffersAndCoversEveryItem) {
  const int before = kernels::num_threads();
  kernels::set_num_threads(2);
  for (std::int64_t parts : {1, 2}) {
    for (std::size_t count : {0, 1, 2, 3}) {
      Tensor X = Tensor::empty(DType::F32, {5, 3, 2}), Y = Tensor::empty(DType::F32, {5, 3, 2});
      for (std::int64_t i = 0; i < X.numel(); ++i) X.data<float>()[i] = static_cast<float>(i);
      std::vector<std::int64_t> seen(5, 0);
      std::mutex mu;
      run_layers_in_parts(X, Y, parts, count,
                          [&](std::size_t l, std::int64_t b0, std::int64_t b1, const Tensor& x,
                              Tensor& y, Scratch&) {
                            ASSERT_EQ(x.dim(0), b1 - b0);
                            ASSERT_EQ(y.dim(0), b1 - b0);
                            for (std::int64_t i = 0; i < x.numel(); ++i) {
                              y.data<float>()[i] = x.data<float>()[i] + 1.0f + float(l);
                            }
                            std::lock_guard<std::mutex> lock(mu);
                            for (std::int64_t b = b0; b < b1; ++b) ++seen[static_cast<std::size_t>(b)];
                          });
      const float added = static_cast<float>(count * (count + 1) / 2);
      for (std::int64_t i = 0; i < X.numel(); ++i) {
        ASSERT_EQ(X.data<float>()[i], static_cast<float>(i) + added)
            << "parts " << parts << ", layers " << count << ", element " << i;
      }
      for (std::int64_t s : seen) EXPECT_EQ(s, static_cast<std::int64_t>(count));
    }
  }
  kernels::set_num_threads(before);
}

// The packed in_proj attention equals separate q/k/v projections holding the same rows, and a
// pre-LN block with Hugging Face CLIP names equals the OpenAI-CLIP-named one.
TEST(PreLnBlock, PackedAndSeparateAttentionAgree) {
  std::mt19937 rng(7);
  const std::int64_t E = 32, heads = 4, mlp = 64;
  const Tensor in_w = random_tensor({3 * E, E}, rng), in_b = random_tensor({3 * E}, rng);
  const Tensor out_w = random_tensor({E, E}, rng), out_b = random_tensor({E}, rng);
  const Tensor ln1_w = random_tensor({E}, rng, 1.0f), ln1_b = random_tensor({E}, rng);
  const Tensor ln2_w = random_tensor({E}, rng, 1.0f), ln2_b = random_tensor({E}, rng);
  const Tensor fc1_w = random_tensor({mlp, E}, rng), fc1_b = random_tensor({mlp}, rng);
  const Tensor fc2_w = random_tensor({E, mlp}, rng), fc2_b = random_tensor({E}, rng);

  std::map<std::string, Tensor> openai = {
      {"b.ln_1.weight", ln1_w},        {"b.ln_1.bias", ln1_b},
      {"b.attn.in_proj_weight", in_w}, {"b.attn.in_proj_bias", in_b},
      {"b.attn.out_proj.weight", out_w}, {"b.attn.out_proj.bias", out_b},
      {"b.ln_2.weight", ln2_w},        {"b.ln_2.bias", ln2_b},
      {"b.mlp.c_fc.weight", fc1_w},    {"b.mlp.c_fc.bias", fc1_b},
      {"b.mlp.c_proj.weight", fc2_w},  {"b.mlp.c_proj.bias", fc2_b}};
  std::map<std::string, Tensor> hf = {
      {"b.layer_norm1.weight", ln1_w},
      {"b.layer_norm1.bias", ln1_b},
      {"b.self_attn.q_proj.weight", in_w.slice_rows(0, E).clone()},
      {"b.self_attn.k_proj.weight", in_w.slice_rows(E, 2 * E).clone()},
      {"b.self_attn.v_proj.weight", in_w.slice_rows(2 * E, 3 * E).clone()},
      {"b.self_attn.q_proj.bias", in_b.slice_rows(0, E).clone()},
      {"b.self_attn.k_proj.bias", in_b.slice_rows(E, 2 * E).clone()},
      {"b.self_attn.v_proj.bias", in_b.slice_rows(2 * E, 3 * E).clone()},
      {"b.self_attn.out_proj.weight", out_w},
      {"b.self_attn.out_proj.bias", out_b},
      {"b.layer_norm2.weight", ln2_w},
      {"b.layer_norm2.bias", ln2_b},
      {"b.mlp.fc1.weight", fc1_w},
      {"b.mlp.fc1.bias", fc1_b},
      {"b.mlp.fc2.weight", fc2_w},
      {"b.mlp.fc2.bias", fc2_b}};
  const PreLnBlockDims dims{E, heads, mlp};
  WeightList want_openai, want_hf;
  PreLnBlock::expect(want_openai, "b", dims, PreLnBlockNames::openai_clip());
  PreLnBlock::expect(want_hf, "b", dims, PreLnBlockNames::hf_clip());
  EXPECT_EQ(want_openai.size(), openai.size());
  EXPECT_EQ(want_hf.size(), hf.size());
  Weights w_openai(openai, want_openai), w_hf(hf, want_hf);
  const PreLnBlock a(w_openai.bound(), "b", dims, PreLnBlockNames::openai_clip(),
                     Activation::QuickGelu, 1e-5f);
  const PreLnBlock b(w_hf.bound(), "b", dims, PreLnBlockNames::hf_clip(), Activation::QuickGelu,
                     1e-5f);

  const Tensor x = random_tensor({3, 7, E}, rng, 2.0f);
  Tensor mask = Tensor::zeros(DType::I64, {3, 7});
  for (std::int64_t i = 0; i < 3 * 7; ++i) mask.data<std::int64_t>()[i] = (i % 7) < 4 + i / 7;
  for (bool causal : {false, true}) {
    ops::AttentionOptions options;
    options.key_padding_mask = mask;
    options.causal = causal;
    Scratch s1, s2;
    Tensor ya = Tensor::empty(DType::F32, x.shape()), yb = Tensor::empty(DType::F32, x.shape());
    a.forward(x, options, ya, s1);
    b.forward(x, options, yb, s2);
    EXPECT_LE(max_abs_diff(ya, yb), 1e-5) << "causal " << causal;
    // The residual stream is kept: the block is not the identity and not normalised.
    EXPECT_GT(max_abs_diff(ya, x), 1e-3);
  }

  // forward_first_token: row 0 of forward(), for the packed and the separate attention, with a
  // padding mask (not causal: a class token sees every key).
  ops::AttentionOptions options;
  options.key_padding_mask = mask;
  for (const PreLnBlock* block : {&a, &b}) {
    Scratch s1, s2;
    Tensor full = Tensor::empty(DType::F32, x.shape());
    block->forward(x, options, full, s1);
    Tensor first = Tensor::empty(DType::F32, {3, 1, E}), want = Tensor::empty(DType::F32, {3, E});
    block->forward_first_token(x, options, first, s2);
    gather_token(full, 0, want);
    EXPECT_LE(max_abs_diff(first.reshape({3, E}), want), 1e-5);
    // The same scratch again (slots reused at other shapes) gives the same bits.
    Tensor again = Tensor::empty(DType::F32, {3, 1, E});
    block->forward(x, options, full, s2);
    block->forward_first_token(x, options, again, s2);
    EXPECT_EQ(max_abs_diff(again, first), 0.0);
  }
}

TEST(BertLayer, FirstTokenIsRowZeroOfTheFullLayer) {
  std::mt19937 rng(11);
  const std::int64_t E = 32, heads = 4, inter = 64;
  const BertDims dims{E, heads, inter};
  WeightList want;
  BertLayer::expect(want, "l", dims);
  std::map<std::string, Tensor> tensors;
  for (const auto& spec : want) {
    const bool norm_weight = spec.name.find("LayerNorm.weight") != std::string::npos;
    tensors[spec.name] = random_tensor(spec.shape, rng, norm_weight ? 1.0f : 0.5f);
  }
  Weights w(tensors, want);
  const BertLayer layer(w.bound(), "l", dims, Activation::Gelu, 1e-12f);
  const Tensor x = random_tensor({2, 9, E}, rng, 2.0f);
  Tensor mask = Tensor::zeros(DType::I64, {2, 9});
  for (std::int64_t i = 0; i < 2 * 9; ++i) mask.data<std::int64_t>()[i] = (i % 9) < 5 + 4 * (i / 9);
  for (const std::optional<Tensor>& m : {std::optional<Tensor>{}, std::optional<Tensor>{mask}}) {
    Scratch s1, s2;
    Tensor full = Tensor::empty(DType::F32, x.shape());
    layer.forward(x, m, full, s1);
    Tensor first = Tensor::empty(DType::F32, {2, 1, E});
    Tensor want_row = Tensor::empty(DType::F32, {2, E});
    layer.forward_first_token(x, m, first, s2);
    gather_token(full, 0, want_row);
    EXPECT_LE(max_abs_diff(first.reshape({2, E}), want_row), 1e-5) << (m ? "masked" : "unmasked");
    EXPECT_GT(max_abs_diff(first.reshape({2, E}), Tensor::zeros(DType::F32, {2, E})), 1e-2);
  }
}

TEST(BertCrossLayer, FirstTokenIsRowZeroOfTheFullLayer) {
  std::mt19937 rng(13);
  const std::int64_t E = 32, heads = 4, inter = 64;
  const BertDims dims{E, heads, inter};
  WeightList want;
  BertCrossLayer::expect(want, "c", dims);
  std::map<std::string, Tensor> tensors;
  for (const auto& spec : want) {
    const bool norm_weight = spec.name.find("LayerNorm.weight") != std::string::npos;
    tensors[spec.name] = random_tensor(spec.shape, rng, norm_weight ? 1.0f : 0.5f);
  }
  Weights w(tensors, want);
  const BertCrossLayer layer(w.bound(), "c", dims, Activation::Gelu, 1e-12f);
  const Tensor x = random_tensor({2, 6, E}, rng, 2.0f), context = random_tensor({2, 11, E}, rng);
  Tensor x_mask = Tensor::zeros(DType::I64, {2, 6}), c_mask = Tensor::zeros(DType::I64, {2, 11});
  for (std::int64_t i = 0; i < 12; ++i) x_mask.data<std::int64_t>()[i] = (i % 6) < 3 + 3 * (i / 6);
  for (std::int64_t i = 0; i < 22; ++i) {
    c_mask.data<std::int64_t>()[i] = (i % 11) < 7 + 4 * (i / 11);
  }
  Scratch s1, s2;
  Tensor full = Tensor::empty(DType::F32, x.shape());
  layer.forward(x, context, x_mask, c_mask, full, s1);
  Tensor first = Tensor::empty(DType::F32, {2, 1, E});
  Tensor want_row = Tensor::empty(DType::F32, {2, E});
  layer.forward_first_token(x, context, x_mask, c_mask, first, s2);
  gather_token(full, 0, want_row);
  EXPECT_LE(max_abs_diff(first.reshape({2, E}), want_row), 1e-5);
  EXPECT_GT(max_abs_diff(first.reshape({2, E}), Tensor::zeros(DType::F32, {2, E})), 1e-2);
}

TEST(Layers, ErrorsNameTheProblem) {
  std::string msg;
  try {
    parse_activation("swish", "config.json: hidden_act");
  } catch (const Unsupported& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("config.json: hidden_act: activation 'swish' is not supported"),
            std::string::npos)
      << msg;
  Embedding table(Tensor::zeros(DType::F32, {4, 2}));
  EXPECT_THROW(table.row(4, "token id"), InvalidArgument);
  EXPECT_THROW(table.row(-1, "token id"), InvalidArgument);
  Linear lin(Tensor::zeros(DType::F32, {3, 2}), std::nullopt);
  Tensor wrong = Tensor::zeros(DType::F32, {5, 4});
  Tensor out = Tensor::empty(DType::F32, {5, 3});
  EXPECT_THROW(lin.forward(wrong, out), ShapeError);
}

}  // namespace
}  // namespace mmembed::nn
