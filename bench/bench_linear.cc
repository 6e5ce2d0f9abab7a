// ops::linear (Tensor checks, bias, the GEMM seam) against the raw sgemm of the backend behind
// the seam, on the shapes of gemm_shapes.h. Names: linear/<op|raw>/M:<m>/K:<k>/N:<n>/threads:<t>.
// "op" is ops::linear(x, W, b, out) into a preallocated out; "raw" is the backend's sgemm(No,
// Yes) without bias. bench/run_gemm_table.sh prints op/raw.
#include <benchmark/benchmark.h>

#include <optional>
#include <random>
#include <string>

#include "core/tensor.h"
#include "gemm_shapes.h"
#include "kernels/gemm.h"
#include "kernels/gemm_backend.h"
#include "kernels/parallel.h"
#include "ops/ops.h"

namespace mmembed::bench {
namespace {

Tensor random_tensor(Shape shape, std::uint32_t seed) {
  Tensor t = Tensor::empty(DType::F32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

void set_counter(benchmark::State& state, std::int64_t M, std::int64_t K, std::int64_t N) {
  state.counters["GFLOP"] = benchmark::Counter(
      2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate);
}

void run_op(benchmark::State& state, std::int64_t M, std::int64_t K, std::int64_t N, int threads) {
  kernels::set_num_threads(threads);
  Tensor x = random_tensor({M, K}, 1), w = random_tensor({N, K}, 2), b = random_tensor({N}, 3);
  Tensor y = Tensor::empty(DType::F32, {M, N});
  ops::linear(x, w, b, y);
  for (auto _ : state) {
    ops::linear(x, w, b, y);
    benchmark::DoNotOptimize(y.raw());
    benchmark::ClobberMemory();
  }
  set_counter(state, M, K, N);
}

void run_raw(benchmark::State& state, std::int64_t M, std::int64_t K, std::int64_t N,
             int threads) {
  kernels::set_num_threads(threads);
  const kernels::GemmBackend& be = kernels::selected_gemm_backend();
  Tensor x = random_tensor({M, K}, 1), w = random_tensor({N, K}, 2);
  Tensor y = Tensor::empty(DType::F32, {M, N});
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* yp = y.data<float>();
  be.sgemm(false, true, M, N, K, 1.0f, xp, K, wp, K, 0.0f, yp, N);
  for (auto _ : state) {
    be.sgemm(false, true, M, N, K, 1.0f, xp, K, wp, K, 0.0f, yp, N);
    benchmark::DoNotOptimize(yp);
    benchmark::ClobberMemory();
  }
  set_counter(state, M, K, N);
}

}  // namespace
}  // namespace mmembed::bench

int main(int argc, char** argv) {
  using namespace mmembed::bench;
  benchmark::AddCustomContext("gemm backend", mmembed::kernels::gemm_backend_description());
  for (int threads : {1, 2}) {
    for (std::int64_t batch : batch_sizes()) {
      for (std::int64_t tokens : token_counts()) {
        const std::int64_t M = batch * tokens;
        for (const LayerShape& s : layer_shapes()) {
          const std::string tail = "/M:" + std::to_string(M) + "/K:" + std::to_string(s.K) +
                                   "/N:" + std::to_string(s.N) + "/threads:" +
                                   std::to_string(threads);
          // Interleaved, so both sides of a comparison see the same machine load.
          benchmark::RegisterBenchmark(("linear/raw" + tail).c_str(), run_raw, M, s.K, s.N, threads)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
          benchmark::RegisterBenchmark(("linear/op" + tail).c_str(), run_op, M, s.K, s.N, threads)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
        }
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
