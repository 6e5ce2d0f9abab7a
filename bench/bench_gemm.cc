// Single-precision GEMM throughput of every backend found, on the transformer shapes of
// gemm_shapes.h, at 1 and 2 threads. Names: sgemm/<backend>/M:<m>/K:<k>/N:<n>/threads:<t>;
// counter GFLOP, a rate (GFLOP/s): 2 M N K per iteration / time. bench/run_gemm_table.sh runs
// it for the table in docs/performance.md. Each backend is best run in its own process (--benchmark_filter), since
// OpenBLAS's and OpenMP's idle workers spin for a while after a call.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <random>
#include <string>
#include <vector>

#include "gemm_shapes.h"
#include "kernels/gemm_backend.h"

namespace mmembed::bench {
namespace {

using kernels::GemmBackend;

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void run_sgemm(benchmark::State& state, const GemmBackend* be, std::int64_t M, std::int64_t K,
               std::int64_t N, int threads) {
  be->set_num_threads(threads);
  auto x = random_floats(static_cast<std::size_t>(M * K), 1);
  auto w = random_floats(static_cast<std::size_t>(N * K), 2);
  std::vector<float> y(static_cast<std::size_t>(M * N));
  // y = x * w^T, the linear-layer layout.
  be->sgemm(false, true, M, N, K, 1.0f, x.data(), K, w.data(), K, 0.0f, y.data(), N);  // warm-up
  for (auto _ : state) {
    be->sgemm(false, true, M, N, K, 1.0f, x.data(), K, w.data(), K, 0.0f, y.data(), N);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(
      2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate);
}

std::vector<const GemmBackend*> backends() {
  std::vector<const GemmBackend*> out;
#if defined(MMEMBED_HAVE_GEMM_OPENBLAS)
  out.push_back(&kernels::gemm_backend_openblas());
#endif
#if defined(MMEMBED_HAVE_GEMM_BLIS)
  out.push_back(&kernels::gemm_backend_blis());
#endif
#if defined(MMEMBED_HAVE_GEMM_DNNL)
  out.push_back(&kernels::gemm_backend_dnnl());
#endif
  return out;
}

// Which shared object provides cblas_sgemm: with OpenBLAS and BLIS both linked it must be
// OpenBLAS, or the "openblas" rows would measure BLIS.
std::string cblas_provider() {
  void* sym = dlsym(RTLD_DEFAULT, "cblas_sgemm");
  Dl_info info{};
  if (sym == nullptr || dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "none";
  return info.dli_fname;
}

}  // namespace
}  // namespace mmembed::bench

int main(int argc, char** argv) {
  using namespace mmembed::bench;
  for (const auto* be : backends()) {
    benchmark::AddCustomContext(std::string("gemm.") + be->name, be->describe());
    for (int threads : {1, 2}) {
      for (std::int64_t batch : batch_sizes()) {
        for (std::int64_t tokens : token_counts()) {
          const std::int64_t M = batch * tokens;
          for (const LayerShape& s : layer_shapes()) {
            std::string name = std::string("sgemm/") + be->name + "/M:" + std::to_string(M) +
                               "/K:" + std::to_string(s.K) + "/N:" + std::to_string(s.N) +
                               "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), run_sgemm, be, M, s.K, s.N, threads)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
          }
        }
      }
    }
  }
  benchmark::AddCustomContext("cblas_sgemm from", cblas_provider());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
