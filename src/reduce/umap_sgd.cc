#include "reduce/umap_sgd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "kernels/parallel.h"
#include "kernels/vectorize.h"
#include "reduce/fast_pow.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MMEMBED_UMAP_AVX512 1  // the AVX-512 code below: take_due_avx512, lanes_moves_avx512
// GCC 12's AVX-512 headers start some intrinsics (_mm512_srli_epi64, _mm512_mul_epu32) from
// _mm512_undefined_*, which -Wmaybe-uninitialized reports at every use (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

namespace mmembed::reduce::detail {
namespace {

// The negative samples: the q-th draw of a vertex in an epoch is a hash of its (seed, stream,
// epoch, vertex) key and q, mapped to [0, n_tail) by multiply-shift. A pure function of its
// inputs (no sequential state), so the SIMD moves below draw 16 lanes' samples at once.
inline std::uint32_t sgd_key(const SgdProblem& p, int epoch, std::int64_t i) {
  const std::uint64_t k = stream_seed(p.seed, p.stream, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(i));
  return static_cast<std::uint32_t>(k ^ (k >> 32));
}
constexpr std::uint32_t kDrawStep = 0x9E3779B9u;  // 2^32 / golden ratio
[[gnu::always_inline]] inline std::uint32_t hash32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x21f0aaadu;
  x ^= x >> 15;
  x *= 0x735a2d97u;
  x ^= x >> 15;
  return x;
}
[[gnu::always_inline]] inline std::uint32_t sgd_draw(std::uint32_t key, std::uint32_t q, std::uint32_t n) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(hash32(key + q * kDrawStep)) * n) >> 32);
}

// A chunk's samples for one epoch: per vertex v of the chunk, its due edges
// [starts[v], starts[v + 1]) in edge order, each a tail and the number of its negative samples.
struct ChunkSamples {
  std::vector<std::int32_t> tail, negatives;
  std::vector<std::int32_t> starts;
};

void chunk_samples(const SgdProblem& p, SgdSchedule& s, const std::int32_t* tails, std::int64_t begin,
                   std::int64_t end, int epoch, ChunkSamples& out) {
  const std::int64_t e0 = p.offsets[begin], n_edges = p.offsets[end] - e0;
  MMEMBED_CHECK(n_edges < (std::int64_t{1} << 31), InvalidArgument, "UMAP: ", n_edges,
                " edges in one SGD chunk is more than its 32-bit indices hold");
  out.tail.resize(n_edges + 16);  // take_due's room
  out.negatives.resize(n_edges + 16);
  out.starts.resize(end - begin + 1);
  out.starts[0] = 0;
  if (epoch == 0) {  // nothing is due at epoch 0
    std::fill(out.starts.begin(), out.starts.end(), 0);
    return;
  }
  std::int32_t n = 0;
  for (std::int64_t i = begin; i < end; ++i) {
    n += s.take_due(p.offsets[i], p.offsets[i + 1], epoch, tails, out.tail.data() + n,
                    out.negatives.data() + n);
    out.starts[i - begin + 1] = n;
  }
}

#ifdef MMEMBED_UMAP_AVX512
// Two vectors of 8 doubles truncated to 16 int32 (the values are below 2^29).
__attribute__((target("avx512f,avx512dq"), always_inline)) inline __m512i trunc16(__m512d lo, __m512d hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(lo)), _mm512_cvttpd_epi32(hi), 1);
}

// SgdSchedule::take_due, 16 edges at a time: the rates widened to double and multiplied and
// truncated as in due() and take() (the same products, so the same integers), the due lanes'
// tails and counts packed to the front of a register and stored whole (hence the 16 values of
// room past the end).
__attribute__((target("avx512f,avx512dq"))) std::int32_t take_due_avx512(
    const float* rate, std::int32_t* drawn, double negative_rate, std::int64_t e_begin,
    std::int64_t e_end, int t, const std::int32_t* tails, std::int32_t* tail_out,
    std::int32_t* neg_out) {
  const __m512d now = _mm512_set1_pd(static_cast<double>(t));
  const __m512d before = _mm512_set1_pd(static_cast<double>(t - 1));
  const __m512d negs_now = _mm512_set1_pd(negative_rate * t);
  std::int32_t n = 0;
  for (std::int64_t e = e_begin; e < e_end; e += 16) {
    const std::int64_t left = e_end - e;
    const __mmask16 in = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 r = _mm512_maskz_loadu_ps(in, rate + e);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(r));
    const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(r, 1));
    const __m512i by_now = trunc16(_mm512_mul_pd(now, lo), _mm512_mul_pd(now, hi));
    const __m512i by_before = trunc16(_mm512_mul_pd(before, lo), _mm512_mul_pd(before, hi));
    const __mmask16 due = in & _mm512_cmpgt_epi32_mask(by_now, by_before);
    if (due == 0) continue;
    const __m512i total = trunc16(_mm512_mul_pd(negs_now, lo), _mm512_mul_pd(negs_now, hi));
    const __m512i negs = _mm512_max_epi32(_mm512_sub_epi32(total, _mm512_maskz_loadu_epi32(due, drawn + e)),
                                          _mm512_setzero_si512());
    _mm512_mask_storeu_epi32(drawn + e, due, total);
    const __m512i tl = _mm512_maskz_loadu_epi32(due, tails + e);
    _mm512_storeu_si512(tail_out + n, _mm512_maskz_compress_epi32(due, tl));
    _mm512_storeu_si512(neg_out + n, _mm512_maskz_compress_epi32(due, negs));
    n += __builtin_popcount(due);
  }
  return n;
}
#endif

// Each vertex's moves for one epoch, one after the other, each from where the previous left it:
// for each due edge, the attraction towards its tail, then its negative samples (a draw of the
// vertex itself in a fit is skipped: at distance 0 it would not move). Only the vertex's own
// coordinates move; `others` is the epoch-start snapshot (fit) or the fixed training embedding
// (transform). For any n_components; 2 and 3 components run the same steps on 16 vertices at
// once (lanes_moves, lanes_moves_avx512).
inline float clip4(float v) { return v > 4.0f ? 4.0f : (v < -4.0f ? -4.0f : v); }

void vertex_moves(const SgdProblem& p, const ChunkSamples& cs, std::int64_t v, std::int64_t i,
                  std::uint32_t key, float* cur, float alpha, const float* others) {
  const std::int64_t dim = p.dim;
  const float two_ab = 2.0f * p.a * p.b, two_gb = 2.0f * p.gamma * p.b;
  const bool skip_self = p.tail_fixed == nullptr;
  std::uint32_t q = 0;
  for (std::int32_t j = cs.starts[v]; j < cs.starts[v + 1]; ++j) {
    const float* other = others + static_cast<std::int64_t>(cs.tail[j]) * dim;
    float d2 = 0;
    for (std::int64_t c = 0; c < dim; ++c) {
      const float t = cur[c] - other[c];
      d2 += t * t;
    }
    if (d2 > 0.0f) {
      const float pb = std::pow(d2, p.b);
      const float coeff = -two_ab * pb / (d2 * (p.a * pb + 1.0f));
      for (std::int64_t c = 0; c < dim; ++c) {
        cur[c] += p.attract_scale * clip4(coeff * (cur[c] - other[c])) * alpha;
      }
    }
    for (std::int32_t r = 0; r < cs.negatives[j]; ++r) {
      const std::int64_t k = sgd_draw(key, q++, static_cast<std::uint32_t>(p.n_tail));
      if (skip_self && k == i) continue;
      const float* neg = others + k * dim;
      float n2 = 0;
      for (std::int64_t c = 0; c < dim; ++c) {
        const float t = cur[c] - neg[c];
        n2 += t * t;
      }
      if (n2 <= 0.0f) continue;
      const float coeff = two_gb / ((0.001f + n2) * (p.a * std::pow(n2, p.b) + 1.0f));
      for (std::int64_t c = 0; c < dim; ++c) cur[c] += clip4(coeff * (cur[c] - neg[c])) * alpha;
    }
  }
}

constexpr int kLanes = kPowLanes;  // vertices run side by side

// The arithmetic of one step of 16 lanes, each lane one vertex: `att` lanes (all bits set) move
// towards their `oth`, the other `valid` lanes away from it, invalid lanes stay. pow is
// pow_f32x16 (relative error ~1e-6) instead of std::pow, and squared distances below FLT_MIN
// are taken as FLT_MIN.
struct StepConstants {
  float two_ab, two_gb, a, b, att_step, neg_step;
};
template <int kDim>
[[gnu::always_inline]] inline void lanes_step(fast_pow_detail::F16 (&cur)[kDim],
                                              const fast_pow_detail::F16 (&oth)[kDim],
                                              fast_pow_detail::I16 att, fast_pow_detail::I16 valid,
                                              const StepConstants& k) {
  using fast_pow_detail::F16;
  constexpr float kMin = std::numeric_limits<float>::min();
  F16 d2{};
  F16 diff[kDim];
  for (int c = 0; c < kDim; ++c) {
    diff[c] = cur[c] - oth[c];
    d2 += diff[c] * diff[c];
  }
  const F16 x = d2 > kMin ? d2 : F16{} + kMin;
  alignas(64) float pw[kLanes];
  std::memcpy(pw, &x, sizeof x);
  pow_f32x16(pw, k.b, pw);
  F16 pb;
  std::memcpy(&pb, pw, sizeof pb);
  const F16 num = att ? -k.two_ab * pb : F16{} + k.two_gb;
  const F16 den = (att ? x : 0.001f + d2) * (k.a * pb + 1.0f);
  const F16 coeff = valid & (d2 > 0.0f) ? num / den : F16{};
  const F16 step = att ? F16{} + k.att_step : F16{} + k.neg_step;
  for (int c = 0; c < kDim; ++c) {
    F16 g = coeff * diff[c];
    g = g > 4.0f ? F16{} + 4.0f : g;
    g = g < -4.0f ? F16{} - 4.0f : g;
    cur[c] += step * g;
  }
}

// Lane bookkeeping shared by both lane loops: the chunk's vertices in order, skipping those with
// no due edge (they do not move).
struct LaneFeed {
  const SgdProblem& p;
  const ChunkSamples& cs;
  std::int64_t begin, count, next = 0;
  int epoch;
  // The next vertex (chunk index) with samples, or -1.
  std::int64_t take() {
    while (next < count && cs.starts[next + 1] == cs.starts[next]) ++next;
    return next < count ? next++ : -1;
  }
};

// vertex_moves for kDim components on 16 vertices at once, one a SIMD lane, each lane's samples
// fetched one by one in scalar code. Each vertex's moves form one long chain of dependent
// arithmetic, so one vertex at a time leaves the core waiting on latency; 16 independent chains
// side by side fill the lanes instead. A lane takes the next vertex as soon as its vertex is
// done. Every vertex gets exactly its own moves in order, whatever lane and step they land on:
// so the result does not depend on how the vertices are split among threads.
template <int kDim>
[[gnu::always_inline]] inline void lanes_moves(LaneFeed& feed, float* head, const StepConstants& sc,
                                               const float* others) {
  using fast_pow_detail::F16;
  using fast_pow_detail::I16;
  const SgdProblem& p = feed.p;
  const ChunkSamples& cs = feed.cs;
  const bool skip_self = p.tail_fixed == nullptr;
  const std::uint32_t n_tail = static_cast<std::uint32_t>(p.n_tail);
  std::int64_t vtx[kLanes];
  std::int32_t pos[kLanes], stop[kLanes], negs[kLanes];
  std::uint32_t key[kLanes], q[kLanes];
  F16 cur[kDim];
  for (int c = 0; c < kDim; ++c) cur[c] = F16{};
  int active = 0;
  auto take = [&](int l) {
    const std::int64_t v = feed.take();
    vtx[l] = v;
    pos[l] = stop[l] = negs[l] = 0;
    if (v < 0) return;
    pos[l] = cs.starts[v];
    stop[l] = cs.starts[v + 1];
    key[l] = sgd_key(p, feed.epoch, feed.begin + v);
    q[l] = 0;
    for (int c = 0; c < kDim; ++c) cur[c][l] = head[v * kDim + c];
    ++active;
  };
  for (int l = 0; l < kLanes; ++l) take(l);
  alignas(64) float oth[kDim][kLanes];
  alignas(64) std::int32_t att[kLanes], valid[kLanes];
  while (active > 0) {
    for (int l = 0; l < kLanes; ++l) {
      if (vtx[l] >= 0 && negs[l] == 0 && pos[l] == stop[l]) {  // vertex done
        for (int c = 0; c < kDim; ++c) head[vtx[l] * kDim + c] = cur[c][l];
        --active;
        take(l);
      }
      att[l] = valid[l] = 0;
      std::int64_t o = 0;
      if (vtx[l] >= 0) {
        if (negs[l] == 0) {
          att[l] = valid[l] = -1;
          o = cs.tail[pos[l]];
          negs[l] = cs.negatives[pos[l]++];
        } else {
          --negs[l];
          o = sgd_draw(key[l], q[l]++, n_tail);
          valid[l] = skip_self && o == feed.begin + vtx[l] ? 0 : -1;
        }
      }
      for (int c = 0; c < kDim; ++c) oth[c][l] = others[o * kDim + c];
    }
    F16 o[kDim];
    for (int c = 0; c < kDim; ++c) std::memcpy(&o[c], oth[c], sizeof(F16));
    I16 a, v;
    std::memcpy(&a, att, sizeof a);
    std::memcpy(&v, valid, sizeof v);
    lanes_step<kDim>(cur, o, a, v, sc);
  }
}

// The moves of a chunk's vertices (lanes_moves, or vertex_moves one by one); compiled for
// AVX-512, AVX2 and the baseline.
MMEMBED_TARGET_CLONES void chunk_moves(LaneFeed& feed, float* head, const StepConstants& sc,
                                       const float* others, bool scalar) {
  const SgdProblem& p = feed.p;
  if (p.dim == 2 && !scalar) {
    lanes_moves<2>(feed, head, sc, others);
  } else if (p.dim == 3 && !scalar) {
    lanes_moves<3>(feed, head, sc, others);
  } else {
    for (std::int64_t v = 0; v < feed.count; ++v) {
      vertex_moves(p, feed.cs, v, feed.begin + v, sgd_key(p, feed.epoch, feed.begin + v),
                   head + v * p.dim, sc.neg_step, others);
    }
  }
}

#ifdef MMEMBED_UMAP_AVX512
// lanes_moves with the bookkeeping in SIMD too, two groups of 16 lanes interleaved (a step's
// arithmetic is one chain of ~40 dependent operations; measured on an Emerald Rapids core, one
// group runs as fast as two: the random coordinate loads, one L1 miss a move, bound the moves
// more than that latency; docs/performance.md). Each lane's cursor, negative samples left, draw
// counter and key are vectors; the samples, the draws and the coordinates are gathered 16 at a
// time. Only a vertex's end (about one lane in 40 steps) goes through scalar code. Same moves,
// same draws, same arithmetic as lanes_moves.
template <int kDim>
struct Avx512Lanes {
  using F16 = fast_pow_detail::F16;
  using I16 = fast_pow_detail::I16;
  __m512i vtx, pos, stop, negs, self, key, q;
  F16 cur[kDim];

  // Writes back the vertices done and refills their lanes from the feed; returns the change in
  // the number of live lanes.
  __attribute__((target("avx512f"))) int refill(__mmask16 lanes, LaneFeed& feed, float* head) {
    alignas(64) std::int32_t vtx_m[kLanes], pos_m[kLanes], stop_m[kLanes], negs_m[kLanes], self_m[kLanes];
    alignas(64) std::uint32_t key_m[kLanes], q_m[kLanes];
    alignas(64) float cur_m[kDim][kLanes];
    _mm512_store_si512(vtx_m, vtx);
    _mm512_store_si512(pos_m, pos);
    _mm512_store_si512(stop_m, stop);
    _mm512_store_si512(negs_m, negs);
    _mm512_store_si512(self_m, self);
    _mm512_store_si512(key_m, key);
    _mm512_store_si512(q_m, q);
    for (int c = 0; c < kDim; ++c) _mm512_store_ps(cur_m[c], (__m512)cur[c]);
    const SgdProblem& p = feed.p;
    int change = 0;
    for (unsigned m = lanes; m != 0; m &= m - 1) {
      const int l = __builtin_ctz(m);
      if (vtx_m[l] >= 0) {
        for (int c = 0; c < kDim; ++c) head[static_cast<std::int64_t>(vtx_m[l]) * kDim + c] = cur_m[c][l];
        --change;
      }
      const std::int64_t v = feed.take();
      vtx_m[l] = static_cast<std::int32_t>(v);
      pos_m[l] = stop_m[l] = negs_m[l] = 0;
      self_m[l] = -1;
      key_m[l] = q_m[l] = 0;
      if (v < 0) continue;
      pos_m[l] = feed.cs.starts[v];
      stop_m[l] = feed.cs.starts[v + 1];
      self_m[l] = p.tail_fixed == nullptr ? static_cast<std::int32_t>(feed.begin + v) : -1;
      key_m[l] = sgd_key(p, feed.epoch, feed.begin + v);
      for (int c = 0; c < kDim; ++c) cur_m[c][l] = head[v * kDim + c];
      ++change;
    }
    vtx = _mm512_load_si512(vtx_m);
    pos = _mm512_load_si512(pos_m);
    stop = _mm512_load_si512(stop_m);
    negs = _mm512_load_si512(negs_m);
    self = _mm512_load_si512(self_m);
    key = _mm512_load_si512(key_m);
    q = _mm512_load_si512(q_m);
    for (int c = 0; c < kDim; ++c) cur[c] = (F16)_mm512_load_ps(cur_m[c]);
    return change;
  }

  // The lanes whose vertex is done (or that have none yet).
  __attribute__((target("avx512f"))) __mmask16 done() const {
    const __m512i zero = _mm512_setzero_si512();
    return _mm512_cmplt_epi32_mask(vtx, zero) |
           (_mm512_cmpeq_epi32_mask(negs, zero) & _mm512_cmpeq_epi32_mask(pos, stop));
  }

  // One sample of every live lane.
  __attribute__((target("avx512f"))) void step(const ChunkSamples& cs, const float* others,
                                               __m512i n_tail, const StepConstants& sc) {
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __mmask16 alive = _mm512_cmpge_epi32_mask(vtx, zero);
    const __mmask16 att = alive & _mm512_cmpeq_epi32_mask(negs, zero);
    const __mmask16 neg = alive & ~att;
    // Attraction lanes: the next due edge's tail and negative samples.
    const __m512i tail = _mm512_mask_i32gather_epi32(zero, att, pos, cs.tail.data(), 4);
    const __m512i nn = _mm512_mask_i32gather_epi32(zero, att, pos, cs.negatives.data(), 4);
    pos = _mm512_mask_add_epi32(pos, att, pos, one);
    // Negative lanes: draw q of the key (hash32), mapped to [0, n_tail) by the high half of
    // h * n_tail.
    __m512i h = _mm512_add_epi32(key, _mm512_mullo_epi32(q, _mm512_set1_epi32(static_cast<std::int32_t>(kDrawStep))));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32(0x21f0aaad));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 15));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32(0x735a2d97));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 15));
    const __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(h, n_tail), 32);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(h, 32), n_tail);
    const __m512i drawn = _mm512_mask_blend_epi32(0xAAAA, even, odd);
    q = _mm512_mask_add_epi32(q, neg, q, one);
    negs = _mm512_mask_blend_epi32(att, _mm512_mask_sub_epi32(negs, neg, negs, one), nn);
    const __mmask16 valid = att | (neg & _mm512_cmpneq_epi32_mask(drawn, self));
    const __m512i idx = _mm512_mullo_epi32(_mm512_mask_blend_epi32(att, drawn, tail), _mm512_set1_epi32(kDim));
    F16 o[kDim];
    for (int c = 0; c < kDim; ++c) {
      o[c] = (F16)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, others + c, 4);
    }
    const __m512i all = _mm512_set1_epi32(-1);
    lanes_step<kDim>(cur, o, (I16)_mm512_maskz_mov_epi32(att, all), (I16)_mm512_maskz_mov_epi32(valid, all), sc);
  }
};

template <int kDim>
__attribute__((target("avx512f"))) void lanes_moves_avx512(LaneFeed& feed, float* head,
                                                           const StepConstants& sc,
                                                           const float* others) {
  constexpr int kGroups = 2;
  Avx512Lanes<kDim> g[kGroups];
  int active = 0;
  for (auto& lanes : g) {
    lanes.vtx = _mm512_set1_epi32(-1);
    lanes.pos = lanes.stop = lanes.negs = lanes.key = lanes.q = _mm512_setzero_si512();
    lanes.self = _mm512_set1_epi32(-1);
    for (int c = 0; c < kDim; ++c) lanes.cur[c] = fast_pow_detail::F16{};
    active += lanes.refill(0xFFFF, feed, head);
  }
  const __m512i n_tail = _mm512_set1_epi32(static_cast<std::int32_t>(feed.p.n_tail));
  while (active > 0) {
    for (auto& lanes : g) {
      const __mmask16 done = lanes.done() & _mm512_cmpge_epi32_mask(lanes.vtx, _mm512_setzero_si512());
      if (done) active += lanes.refill(done, feed, head);
    }
    for (auto& lanes : g) lanes.step(feed.cs, others, n_tail, sc);
  }
}
#endif

}  // namespace

SgdSchedule::SgdSchedule(const std::vector<float>& vals, int negative_rate, int n_epochs)
    : negative_rate_(negative_rate) {
  MMEMBED_CHECK(static_cast<double>(std::max(negative_rate, 1)) * n_epochs < 536870912.0, InvalidArgument,
                "UMAP: n_epochs x max(negative_sample_rate, 1) (", n_epochs, " x ", negative_rate,
                ") must be below 2^29");
  float mx = 0;
  for (float v : vals) mx = std::max(mx, v);
  const std::size_t m = vals.size();
  rate_.resize(m);
  drawn_.assign(m, 1);
  for (std::size_t e = 0; e < m; ++e) {
    rate_[e] = mx > 0 ? static_cast<float>(static_cast<double>(vals[e]) / mx) : 0.0f;
  }
}

std::int32_t SgdSchedule::take_due(std::int64_t e_begin, std::int64_t e_end, int t,
                                   const std::int32_t* tails, std::int32_t* tail_out,
                                   std::int32_t* neg_out, bool simd) {
#ifdef MMEMBED_UMAP_AVX512
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  if (simd && avx512) {
    return take_due_avx512(rate_.data(), drawn_.data(), negative_rate_, e_begin, e_end, t, tails,
                           tail_out, neg_out);
  }
#endif
  (void)simd;
  // The due edges' offsets first, appended without branches (about a third are due, in no
  // pattern a branch predictor could follow), then their tails and negative samples.
  std::int32_t n = 0;
  for (std::int64_t e = e_begin; e < e_end; ++e) {
    tail_out[n] = static_cast<std::int32_t>(e - e_begin);
    n += due(e, t) ? 1 : 0;
  }
  for (std::int32_t j = 0; j < n; ++j) {
    const std::int64_t e = e_begin + tail_out[j];
    tail_out[j] = tails[e];
    neg_out[j] = take(e, t);
  }
  return n;
}

bool sgd_avx512_available() {
#ifdef MMEMBED_UMAP_AVX512
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
#else
  return false;
#endif
}

void optimize_layout(const SgdProblem& p, SgdSchedule& s, SgdKernel kernel) {
  MMEMBED_CHECK(p.n_tail * std::max<std::int64_t>(p.dim, 1) < (std::int64_t{1} << 31), InvalidArgument,
                "UMAP: ", p.n_tail, " points of ", p.dim, " components is more than the SGD's 32-bit indices hold");
  const std::int64_t n_edges = p.offsets[p.n_heads];
  std::vector<std::int32_t> tails(p.tails, p.tails + n_edges);
  std::vector<float> snapshot;
  if (kernel == SgdKernel::Auto) {
    kernel = sgd_avx512_available() && (p.dim == 2 || p.dim == 3) ? SgdKernel::Avx512 : SgdKernel::Portable;
  }
  MMEMBED_CHECK(kernel != SgdKernel::Avx512 || (sgd_avx512_available() && (p.dim == 2 || p.dim == 3)),
                Unsupported, "UMAP: the AVX-512 SGD kernel needs an AVX-512 CPU and 2 or 3 components");
  // Vertices in fixed chunks handed to whichever thread is free (the machine may be shared: a
  // static split per thread waits for the slowest); each vertex's moves do not depend on its
  // chunk, so neither does the result. A chunk first lists its vertices' due edges (the
  // schedule: scalar, branch-free), then makes the moves (SIMD, one vertex a lane).
  constexpr std::int64_t kChunk = 1024;
  const std::int64_t n_chunks = (p.n_heads + kChunk - 1) / kChunk;
  for (int epoch = 0; epoch < p.n_epochs; ++epoch) {
    const float alpha = static_cast<float>(p.learning_rate * (1.0 - static_cast<double>(epoch) / p.n_epochs));
    const float* others = p.tail_fixed;
    if (others == nullptr) {
      snapshot.assign(p.head, p.head + p.n_heads * p.dim);
      others = snapshot.data();
    }
    const StepConstants sc{2.0f * p.a * p.b, 2.0f * p.gamma * p.b, p.a, p.b,
                           p.attract_scale * alpha, alpha};
    kernels::parallel_tasks(n_chunks, [&](std::int64_t c) {
      thread_local ChunkSamples cs;
      const std::int64_t begin = c * kChunk, end = std::min(p.n_heads, (c + 1) * kChunk);
      chunk_samples(p, s, tails.data(), begin, end, epoch, cs);
      LaneFeed feed{p, cs, begin, end - begin, 0, epoch};
      float* head = p.head + begin * p.dim;
#ifdef MMEMBED_UMAP_AVX512
      if (kernel == SgdKernel::Avx512) {
        if (p.dim == 2) return lanes_moves_avx512<2>(feed, head, sc, others);
        return lanes_moves_avx512<3>(feed, head, sc, others);
      }
#endif
      chunk_moves(feed, head, sc, others, kernel == SgdKernel::Scalar);
    });
    if (p.after_epoch != nullptr && *p.after_epoch) (*p.after_epoch)(epoch + 1);
  }
}

}  // namespace mmembed::reduce::detail
