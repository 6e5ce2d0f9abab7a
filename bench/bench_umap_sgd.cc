// bench_umap_sgd: UMAP's layout SGD alone (reduce/umap_sgd.h), each kernel on 1 and 2 threads,
// on the fuzzy graph of an embedding matrix (NN-descent or exact kNN, built once, not timed).
//
//   build/bench/bench_umap_sgd bench/reduce/data/mixture_50000.npy [EPOCHS] [REPS]
//
// Prints, per kernel and thread count, the median wall and CPU seconds of REPS runs of EPOCHS
// epochs (default: umap-learn's 500 up to 10,000 points, else 200; 3 reps) from the same start,
// and the moves per second (attractions + negative samples).
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "io/matrix.h"
#include "kernels/parallel.h"
#include "reduce/umap.h"
#include "reduce/umap_sgd.h"
#include "search/knn.h"

using namespace mmembed;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MATRIX.npy [EPOCHS] [REPS]\n", argv[0]);
    return 2;
  }
  const io::Matrix x = io::read_matrix(argv[1]);
  const int epochs = argc > 2 ? std::atoi(argv[2]) : (x.rows <= 10000 ? 500 : 200);
  const int reps = argc > 3 ? std::atoi(argv[3]) : 3;
  search::KnnOptions kopt;
  kopt.n_neighbors = 14;
  const auto knn = search::make_knn(x.data.data(), x.rows, x.cols, {kernels::Metric::Euclidean}, kopt);
  const reduce::FuzzyGraph g = reduce::fuzzy_simplicial_set(knn->graph(14));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  std::vector<float> start(static_cast<std::size_t>(g.n * 2));
  for (float& v : start) v = u(rng);

  // The moves one run makes: each due edge's attraction and its negative samples.
  double moves = 0;
  {
    reduce::detail::SgdSchedule s(g.vals, 5, epochs);
    for (int t = 1; t < epochs; ++t) {
      for (std::int64_t e = 0; e < static_cast<std::int64_t>(g.vals.size()); ++e) {
        if (s.due(e, t)) moves += 1 + s.take(e, t);
      }
    }
  }
  std::printf("%s: %lld points, %zu edges, %d epochs, %.3g moves a run\n", argv[1],
              static_cast<long long>(g.n), g.vals.size(), epochs, moves);
  using reduce::detail::SgdKernel;
  struct Named {
    const char* name;
    SgdKernel kernel;
  };
  std::vector<Named> kernels_run = {{"portable", SgdKernel::Portable}, {"scalar", SgdKernel::Scalar}};
  if (reduce::detail::sgd_avx512_available()) kernels_run.insert(kernels_run.begin(), {"avx512", SgdKernel::Avx512});
  for (const Named& k : kernels_run) {
    for (int threads : {1, 2}) {
      kernels::set_num_threads(threads);
      std::vector<double> wall, cpu;
      for (int r = 0; r < reps; ++r) {
        std::vector<float> y = start;
        reduce::detail::SgdProblem p;
        p.n_heads = g.n;
        p.offsets = g.offsets.data();
        p.tails = g.cols.data();
        p.head = y.data();
        p.n_tail = g.n;
        p.dim = 2;
        p.a = 1.577f;
        p.b = 0.895f;
        p.attract_scale = 2.0f;
        p.n_epochs = epochs;
        p.seed = 42;
        p.stream = 2;
        reduce::detail::SgdSchedule s(g.vals, 5, epochs);
        const double c0 = bench::cpu_seconds();
        const auto t0 = bench::Clock::now();
        reduce::detail::optimize_layout(p, s, k.kernel);
        wall.push_back(bench::seconds_since(t0));
        cpu.push_back(bench::cpu_seconds() - c0);
      }
      const double w = bench::median(wall);
      std::printf("%-9s %d thread(s): %.3f s wall (%.3f-%.3f), %.3f s CPU, %.1f M moves/s\n", k.name,
                  threads, w, *std::min_element(wall.begin(), wall.end()),
                  *std::max_element(wall.begin(), wall.end()), bench::median(cpu), moves / w / 1e6);
    }
  }
  return 0;
}
