// UMAP's layout optimisation: the SGD over the fuzzy graph's edges with negative sampling
// (umap-learn's optimize_layout_euclidean, one vertex's moves at a time and the edges of all
// vertices in parallel; docs/numerics.md "UMAP: SGD"). Internal to the reduce layer: Umap's fit
// and transform call it; the tests call it directly to compare its kernels.
#pragma once

#include <functional>

#include <cstdint>
#include <vector>

namespace mmembed::reduce::detail {

// splitmix64's mixing function, and a seed's independent stream for (a, b, c).
inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c);
}

// umap-learn's epochs_per_sample schedule, exactly, without the rounding of its running sums.
// With p = max_weight / w the epochs per sample of an edge and rate = 1 / p, umap-learn samples
// the edge at epoch t once its next sample epoch, p after the previous, has come: floor(t rate)
// samples by epoch t, so it is due at t when floor(t rate) > floor((t - 1) rate); and it draws
// its negative samples so that floor(negative_rate t rate) - 1 have been drawn by a sampled epoch
// t: at a due epoch, floor(negative_rate t rate) minus the same at its previous due epoch (or
// minus 1 at its first). Every product is exact in double (a float times an integer < 2^29).
// Each edge keeps that running count; only its head vertex's task advances it, so threads never
// share one.
class SgdSchedule {
 public:
  // vals: the edges' weights. Throws InvalidArgument when n_epochs x max(negative_rate, 1)
  // reaches 2^29 (so the products below stay exact).
  SgdSchedule(const std::vector<float>& vals, int negative_rate, int n_epochs);

  // Whether edge e is sampled at epoch t >= 1 (branch-free; the products are >= 0, so
  // truncation is floor).
  bool due(std::int64_t e, int t) const {
    const double r = rate_[e];
    return static_cast<std::int64_t>(t * r) > static_cast<std::int64_t>((t - 1) * r);
  }

  // Takes edge e's sample at a due epoch t (epochs in increasing order): its negative samples.
  std::int32_t take(std::int64_t e, int t) {
    const std::int32_t total = static_cast<std::int32_t>(negative_rate_ * t * static_cast<double>(rate_[e]));
    const std::int32_t n = total - drawn_[e];
    drawn_[e] = total;
    return n > 0 ? n : 0;
  }

  // due and take over the edges [e_begin, e_end) at epoch t >= 1, in order: for each due edge e,
  // appends tails[e] to tail_out and its negative samples to neg_out; returns how many. Both
  // outputs need room for (e_end - e_begin) + 16 values. simd: 16 edges at a time in AVX-512
  // where the CPU has it (the same values and the same state afterwards as the scalar loop).
  std::int32_t take_due(std::int64_t e_begin, std::int64_t e_end, int t, const std::int32_t* tails,
                        std::int32_t* tail_out, std::int32_t* neg_out, bool simd = true);

 private:
  std::vector<float> rate_;          // w / max w, in (0, 1]
  std::vector<std::int32_t> drawn_;  // floor(negative_rate t rate) at the last due epoch (1 first)
  double negative_rate_ = 0;
};

struct SgdProblem {
  std::int64_t n_heads = 0;                   // vertices moved
  const std::int64_t* offsets = nullptr;      // [n_heads + 1], edges by head
  const std::int64_t* tails = nullptr;        // into the tail embedding
  float* head = nullptr;                      // [n_heads, dim], updated in place
  const float* tail_fixed = nullptr;          // transform: the training embedding; fit: null
  std::int64_t n_tail = 0;                    // negative samples come from [0, n_tail)
  std::int64_t dim = 2;
  float a = 0, b = 0, gamma = 1, attract_scale = 1;
  double learning_rate = 1;
  int n_epochs = 0;
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;                   // the seed's stream for these moves
  const std::function<void(int)>* after_epoch = nullptr;  // called with epochs done, if set
};

// How the moves are computed. All give each vertex the same sequence of moves; they differ in
// the arithmetic's last bits.
enum class SgdKernel {
  Auto,      // Avx512 where the CPU has it and n_components is 2 or 3, else Portable
  Avx512,    // 2 groups of 16 lanes, bookkeeping and loads in AVX-512 (2 or 3 components)
  Portable,  // 16 lanes in GCC vector extensions, compiled for AVX-512, AVX2 and the baseline,
             // the bookkeeping scalar per lane (2 or 3 components; others run Scalar)
  Scalar,    // one vertex at a time, std::pow (any n_components)
};
// Whether this CPU and build can run SgdKernel::Avx512.
bool sgd_avx512_available();

// Runs p.n_epochs epochs of moves on p.head. Deterministic: the result does not depend on the
// thread count. Throws InvalidArgument when the points or the epochs exceed its 32-bit indices.
void optimize_layout(const SgdProblem& p, SgdSchedule& s, SgdKernel kernel = SgdKernel::Auto);

}  // namespace mmembed::reduce::detail
