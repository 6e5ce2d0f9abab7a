#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/check.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/softmax.h"

namespace mmembed::kernels {

namespace {
void check_dims(std::int64_t q_ld, std::int64_t k_ld, std::int64_t v_ld, std::int64_t out_ld,
                const AttentionDims& d, bool causal) {
  const std::int64_t width = d.num_heads * d.head_dim;
  MMEMBED_ASSERT(d.batch >= 0 && d.q_len >= 0 && d.kv_len >= 0 && d.num_heads >= 1 &&
                 d.head_dim >= 1);
  MMEMBED_ASSERT(q_ld >= width && k_ld >= width && v_ld >= width && out_ld >= width);
  MMEMBED_ASSERT(!causal || d.q_len == d.kv_len);
}
}  // namespace

void attention(const float* q, std::int64_t q_ld, const float* k, std::int64_t k_ld,
               const float* v, std::int64_t v_ld, float* out, std::int64_t out_ld,
               const AttentionDims& d, float scale, const float* key_mask, bool causal) {
  check_dims(q_ld, k_ld, v_ld, out_ld, d, causal);
  const std::int64_t Tq = d.q_len, Tk = d.kv_len, D = d.head_dim;
  if (d.batch == 0 || Tq == 0) return;
  if (Tk == 0) {  // no keys: an empty weighted sum
    for (std::int64_t r = 0; r < d.batch * Tq; ++r) {
      std::fill(out + r * out_ld, out + r * out_ld + d.num_heads * D, 0.0f);
    }
    return;
  }
  // The (batch, head) pairs are independent: they are split over the kernels' threads, and each
  // pair's two GEMMs and softmax run on its thread alone (an sgemm or parallel_for issued inside
  // parallel_tasks runs serially). A pair's arithmetic is the same whichever thread runs
  // it, so the split does not change the results. Scores for one pair: [Tq, Tk].
  // The pairs are handed out dynamically (parallel_tasks); each thread keeps its score buffer.
  const std::int64_t pairs = d.batch * d.num_heads;
  parallel_tasks(pairs, [&](std::int64_t p) {
    thread_local std::vector<float> scores;
    if (scores.size() < static_cast<std::size_t>(Tq * Tk)) {
      scores.resize(static_cast<std::size_t>(Tq * Tk));
    }
    float* S = scores.data();
    {
      const std::int64_t b = p / d.num_heads, h = p % d.num_heads;
      const float* mask_b = key_mask ? key_mask + b * Tk : nullptr;
      const float* Q = q + b * Tq * q_ld + h * D;
      const float* K = k + b * Tk * k_ld + h * D;
      const float* V = v + b * Tk * v_ld + h * D;
      float* O = out + b * Tq * out_ld + h * D;
      sgemm(Trans::No, Trans::Yes, Tq, Tk, D, scale, Q, q_ld, K, k_ld, 0.0f, S, Tk);
      if (causal) {
        // Row t keeps keys [0, t]; the rest are exact zeros, as exp(-inf) would give.
        for (std::int64_t t = 0; t < Tq; ++t) {
          float* row = S + t * Tk;
          softmax(row, row, 1, t + 1, mask_b);
          std::fill(row + t + 1, row + Tk, 0.0f);
        }
      } else {
        softmax(S, S, Tq, Tk, mask_b);
      }
      sgemm(Trans::No, Trans::No, Tq, D, Tk, 1.0f, S, Tk, V, v_ld, 0.0f, O, out_ld);
    }
  });
}

namespace ref {

void attention(const float* q, std::int64_t q_ld, const float* k, std::int64_t k_ld,
               const float* v, std::int64_t v_ld, float* out, std::int64_t out_ld,
               const AttentionDims& d, float scale, const float* key_mask, bool causal) {
  check_dims(q_ld, k_ld, v_ld, out_ld, d, causal);
  const std::int64_t Tq = d.q_len, Tk = d.kv_len, D = d.head_dim;
  std::vector<double> p(static_cast<std::size_t>(Tk));
  for (std::int64_t b = 0; b < d.batch; ++b) {
    for (std::int64_t h = 0; h < d.num_heads; ++h) {
      for (std::int64_t t = 0; t < Tq; ++t) {
        const float* qr = q + (b * Tq + t) * q_ld + h * D;
        const std::int64_t keys = causal ? t + 1 : Tk;
        double mx = -std::numeric_limits<double>::infinity();
        for (std::int64_t s = 0; s < keys; ++s) {
          const float* kr = k + (b * Tk + s) * k_ld + h * D;
          double dot = 0.0;
          for (std::int64_t i = 0; i < D; ++i) dot += static_cast<double>(qr[i]) * kr[i];
          // Score and mask are stored in float, as in the fast path and in PyTorch.
          float sc = static_cast<float>(dot * scale);
          if (key_mask) sc += key_mask[b * Tk + s];
          p[static_cast<std::size_t>(s)] = sc;
          mx = std::max(mx, static_cast<double>(sc));
        }
        double sum = 0.0;
        for (std::int64_t s = 0; s < keys; ++s) {
          double e = std::exp(p[static_cast<std::size_t>(s)] - mx);
          p[static_cast<std::size_t>(s)] = e;
          sum += e;
        }
        float* orow = out + (b * Tq + t) * out_ld + h * D;
        for (std::int64_t i = 0; i < D; ++i) {
          double acc = 0.0;
          for (std::int64_t s = 0; s < keys; ++s) {
            acc += p[static_cast<std::size_t>(s)] / sum * v[(b * Tk + s) * v_ld + h * D + i];
          }
          orow[i] = static_cast<float>(acc);
        }
      }
    }
  }
}

}  // namespace ref
}  // namespace mmembed::kernels
