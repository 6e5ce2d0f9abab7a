// The threaded linear (tiles of y taken dynamically by the threads, bias and activation fused per
// tile: one pass after the tile's product) against the scalar reference, and its independence
// from the thread count; the dynamic task runner parallel_tasks.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/gemm_small.h"
#include "kernels/parallel.h"

namespace mmembed::kernels {
namespace {

using testing::all_close;
using testing::random_vector;

struct Shape3 {
  std::int64_t rows, in, out;
};

// Row counts of the models' linears at batch 1, 2 and 8 (16 / 77 text tokens, 325 / 442 image
// tokens), their widths, the ITC/ITM heads, the MLM decoder's odd width and the tiny checkpoints.
const Shape3 kShapes[] = {
    {16, 768, 768},    {16, 768, 3072},   {77, 1024, 4096},  {128, 3072, 768}, {154, 768, 2304},
    {325, 768, 2304},  {325, 3072, 768},  {325, 768, 3072},  {442, 1024, 1024}, {616, 1024, 1024},
    {650, 768, 768},   {1100, 768, 1024}, {8, 768, 512},    {1, 2048, 512},
    {16, 1024, 50265}, {7, 64, 64},       {70, 64, 192},      {300, 40, 200},   {33, 96, 1000},
    // Column-only tiles up to 512 rows: the MLM decoder at 77 tokens (50 blocks of 1008 columns
    // and a wider last one), blocks of 128 with a 136-column remainder, and 512 rows.
    {77, 768, 50265},  {200, 768, 520},   {512, 768, 768},
    // The large model's vision block (442 tokens, hidden 1024): QKV, fc1, fc2.
    {442, 1024, 3072}, {442, 1024, 4096}, {442, 4096, 1024},
};

std::vector<float> run_linear(const Shape3& s, const std::vector<float>& x,
                              const std::vector<float>& w, const std::vector<float>& b,
                              Epilogue e, int threads) {
  set_num_threads(threads);
  std::vector<float> y(static_cast<std::size_t>(s.rows * s.out), -7.0f);
  linear(x.data(), w.data(), b.empty() ? nullptr : b.data(), y.data(), s.rows, s.in, s.out, e);
  return y;
}

TEST(LinearTiles, MatchesReferenceAndSeparateActivation) {
  const int before = num_threads();
  for (const Shape3& s : {Shape3{325, 768, 768}, Shape3{70, 64, 192}, Shape3{33, 96, 1000},
                          Shape3{616, 256, 320}}) {
    SCOPED_TRACE(std::to_string(s.rows) + "x" + std::to_string(s.in) + "->" +
                 std::to_string(s.out));
    auto x = random_vector(static_cast<std::size_t>(s.rows * s.in), 1);
    auto w = random_vector(static_cast<std::size_t>(s.out * s.in), 2, -0.1f, 0.1f);
    auto b = random_vector(static_cast<std::size_t>(s.out), 3);
    std::vector<float> want(static_cast<std::size_t>(s.rows * s.out));
    ref::linear(x.data(), w.data(), b.data(), want.data(), s.rows, s.in, s.out);
    for (int threads : {1, 2}) {
      auto plain = run_linear(s, x, w, b, Epilogue::None, threads);
      EXPECT_TRUE(all_close(plain.data(), want.data(), want.size(), 1e-5, 1e-5));
      // Fused GELU / QuickGELU: on the backend's path, the product without bias followed by
      // the one-pass bias + activation kernel, bit for bit (the short path, up to 160 rows,
      // starts each sum from its bias instead: gemm_small_test); within rounding of linear()
      // followed by the element-wise kernel.
      auto product = run_linear(s, x, w, {}, Epilogue::None, threads);
      const bool short_path = s.rows >= 8 && s.rows <= 160 && detail::small_rows_supported();
      auto gelu_fused = run_linear(s, x, w, b, Epilogue::Gelu, threads);
      std::vector<float> gelu_after = plain;
      gelu(gelu_after.data(), gelu_after.data(), static_cast<std::int64_t>(plain.size()));
      EXPECT_TRUE(all_close(gelu_fused.data(), gelu_after.data(), want.size(), 1e-6, 1e-6));
      std::vector<float> gelu_bias_after = product;
      bias_gelu_rows(gelu_bias_after.data(), b.data(), s.rows, s.out, s.out);
      EXPECT_EQ(gelu_fused, short_path ? gelu_after : gelu_bias_after) << threads << " threads";
      auto quick_fused = run_linear(s, x, w, b, Epilogue::QuickGelu, threads);
      std::vector<float> quick_after = plain;
      quick_gelu(quick_after.data(), quick_after.data(), static_cast<std::int64_t>(plain.size()));
      EXPECT_TRUE(all_close(quick_fused.data(), quick_after.data(), want.size(), 1e-6, 1e-6));
      std::vector<float> quick_bias_after = product;
      bias_quick_gelu_rows(quick_bias_after.data(), b.data(), s.rows, s.out, s.out);
      EXPECT_EQ(quick_fused, short_path ? quick_after : quick_bias_after) << threads << " threads";
    }
    // No bias: y is only written (the -7 it held must not leak in).
    auto nobias = run_linear(s, x, w, {}, Epilogue::None, 2);
    std::vector<float> want_nobias(want.size());
    ref::linear(x.data(), w.data(), nullptr, want_nobias.data(), s.rows, s.in, s.out);
    EXPECT_TRUE(all_close(nobias.data(), want_nobias.data(), want.size(), 1e-5, 1e-5));
  }
  set_num_threads(before);
}

// Whole-model results are independent of --threads only if the tiled product (2 threads) equals
// the single sgemm call (1 thread) bit for bit. oneDNN computes each element of a tile as in the
// whole product on these shapes; other backends make no such promise (their 2-thread sgemm is
// not deterministic either), so this is required for dnnl only.
TEST(LinearTiles, SameBitsOnOneAndTwoThreads) {
  if (std::string(gemm_backend_name()) != "dnnl") {
    GTEST_SKIP() << gemm_backend_name() << " lends no threads; linear is one sgemm call";
  }
  const int before = num_threads();
  for (const Shape3& s : kShapes) {
    SCOPED_TRACE(std::to_string(s.rows) + "x" + std::to_string(s.in) + "->" +
                 std::to_string(s.out));
    auto x = random_vector(static_cast<std::size_t>(s.rows * s.in), 11);
    auto w = random_vector(static_cast<std::size_t>(s.out * s.in), 12, -0.05f, 0.05f);
    auto b = random_vector(static_cast<std::size_t>(s.out), 13);
    EXPECT_EQ(run_linear(s, x, w, b, Epilogue::Gelu, 1), run_linear(s, x, w, b, Epilogue::Gelu, 2));
    EXPECT_EQ(run_linear(s, x, w, {}, Epilogue::None, 1),
              run_linear(s, x, w, {}, Epilogue::None, 2));
  }
  set_num_threads(before);
}

TEST(ParallelTasks, RunsEveryIndexOnceAndRethrows) {
  const int before = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<std::atomic<int>> hits(1000);
    parallel_tasks(1000, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    EXPECT_THROW(parallel_tasks(100,
                                [&](std::int64_t i) {
                                  if (i == 37) throw std::runtime_error("task 37");
                                }),
                 std::runtime_error);
    // Nested inside a parallel_for chunk: runs serially, still every index once.
    std::atomic<int> inner{0};
    parallel_for(4, 1, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t k = a; k < b; ++k) parallel_tasks(10, [&](std::int64_t) { inner++; });
    });
    EXPECT_EQ(inner.load(), 40);
    parallel_tasks(0, [&](std::int64_t) { FAIL() << "no index expected"; });
  }
  set_num_threads(before);
}

}  // namespace
}  // namespace mmembed::kernels
