// ops::linear (Tensor checks, bias, the GEMM seam) against the raw sgemm of the backend behind
// the seam, on the shapes of gemm_shapes.h. Names: linear/paired/M:<m>/K:<k>/N:<n>/threads:<t>.
// "op" is ops::linear(x, W, b, out) into a preallocated out; "raw" is the backend's sgemm(No,
// Yes) without bias. Counters: raw_GFLOPs, op_GFLOPs (GFLOP/s) and op_over_raw (their ratio).
// The time Google Benchmark reports is raw + op. bench/run_gemm_table.sh prints the ratios.
#include <benchmark/benchmark.h>

#include <chrono>

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

// Each iteration runs the raw GEMM and then ops::linear on the same data and times the two
// separately, so both see the same machine load (the 2-core machine is shared and noisy).
void run_paired(benchmark::State& state, std::int64_t M, std::int64_t K, std::int64_t N,
                int threads) {
  using Clock = std::chrono::steady_clock;
  kernels::set_num_threads(threads);
  const kernels::GemmBackend& be = kernels::selected_gemm_backend();
  Tensor x = random_tensor({M, K}, 1), w = random_tensor({N, K}, 2), b = random_tensor({N}, 3);
  Tensor y_raw = Tensor::empty(DType::F32, {M, N}), y_op = Tensor::empty(DType::F32, {M, N});
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* yp = y_raw.data<float>();
  auto raw = [&] { be.sgemm(false, true, M, N, K, 1.0f, xp, K, wp, K, 0.0f, yp, N); };
  auto op = [&] { ops::linear(x, w, b, y_op); };
  raw();
  op();
  double raw_s = 0.0, op_s = 0.0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    raw();
    benchmark::ClobberMemory();
    auto t1 = Clock::now();
    op();
    benchmark::ClobberMemory();
    auto t2 = Clock::now();
    raw_s += std::chrono::duration<double>(t1 - t0).count();
    op_s += std::chrono::duration<double>(t2 - t1).count();
  }
  const double gflop = 2.0 * static_cast<double>(M) * static_cast<double>(N) *
                       static_cast<double>(K) * 1e-9 * static_cast<double>(state.iterations());
  state.counters["raw_GFLOPs"] = gflop / raw_s;
  state.counters["op_GFLOPs"] = gflop / op_s;
  state.counters["op_over_raw"] = raw_s / op_s;  // throughput ratio: 1 = as fast as raw
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
          benchmark::RegisterBenchmark(("linear/paired" + tail).c_str(), run_paired, M, s.K, s.N,
                                       threads)
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
