#include "kernels/gemm_small.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "kernels/elementwise.h"
#include "kernels/parallel.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MMEMBED_SMALL_ROWS_X86 1
#endif

namespace mmembed::kernels::detail {
namespace {

constexpr int kCols = 8;                 // output columns (weight rows) per block
constexpr int kLanes = 16;               // rows of x per vector
constexpr int kPrefetchLines = 8;        // how far ahead each weight row is prefetched
constexpr std::int64_t kBlocksPerTask = 8;

// x[0 .. n, :] transposed into panel[k * width + r], zero for r >= n (width = 16 * V).
void transpose_panel(const float* x, std::int64_t in, std::int64_t n, std::int64_t width,
                     float* panel) {
  std::fill(panel, panel + in * width, 0.0f);
  for (std::int64_t r = 0; r < n; ++r) {
    const float* row = x + r * in;
    for (std::int64_t k = 0; k < in; ++k) panel[k * width + r] = row[k];
  }
}

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
template <int V>
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
  constexpr std::int64_t kAhead = kLanes * kPrefetchLines;
  for (std::int64_t k0 = 0; k0 < in; k0 += kLanes) {
    const float* ahead = k0 + kAhead < in ? w + k0 + kAhead : w + kCols * in + (k0 + kAhead - in);
    for (int j = 0; j < kCols; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + j * in), _MM_HINT_T0);
    }
    const std::int64_t k1 = std::min<std::int64_t>(in, k0 + kLanes);
    for (std::int64_t k = k0; k < k1; ++k) {
      __m512 xv[V];
      for (int v = 0; v < V; ++v) xv[v] = _mm512_loadu_ps(panel + k * (kLanes * V) + kLanes * v);
      for (int j = 0; j < kCols; ++j) {
        const __m512 wk = _mm512_set1_ps(w[j * in + k]);
        for (int v = 0; v < V; ++v) acc[j][v] = _mm512_fmadd_ps(wk, xv[v], acc[j][v]);
      }
    }
  }
  for (int j = 0; j < kCols; ++j) {
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(tile + j * (kLanes * V) + kLanes * v, acc[j][v]);
  }
}

void column_block_v(int vectors, const float* panel, const float* w, std::int64_t in,
                    const float* bias, float* tile) {
  switch (vectors) {
    case 1: column_block<1>(panel, w, in, bias, tile); return;
    case 2: column_block<2>(panel, w, in, bias, tile); return;
    case 3: column_block<3>(panel, w, in, bias, tile); return;
    case 4: column_block<4>(panel, w, in, bias, tile); return;
  }
  MMEMBED_ASSERT(false);
}

#else

void column_block_v(int, const float*, const float*, std::int64_t, const float*, float*) {
  MMEMBED_ASSERT(false);
}

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
  const int vectors = static_cast<int>((rows + kLanes - 1) / kLanes);
  const std::int64_t width = kLanes * vectors;
  thread_local std::vector<float> panel_buffer;  // this (the calling) thread's
  panel_buffer.resize(static_cast<std::size_t>(in * width));
  float* const panel = panel_buffer.data();  // the pointer, not the thread_local, goes to tasks
  transpose_panel(x, in, rows, width, panel);

  const std::int64_t col_blocks = (out + kCols - 1) / kCols;
  auto run_blocks = [&](std::int64_t c_begin, std::int64_t c_end) {
    alignas(64) float tile[kCols * kSmallRowsMax];
    std::vector<float> tail_w;  // the last, partial block's weight rows, zero-padded to kCols
    float tail_bias[kCols] = {};
    for (std::int64_t c = c_begin; c < c_end; ++c) {
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
      column_block_v(vectors, panel, wb, in, bb, tile);
      apply_epilogue(epilogue, tile, kCols * width);
      for (std::int64_t r = 0; r < rows; ++r) {
        float* yr = y + r * out + n0;
        for (std::int64_t j = 0; j < nb; ++j) yr[j] = tile[j * width + r];
      }
    }
  };

  const std::int64_t tasks = (col_blocks + kBlocksPerTask - 1) / kBlocksPerTask;
  if (num_threads() <= 1 || in_parallel_task() || tasks < 2) {
    run_blocks(0, col_blocks);
    return;
  }
  parallel_tasks(tasks, [&](std::int64_t t) {
    run_blocks(t * kBlocksPerTask, std::min(col_blocks, (t + 1) * kBlocksPerTask));
  });
}

}  // namespace mmembed::kernels::detail
