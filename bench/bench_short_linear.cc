// kernels::linear on short x (a few tokens: one caption, one query) against the backend's sgemm,
// with the weights streamed from memory as in a model's forward pass.
//
//   bench_short_linear [--threads N] [--reps R] [--rows 2,4,8,16,32,48,64,77]
//
// For each layer shape (gemm_shapes.h) and row count, a ring of distinct weight matrices of at
// least 1 GiB in all is walked (so W comes from DRAM, not from the cache, as in a 12-layer pass
// over 340 MB of weights), timing per product: "backend" = the bias copied into y, then the
// selected backend's sgemm(No, Yes, beta = 1), which is what linear() did for every row count
// before the short path; "linear" = kernels::linear (the short path for 8..80 rows,
// gemm_small.h). Prints a Markdown table: ms per product, the weight traffic in GB/s, and the
// ratio. Also checks that both agree to 1e-4 relative (exit 1 otherwise).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gemm_shapes.h"
#include "kernels/gemm.h"
#include "kernels/gemm_backend.h"
#include "kernels/parallel.h"

namespace {

using Clock = std::chrono::steady_clock;
using mmembed::kernels::Epilogue;

std::vector<std::int64_t> parse_list(const std::string& s) {
  std::vector<std::int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5;
  std::vector<std::int64_t> rows_list = {2, 4, 8, 16, 32, 48, 64, 77};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads") threads = std::stoi(v);
    else if (k == "--reps") reps = std::stoi(v);
    else if (k == "--rows") rows_list = parse_list(v);
    else {
      std::fprintf(stderr, "usage: bench_short_linear [--threads N] [--reps R] [--rows a,b,c]\n");
      return 2;
    }
  }
  mmembed::kernels::set_num_threads(threads);
  const auto& be = mmembed::kernels::selected_gemm_backend();
  std::printf("backend: %s, threads %d, median of %d passes over a ring of >= 1 GiB of weights\n\n",
              mmembed::kernels::gemm_backend_description().c_str(), threads, reps);
  std::printf("| rows | K | N | backend ms | linear ms | backend GB/s | linear GB/s | ratio |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
  bool ok = true;
  for (const auto& shape : mmembed::bench::layer_shapes()) {
    const std::int64_t K = shape.K, N = shape.N;
    const std::size_t per = static_cast<std::size_t>(K * N);
    const std::size_t ring = std::max<std::size_t>(4, (std::size_t{1} << 28) / per);  // >= 1 GiB
    std::vector<float> weights(per * ring);
    for (auto& v : weights) v = dist(rng);
    std::vector<float> bias(static_cast<std::size_t>(N));
    for (auto& v : bias) v = dist(rng);
    for (std::int64_t M : rows_list) {
      std::vector<float> x(static_cast<std::size_t>(M * K)), y1(static_cast<std::size_t>(M * N)),
          y2(y1.size());
      for (auto& v : x) v = dist(rng) * 20.0f;
      auto backend = [&](const float* w) {
        for (std::int64_t r = 0; r < M; ++r) {
          std::copy(bias.begin(), bias.end(), y1.begin() + r * N);
        }
        be.sgemm(false, true, M, N, K, 1.0f, x.data(), K, w, K, 1.0f, y1.data(), N);
      };
      auto linear = [&](const float* w) {
        mmembed::kernels::linear(x.data(), w, bias.data(), y2.data(), M, K, N, Epilogue::None);
      };
      std::vector<double> tb, tl;
      for (int rep = 0; rep < reps; ++rep) {
        auto t0 = Clock::now();
        for (std::size_t i = 0; i < ring; ++i) backend(weights.data() + i * per);
        auto t1 = Clock::now();
        for (std::size_t i = 0; i < ring; ++i) linear(weights.data() + i * per);
        auto t2 = Clock::now();
        tb.push_back(std::chrono::duration<double>(t1 - t0).count() / static_cast<double>(ring));
        tl.push_back(std::chrono::duration<double>(t2 - t1).count() / static_cast<double>(ring));
      }
      std::sort(tb.begin(), tb.end());
      std::sort(tl.begin(), tl.end());
      const double b = tb[tb.size() / 2], l = tl[tl.size() / 2];
      const double gb = static_cast<double>(per) * 4e-9;
      double worst = 0;
      for (std::size_t i = 0; i < y1.size(); ++i) {
        const double ref = y1[i];
        worst = std::max(worst, std::fabs(ref - y2[i]) / (1.0 + std::fabs(ref)));
      }
      if (!(worst <= 1e-4)) {
        std::fprintf(stderr, "rows %lld K %lld N %lld: backend and linear differ by %g\n",
                     static_cast<long long>(M), static_cast<long long>(K),
                     static_cast<long long>(N), worst);
        ok = false;
      }
      std::printf("| %lld | %lld | %lld | %.3f | %.3f | %.1f | %.1f | %.2f |\n",
                  static_cast<long long>(M), static_cast<long long>(K), static_cast<long long>(N),
                  b * 1e3, l * 1e3, gb / b, gb / l, b / l);
      std::fflush(stdout);
    }
  }
  return ok ? 0 : 1;
}
