#include "kernels/gemm_small.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "kernels/elementwise.h"
#include "kernels/parallel.h"
#include "kernels/vectorize.h"  // <immintrin.h> on x86

#define MMEMBED_SMALL_ROWS_X86 MMEMBED_KERNELS_X86

namespace mmembed::kernels::detail {
namespace {

// Output columns (weight rows) per block for V vectors of 16 rows: as many as keep the V x cols
// accumulators and the V vectors of x within the 32 vector registers (8 x 3 + 3, 6 x 4 + 4,
// 5 x 5 + 5); 8 columns with 4 vectors spilled accumulators and ran at the backend's speed.
// One vector (up to 16 rows) takes the pair kernel instead (column_block_pairs): 12 columns.
constexpr int cols_for(int vectors) {
  return vectors == 1 ? 12 : vectors <= 3 ? 8 : vectors == 4 ? 6 : 5;
}
constexpr int kMaxCols = 12;
constexpr int kVectorRows = 16;          // rows of x per vector
constexpr int kPrefetchLines = 8;        // how far ahead each weight row is prefetched

void apply_epilogue(Epilogue epilogue, float* t, std::int64_t n) {
  switch (epilogue) {
    case Epilogue::None: return;
    case Epilogue::Gelu: gelu(t, t, n); return;
    case Epilogue::QuickGelu: quick_gelu(t, t, n); return;
  }
}

#if MMEMBED_SMALL_ROWS_X86

// tile[j * 16V + r] = bias[j] + sum_k w[j, k] * panel[k, r] for the kCols weight rows at w
// (row stride `in`), each sum one FMA chain in k order.
template <int V, int kCols = cols_for(V)>
__attribute__((target("avx512f"))) void column_block(const float* panel, const float* w,
                                                     std::int64_t in, const float* bias,
                                                     float* tile) {
  __m512 acc[kCols][V];
  for (int j = 0; j < kCols; ++j) {
    const __m512 b0 = _mm512_set1_ps(bias != nullptr ? bias[j] : 0.0f);
    for (int v = 0; v < V; ++v) acc[j][v] = b0;
  }
  // Each weight row is prefetched kPrefetchLines cache lines ahead; near a row's end, the same
  // offset into the next block's row (the rows of the next block follow these in memory), so the
  // next block starts with its first lines in cache. Prefetches never fault, past W's end too.
  constexpr std::int64_t kAhead = kVectorRows * kPrefetchLines;
  for (std::int64_t k0 = 0; k0 < in; k0 += kVectorRows) {
    const float* ahead = k0 + kAhead < in ? w + k0 + kAhead : w + kCols * in + (k0 + kAhead - in);
    for (int j = 0; j < kCols; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + j * in), _MM_HINT_T0);
    }
    const std::int64_t k1 = std::min<std::int64_t>(in, k0 + kVectorRows);
    for (std::int64_t k = k0; k < k1; ++k) {
      __m512 xv[V];
      for (int v = 0; v < V; ++v) {
        xv[v] = _mm512_loadu_ps(panel + k * (kVectorRows * V) + kVectorRows * v);
      }
      for (int j = 0; j < kCols; ++j) {
        const __m512 wk = _mm512_set1_ps(w[j * in + k]);
        for (int v = 0; v < V; ++v) acc[j][v] = _mm512_fmadd_ps(wk, xv[v], acc[j][v]);
      }
    }
  }
  for (int j = 0; j < kCols; ++j) {
    for (int v = 0; v < V; ++v) {
      _mm512_storeu_ps(tile + j * (kVectorRows * V) + kVectorRows * v, acc[j][v]);
    }
  }
}

// Up to 16 rows: with one vector of x per k, the kernel above issues one broadcast load per FMA
// and streams ~9 GB/s of weights. Here a vector holds 8 rows x 2 consecutive k (lane 2r + e is
// row r, k = 2p + e; the panel holds two such vectors per pair p, rows 0-7 and 8-15), and one
// 64-bit broadcast brings w[j, 2p] and w[j, 2p+1] for both: 14 loads per 24 FMAs instead of 9
// per 8 (~12 GB/s in a throwaway driver). Each output is the sum of two FMA chains in k order,
// the even k and the odd k, then the bias: bias + (even + odd).
// tile[j * 16 + r] for the 12 weight rows at w (row stride `in`), rows r < 16.
template <int kCols>
__attribute__((target("avx512f"))) void column_block_pairs(const float* panel, const float* w,
                                                           std::int64_t in, const float* bias,
                                                           float* tile) {
  __m512 acc[kCols][2];
  for (int j = 0; j < kCols; ++j) acc[j][0] = acc[j][1] = _mm512_setzero_ps();
  constexpr std::int64_t kAhead = kVectorRows * kPrefetchLines;
  const std::int64_t even = in / 2 * 2;
  for (std::int64_t k0 = 0; k0 < even; k0 += kVectorRows) {
    const float* ahead = k0 + kAhead < in ? w + k0 + kAhead : w + kCols * in + (k0 + kAhead - in);
    for (int j = 0; j < kCols; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + j * in), _MM_HINT_T0);
    }
    const std::int64_t k1 = std::min<std::int64_t>(even, k0 + kVectorRows);
    for (std::int64_t k = k0; k < k1; k += 2) {
      const __m512 x0 = _mm512_loadu_ps(panel + k * kVectorRows);
      const __m512 x1 = _mm512_loadu_ps(panel + k * kVectorRows + kVectorRows);
      for (int j = 0; j < kCols; ++j) {
        double pair;  // w[j, k] and w[j, k + 1]
        std::memcpy(&pair, w + j * in + k, sizeof pair);
        const __m512 wk = _mm512_castpd_ps(_mm512_set1_pd(pair));
        acc[j][0] = _mm512_fmadd_ps(wk, x0, acc[j][0]);
        acc[j][1] = _mm512_fmadd_ps(wk, x1, acc[j][1]);
      }
    }
  }
  if (even < in) {  // odd `in`: the last k in the even lanes only (the panel's odd lanes are 0)
    const __m512 x0 = _mm512_loadu_ps(panel + even * kVectorRows);
    const __m512 x1 = _mm512_loadu_ps(panel + even * kVectorRows + kVectorRows);
    for (int j = 0; j < kCols; ++j) {
      const __m512 wk = _mm512_set1_ps(w[j * in + even]);
      acc[j][0] = _mm512_mask3_fmadd_ps(wk, x0, acc[j][0], 0x5555);
      acc[j][1] = _mm512_mask3_fmadd_ps(wk, x1, acc[j][1], 0x5555);
    }
  }
  for (int j = 0; j < kCols; ++j) {
    const __m256 b = _mm256_set1_ps(bias != nullptr ? bias[j] : 0.0f);
    for (int v = 0; v < 2; ++v) {
      // even + odd in lane 2r, then the 8 even lanes packed: rows 8v .. 8v+7
      const __m512 sum = _mm512_add_ps(acc[j][v], _mm512_permute_ps(acc[j][v], 0xB1));
      const __m512 rows8 = _mm512_maskz_compress_ps(0x5555, sum);
      _mm256_storeu_ps(tile + j * kVectorRows + 8 * v,
                       _mm256_add_ps(b, _mm512_castps512_ps256(rows8)));
    }
  }
}

void column_block_v(int vectors, const float* panel, const float* w, std::int64_t in,
                    const float* bias, float* tile) {
  switch (vectors) {
    case 1: column_block_pairs<cols_for(1)>(panel, w, in, bias, tile); return;
    case 2: column_block<2>(panel, w, in, bias, tile); return;
    case 3: column_block<3>(panel, w, in, bias, tile); return;
    case 4: column_block<4>(panel, w, in, bias, tile); return;
    case 5: column_block<5>(panel, w, in, bias, tile); return;
  }
  MMEMBED_ASSERT(false);
}

// b[i][j] = a[j][i] for 16 vectors of 16 floats (a is overwritten).
__attribute__((target("avx512f"), always_inline)) inline void transpose16(__m512* a, __m512* b) {
  for (int i = 0; i < 16; i += 2) {  // within 128-bit lanes: pairs of vectors interleaved
    b[i] = _mm512_unpacklo_ps(a[i], a[i + 1]);
    b[i + 1] = _mm512_unpackhi_ps(a[i], a[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {  // four vectors per lane, element e of the lane in [g+e]
    a[g] = _mm512_shuffle_ps(b[g], b[g + 2], 0x44);
    a[g + 1] = _mm512_shuffle_ps(b[g], b[g + 2], 0xEE);
    a[g + 2] = _mm512_shuffle_ps(b[g + 1], b[g + 3], 0x44);
    a[g + 3] = _mm512_shuffle_ps(b[g + 1], b[g + 3], 0xEE);
  }
  for (int e = 0; e < 4; ++e) {  // the four lanes' groups side by side
    const __m512 s0 = _mm512_shuffle_f32x4(a[e], a[4 + e], 0x88);
    const __m512 s1 = _mm512_shuffle_f32x4(a[e], a[4 + e], 0xDD);
    const __m512 s2 = _mm512_shuffle_f32x4(a[8 + e], a[12 + e], 0x88);
    const __m512 s3 = _mm512_shuffle_f32x4(a[8 + e], a[12 + e], 0xDD);
    b[e] = _mm512_shuffle_f32x4(s0, s2, 0x88);       // element 4 * 0 + e
    b[4 + e] = _mm512_shuffle_f32x4(s1, s3, 0x88);   // element 4 * 1 + e
    b[8 + e] = _mm512_shuffle_f32x4(s0, s2, 0xDD);   // element 4 * 2 + e
    b[12 + e] = _mm512_shuffle_f32x4(s1, s3, 0xDD);  // element 4 * 3 + e
  }
}

// x[0 .. n, :] transposed into panel[k * width + r], zero for r >= n (width = 16 * V), by 16 x 16
// blocks in registers (element by element it took 7% of a 77-token text's time).
__attribute__((target("avx512f"))) void transpose_panel(const float* x, std::int64_t in,
                                                        std::int64_t n, std::int64_t width,
                                                        float* panel) {
  const std::int64_t k_full = in / kVectorRows * kVectorRows;
  for (std::int64_t r0 = 0; r0 < width; r0 += kVectorRows) {
    const int valid = static_cast<int>(std::clamp<std::int64_t>(n - r0, 0, kVectorRows));
    for (std::int64_t k0 = 0; k0 < k_full; k0 += kVectorRows) {
      __m512 a[16], b[16];
      for (int i = 0; i < 16; ++i) {
        a[i] = i < valid ? _mm512_loadu_ps(x + (r0 + i) * in + k0) : _mm512_setzero_ps();
      }
      transpose16(a, b);
      for (int i = 0; i < 16; ++i) _mm512_storeu_ps(panel + (k0 + i) * width + r0, b[i]);
    }
    for (std::int64_t k = k_full; k < in; ++k) {  // the last columns of x (fewer than 16)
      for (int i = 0; i < kVectorRows; ++i) {
        panel[k * width + r0 + i] = i < valid ? x[(r0 + i) * in + k] : 0.0f;
      }
    }
  }
}

// The pair kernel's panel: x[0 .. n, :] (n <= 16) as panel[(2p + v) * 16 + 2r + e] =
// x[8v + r, 2p + e], zero for rows >= n and for k >= in. Pairs of floats are moved as doubles,
// 8 rows x 8 pairs at a time transposed in registers.
__attribute__((target("avx512f"))) void pair_panel(const float* x, std::int64_t in,
                                                   std::int64_t n, float* panel) {
  const std::int64_t k_full = in / kVectorRows * kVectorRows;
  const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
  const __m512i hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
  for (std::int64_t v = 0; v < 2; ++v) {
    const int valid = static_cast<int>(std::clamp<std::int64_t>(n - 8 * v, 0, 8));
    for (std::int64_t k0 = 0; k0 < k_full; k0 += kVectorRows) {
      __m512d a[8], t[8];
      for (int r = 0; r < 8; ++r) {
        a[r] = r < valid
                   ? _mm512_loadu_pd(reinterpret_cast<const double*>(x + (8 * v + r) * in + k0))
                         : _mm512_setzero_pd();
      }
      for (int r = 0; r < 8; r += 2) {  // t[r]: pairs 0,2,4,6 of rows r, r+1; t[r+1]: 1,3,5,7
        t[r] = _mm512_unpacklo_pd(a[r], a[r + 1]);
        t[r + 1] = _mm512_unpackhi_pd(a[r], a[r + 1]);
      }
      for (int h = 0; h < 8; h += 4) {  // rows h..h+3: pairs (0|4), (2|6), (1|5), (3|7)
        a[h] = _mm512_permutex2var_pd(t[h], lo, t[h + 2]);
        a[h + 1] = _mm512_permutex2var_pd(t[h], hi, t[h + 2]);
        a[h + 2] = _mm512_permutex2var_pd(t[h + 1], lo, t[h + 3]);
        a[h + 3] = _mm512_permutex2var_pd(t[h + 1], hi, t[h + 3]);
      }
      double* const out = reinterpret_cast<double*>(panel + (k0 + v) * kVectorRows);  // pair k0 / 2
      auto store = [out](std::int64_t i, __m512d value) __attribute__((target("avx512f"))) {
        _mm512_storeu_pd(out + i * kVectorRows, value);  // pair k0 / 2 + i: 2 * 16 floats further
      };
      store(0, _mm512_shuffle_f64x2(a[0], a[4], 0x44));
      store(4, _mm512_shuffle_f64x2(a[0], a[4], 0xEE));
      store(2, _mm512_shuffle_f64x2(a[1], a[5], 0x44));
      store(6, _mm512_shuffle_f64x2(a[1], a[5], 0xEE));
      store(1, _mm512_shuffle_f64x2(a[2], a[6], 0x44));
      store(5, _mm512_shuffle_f64x2(a[2], a[6], 0xEE));
      store(3, _mm512_shuffle_f64x2(a[3], a[7], 0x44));
      store(7, _mm512_shuffle_f64x2(a[3], a[7], 0xEE));
    }
    for (std::int64_t k = k_full; k < in + (in & 1); ++k) {  // the last k (and a zero pad)
      for (int r = 0; r < 8; ++r) {
        panel[(k / 2 * 2 + v) * kVectorRows + 2 * r + (k & 1)] =
            r < valid && k < in ? x[(8 * v + r) * in + k] : 0.0f;
      }
    }
  }
}

// y[r, c] = stage[c * width + r] for r < rows, c < 16 * chunks (y's row stride `out`): 16 x 16
// blocks transposed in registers, one vector store per row of y. Row by row with scalar
// stores instead, every element went to one of `rows` lines whose addresses differ by a
// multiple of 4 KiB for the model widths (the same L1 set): 5% of a 77-token text's time.
__attribute__((target("avx512f"))) void store_transposed(const float* stage, std::int64_t width,
                                                         std::int64_t rows, std::int64_t chunks,
                                                         float* y, std::int64_t out) {
  // A row block's lines one after another.
  for (std::int64_t r0 = 0; r0 < rows; r0 += kVectorRows) {
    for (std::int64_t q = 0; q < chunks; ++q) {
      __m512 a[16], b[16];
      for (int i = 0; i < 16; ++i) a[i] = _mm512_loadu_ps(stage + (q * 16 + i) * width + r0);
      transpose16(a, b);
      const int n = static_cast<int>(std::min<std::int64_t>(kVectorRows, rows - r0));
      for (int i = 0; i < n; ++i) _mm512_storeu_ps(y + (r0 + i) * out + q * 16, b[i]);
    }
  }
}

#else

void column_block_v(int, const float*, const float*, std::int64_t, const float*, float*) {
  MMEMBED_ASSERT(false);
}

void store_transposed(const float*, std::int64_t, std::int64_t, std::int64_t, float*,
                      std::int64_t) {
  MMEMBED_ASSERT(false);
}

void transpose_panel(const float*, std::int64_t, std::int64_t, std::int64_t, float*) {
  MMEMBED_ASSERT(false);
}

void pair_panel(const float*, std::int64_t, std::int64_t, float*) { MMEMBED_ASSERT(false); }

#endif

}  // namespace

bool small_rows_supported() {
#if MMEMBED_SMALL_ROWS_X86
  // MMEMBED_SHORT_GEMM=0 sends short x to the GEMM backend too (for side-by-side measurements).
  static const bool ok = __builtin_cpu_supports("avx512f") &&
                         !(std::getenv("MMEMBED_SHORT_GEMM") != nullptr &&
                           std::string_view(std::getenv("MMEMBED_SHORT_GEMM")) == "0");
  return ok;
#else
  return false;
#endif
}

void small_rows_linear(const float* x, const float* w, const float* bias, float* y,
                       std::int64_t rows, std::int64_t in, std::int64_t out, Epilogue epilogue) {
  MMEMBED_ASSERT(rows >= 1 && rows <= kSmallRowsMax && in >= 1 && out >= 1);
  MMEMBED_ASSERT(small_rows_supported());

  // x transposed into one panel of `vectors` x 16 rows (zero-padded), shared by the threads.
  const int vectors = static_cast<int>((rows + kVectorRows - 1) / kVectorRows);
  const std::int64_t width = kVectorRows * vectors;
  thread_local std::vector<float> panel_buffer;  // this (the calling) thread's
  panel_buffer.resize(static_cast<std::size_t>((in + 1) * width));
  float* const panel = panel_buffer.data();  // the pointer, not the thread_local, goes to tasks
  if (vectors == 1) {
    pair_panel(x, in, rows, panel);  // the pair kernel's layout (column_block_pairs)
  } else {
    transpose_panel(x, in, rows, width, panel);
  }

  // Column blocks go in groups spanning a multiple of 16 columns (16 / gcd(kCols, 16) blocks:
  // 2 of 8, 8 of 6, 16 of 5), computed into a staging buffer [columns, width] and written to y
  // transposed 16 x 16 (store_transposed); a group is one task when the threads share the work.
  const int kCols = cols_for(vectors);
  const std::int64_t col_blocks = (out + kCols - 1) / kCols;
  const std::int64_t group = kCols == 12 ? 4 : kCols == 8 ? 2 : kCols == 6 ? 8 : 16;
  MMEMBED_ASSERT(group * kCols * width <= kSmallRowsMax * kSmallRowsMax);  // fits the stage
  auto run_blocks = [&](std::int64_t c_begin, std::int64_t c_end) {
    alignas(64) float stage[kSmallRowsMax * kSmallRowsMax];  // largest group: 80 columns x 80
    std::vector<float> tail_w;  // the last, partial block's weight rows, zero-padded to kCols
    float tail_bias[kMaxCols] = {};
    for (std::int64_t g = c_begin; g < c_end; g += group) {
      const std::int64_t g_end = std::min(c_end, g + group);
      for (std::int64_t c = g; c < g_end; ++c) {
        const std::int64_t n0 = c * kCols;
        const std::int64_t nb = std::min<std::int64_t>(kCols, out - n0);
        const float* wb = w + n0 * in;
        const float* bb = bias != nullptr ? bias + n0 : nullptr;
        if (nb < kCols) {
          tail_w.assign(static_cast<std::size_t>(kCols * in), 0.0f);
          std::copy(wb, wb + nb * in, tail_w.begin());
          wb = tail_w.data();
          if (bias != nullptr) {
            std::copy(bb, bb + nb, tail_bias);
            bb = tail_bias;
          }
        }
        column_block_v(vectors, panel, wb, in, bb, stage + (c - g) * kCols * width);
      }
      const std::int64_t n0 = g * kCols;
      const std::int64_t columns = std::min<std::int64_t>(out, g_end * kCols) - n0;
      apply_epilogue(epilogue, stage, columns * width);
      const std::int64_t chunks = columns / kVectorRows;
      store_transposed(stage, width, rows, chunks, y + n0, out);
      for (std::int64_t r = 0; r < rows; ++r) {  // the last columns (fewer than 16)
        float* yr = y + r * out + n0;
        for (std::int64_t j = chunks * kVectorRows; j < columns; ++j) yr[j] = stage[j * width + r];
      }
    }
  };

  const std::int64_t tasks = (col_blocks + group - 1) / group;
  if (num_threads() <= 1 || in_parallel_task() || tasks < 2) {
    run_blocks(0, col_blocks);
    return;
  }
  parallel_tasks(tasks, [&](std::int64_t t) {
    run_blocks(t * group, std::min(col_blocks, (t + 1) * group));
  });
}

}  // namespace mmembed::kernels::detail
