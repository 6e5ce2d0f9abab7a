// Attention from the GEMM seam + softmax against the direct double-precision loops.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernel_test_util.h"

namespace mmembed::kernels {
namespace {

using testing::all_close;
using testing::random_vector;
using testing::same_bits;

// q, k, v values in [-1, 1] (docs/numerics.md, "Kernels").
constexpr double kAtol = 1e-6, kRtol = 1e-5;

struct Inputs {
  AttentionDims d;
  std::int64_t pad;  // extra floats per row (row stride > heads * head_dim)
  std::vector<float> q, k, v;
  std::int64_t ld() const { return d.num_heads * d.head_dim + pad; }
};

Inputs make(AttentionDims d, std::int64_t pad, std::uint32_t seed) {
  Inputs in{d, pad, {}, {}, {}};
  const std::int64_t ld = in.ld();
  in.q = random_vector(static_cast<std::size_t>(d.batch * d.q_len * ld), seed);
  in.k = random_vector(static_cast<std::size_t>(d.batch * d.kv_len * ld), seed + 1);
  in.v = random_vector(static_cast<std::size_t>(d.batch * d.kv_len * ld), seed + 2);
  return in;
}

// Keeps the first `len[b]` keys of batch item b (right padding, as tokenizers produce).
std::vector<float> padding_mask(const std::vector<std::int64_t>& len, std::int64_t kv_len) {
  std::vector<float> m;
  for (std::int64_t l : len) {
    for (std::int64_t s = 0; s < kv_len; ++s) {
      m.push_back(s < l ? 0.0f : std::numeric_limits<float>::lowest());
    }
  }
  return m;
}

::testing::AssertionResult run_and_compare(const Inputs& in, float scale, const float* mask,
                                           bool causal) {
  const AttentionDims& d = in.d;
  const std::int64_t width = d.num_heads * d.head_dim;
  std::vector<float> got(static_cast<std::size_t>(d.batch * d.q_len * width)), want(got.size());
  attention(in.q.data(), in.ld(), in.k.data(), in.ld(), in.v.data(), in.ld(), got.data(), width, d,
            scale, mask, causal);
  ref::attention(in.q.data(), in.ld(), in.k.data(), in.ld(), in.v.data(), in.ld(), want.data(),
                 width, d, scale, mask, causal);
  return all_close(got, want, kAtol, kRtol);
}

TEST(Attention, MatchesReferenceAcrossShapes) {
  const AttentionDims shapes[] = {
      {1, 1, 1, 1, 1},   {1, 7, 7, 2, 16},   {2, 15, 17, 3, 8},  {1, 33, 33, 4, 32},
      {2, 77, 77, 2, 64}, {1, 16, 65, 1, 63}, {1, 325, 325, 1, 64}};
  std::uint32_t seed = 1;
  for (const AttentionDims& d : shapes) {
    for (std::int64_t pad : {0, 5}) {
      Inputs in = make(d, pad, seed += 3);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d.head_dim));
      EXPECT_TRUE(run_and_compare(in, scale, nullptr, false))
          << "B=" << d.batch << " Tq=" << d.q_len << " Tk=" << d.kv_len << " H=" << d.num_heads
          << " D=" << d.head_dim << " pad=" << pad;
    }
  }
}

TEST(Attention, KeyPaddingMask) {
  AttentionDims d{3, 17, 17, 2, 32};
  Inputs in = make(d, 0, 40);
  auto mask = padding_mask({17, 5, 1}, d.kv_len);
  EXPECT_TRUE(run_and_compare(in, 0.17f, mask.data(), false));
  // Padded keys have no influence: changing them leaves the output unchanged.
  const std::int64_t width = d.num_heads * d.head_dim;
  std::vector<float> a(static_cast<std::size_t>(d.batch * d.q_len * width)), b(a.size());
  attention(in.q.data(), width, in.k.data(), width, in.v.data(), width, a.data(), width, d, 0.17f,
            mask.data(), false);
  for (std::int64_t s = 5; s < d.kv_len; ++s) {  // batch 1, keys 5.. are padding
    for (std::int64_t i = 0; i < width; ++i) {
      in.k[static_cast<std::size_t>((1 * d.kv_len + s) * width + i)] = 100.0f;
      in.v[static_cast<std::size_t>((1 * d.kv_len + s) * width + i)] = -100.0f;
    }
  }
  attention(in.q.data(), width, in.k.data(), width, in.v.data(), width, b.data(), width, d, 0.17f,
            mask.data(), false);
  EXPECT_TRUE(same_bits(a, b));
}

TEST(Attention, CausalWithAndWithoutPadding) {
  for (std::int64_t T : {1, 2, 16, 17, 77}) {
    AttentionDims d{2, T, T, 2, 16};
    Inputs in = make(d, 3, 70 + static_cast<std::uint32_t>(T));
    EXPECT_TRUE(run_and_compare(in, 0.25f, nullptr, true)) << "T=" << T;
    auto mask = padding_mask({T, (T + 1) / 2}, T);
    EXPECT_TRUE(run_and_compare(in, 0.25f, mask.data(), true)) << "T=" << T << " padded";
  }
  // The first query sees only the first key: its output is V[0].
  AttentionDims d{1, 4, 4, 1, 3};
  Inputs in = make(d, 0, 90);
  std::vector<float> out(12);
  attention(in.q.data(), 3, in.k.data(), 3, in.v.data(), 3, out.data(), 3, d, 1.0f, nullptr, true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], in.v[static_cast<std::size_t>(i)]);
}

TEST(Attention, EmptyInputs) {
  AttentionDims d{2, 3, 0, 2, 4};  // no keys: zeros
  std::vector<float> q(2 * 3 * 8, 1.0f), out(q.size(), 5.0f);
  attention(q.data(), 8, nullptr, 8, nullptr, 8, out.data(), 8, d, 1.0f, nullptr, false);
  for (float x : out) EXPECT_EQ(x, 0.0f);
  AttentionDims none{0, 3, 3, 2, 4};
  attention(nullptr, 8, nullptr, 8, nullptr, 8, nullptr, 8, none, 1.0f, nullptr, false);
}

// The softmax between the GEMMs is thread-count independent; the GEMMs are so only with a
// backend that is (docs/numerics.md: oneDNN is on these shapes, Debian's OpenBLAS and BLIS are
// not), so this is required for dnnl only.
TEST(Attention, ThreadCountDoesNotChangeBits) {
  if (std::string(gemm_backend_name()) != "dnnl") {
    GTEST_SKIP() << gemm_backend_name() << "'s sgemm depends on the thread count";
  }
  AttentionDims d{2, 77, 77, 4, 64};
  Inputs in = make(d, 0, 5);
  auto mask = padding_mask({77, 40}, 77);
  const std::int64_t width = d.num_heads * d.head_dim;
  std::vector<float> one(static_cast<std::size_t>(d.batch * d.q_len * width)), two(one.size());
  const int before = num_threads();
  set_num_threads(1);
  attention(in.q.data(), width, in.k.data(), width, in.v.data(), width, one.data(), width, d,
            0.125f, mask.data(), true);
  set_num_threads(2);
  attention(in.q.data(), width, in.k.data(), width, in.v.data(), width, two.data(), width, d,
            0.125f, mask.data(), true);
  set_num_threads(before);
  EXPECT_TRUE(same_bits(one, two));
}

}  // namespace
}  // namespace mmembed::kernels
