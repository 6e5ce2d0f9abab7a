// kernels::pairwise (src/kernels/distance.h) on the shapes that search and the quality metrics
// use: a FlatIndex block (256 queries x 4096 points, d = 768 and 64) and a 1000 x 1000 self
// matrix, for the GEMM metrics (cosine, euclidean, dot) and one direct metric (manhattan), at
// unit scale (the common case) and scaled by 1e20 (the rescaled path, issue #18).
// Names: pairwise/<metric>/n:<n>/m:<m>/d:<d>/scale:<0|20>/threads:<t>.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/distance.h"
#include "kernels/parallel.h"

namespace mmembed::bench {
namespace {

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng) * scale;
  return v;
}

void run_pairwise(benchmark::State& state, kernels::Metric metric, std::int64_t n,
                  std::int64_t m, std::int64_t d, int scale_exp, int threads) {
  kernels::set_num_threads(threads);
  const float scale = static_cast<float>(std::pow(10.0, scale_exp));
  const auto x = random_floats(static_cast<std::size_t>(n * d), 1, scale);
  const auto y = random_floats(static_cast<std::size_t>(m * d), 2, scale);
  std::vector<float> out(static_cast<std::size_t>(n * m));
  const kernels::MetricSpec spec{metric};
  kernels::pairwise(spec, x.data(), n, y.data(), m, d, out.data(), m);  // warm-up
  for (auto _ : state) {
    kernels::pairwise(spec, x.data(), n, y.data(), m, d, out.data(), m);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(
      2.0 * static_cast<double>(n) * m * d, benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1000);
}

struct Shape {
  std::int64_t n, m, d;
};

const int registered = [] {
  for (kernels::Metric metric : {kernels::Metric::Cosine, kernels::Metric::Euclidean,
                                 kernels::Metric::Dot, kernels::Metric::Manhattan}) {
    for (Shape s : {Shape{256, 4096, 768}, Shape{256, 4096, 64}, Shape{1000, 1000, 64}}) {
      for (int scale_exp : {0, 20}) {
        if (metric == kernels::Metric::Manhattan && s.d == 768) continue;  // slow, unchanged
        for (int threads : {1, 2}) {
          const std::string name = std::string("pairwise/") + kernels::metric_name(metric) +
                                   "/n:" + std::to_string(s.n) + "/m:" + std::to_string(s.m) +
                                   "/d:" + std::to_string(s.d) + "/scale:" +
                                   std::to_string(scale_exp) + "/threads:" +
                                   std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), run_pairwise, metric, s.n, s.m, s.d,
                                       scale_exp, threads)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
        }
      }
    }
  }
  return 0;
}();

}  // namespace
}  // namespace mmembed::bench

BENCHMARK_MAIN();
