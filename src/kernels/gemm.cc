// The seam: argument checks and degenerate cases here, the product in the selected backend.
#include "kernels/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "core/check.h"
#include "core/half.h"
#include "kernels/elementwise.h"
#include "kernels/gemm_backend.h"
#include "kernels/gemm_small.h"
#include "kernels/parallel.h"
#include "kernels/vectorize.h"
#include "mmembed/error.h"

namespace mmembed::kernels {

// The one place that maps MMEMBED_BLAS (a compile definition set by src/kernels/CMakeLists.txt)
// to a backend.
const GemmBackend& selected_gemm_backend() {
#if defined(MMEMBED_BLAS_OPENBLAS)
  return gemm_backend_openblas();
#elif defined(MMEMBED_BLAS_BLIS)
  return gemm_backend_blis();
#elif defined(MMEMBED_BLAS_DNNL)
  return gemm_backend_dnnl();
#else
#error "no GEMM backend selected: set MMEMBED_BLAS (src/kernels/CMakeLists.txt)"
#endif
}

const char* gemm_backend_name() {
  return selected_gemm_backend().name;
}

std::string gemm_backend_description() {
  num_threads();  // apply the default thread count first, so the description shows it
  return selected_gemm_backend().describe();
}

namespace {

// Below this many multiply-adds a product runs on one thread: sharing it costs more than it saves
// (one sgemm call rather than a round of tiles in linear(), no OpenMP team in sgemm()).
constexpr std::int64_t kMinThreadedWork = 1 << 20;

void scale_rows(float beta, float* C, std::int64_t M, std::int64_t N, std::int64_t ldc) {
  for (std::int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) {
      std::fill(c, c + N, 0.0f);
    } else {
      for (std::int64_t j = 0; j < N; ++j)
        c[j] *= beta;
    }
  }
}

}  // namespace

void sgemm(Trans trans_a, Trans trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
           float beta, float* C, std::int64_t ldc) {
  MMEMBED_ASSERT(M >= 0 && N >= 0 && K >= 0);
  MMEMBED_ASSERT(ldc >= N);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {  // BLAS would still read A and B; nothing to multiply
    scale_rows(beta, C, M, N, ldc);
    return;
  }
  const bool ta = trans_a == Trans::Yes, tb = trans_b == Trans::Yes;
  MMEMBED_ASSERT(lda >= (ta ? M : K));
  MMEMBED_ASSERT(ldb >= (tb ? K : N));
  MMEMBED_ASSERT(A != nullptr && B != nullptr && C != nullptr);
  static const int configured = num_threads();  // the backend gets the default thread count
  (void)configured;
  const GemmBackend& backend = selected_gemm_backend();
  // A product too small to share (e.g. a class token's 1-row layer) runs on the calling thread:
  // handing it to the backend's OpenMP team would leave that team spinning against the kernels'
  // own threads for the next milliseconds. Inside a task the call is serial already.
  const bool serial_here = M * N * K < kMinThreadedWork && backend.set_thread_serial != nullptr &&
                           num_threads() > 1 && !in_parallel_task();
  if (!serial_here) {
    backend.sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  struct SerialScope {
    const GemmBackend& b;
    explicit SerialScope(const GemmBackend& be) : b(be) { b.set_thread_serial(true); }
    ~SerialScope() { b.set_thread_serial(false); }
  } scope(backend);
  backend.sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

namespace {

// y[r0..r0+rows, :cols] (row stride ld) = act(y + bias), rows shared over the kernels' threads
// unless this is a task already; one pass.
void bias_activation(Epilogue epilogue, float* y, const float* bias, std::int64_t rows,
                     std::int64_t cols, std::int64_t ld) {
  auto run = [&](std::int64_t r0, std::int64_t r1) {
    if (epilogue == Epilogue::Gelu) {
      bias_gelu_rows(y + r0 * ld, bias, r1 - r0, cols, ld);
    } else {
      bias_quick_gelu_rows(y + r0 * ld, bias, r1 - r0, cols, ld);
    }
  };
  parallel_for(rows, row_grain(cols), run);
}

// The whole product in one sgemm call (on the backend's threads), then the epilogue.
void linear_whole(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
                  std::int64_t in, std::int64_t out, Epilogue epilogue) {
  if (epilogue != Epilogue::None) {
    // The bias in the activation's pass rather than a pass of its own before the product.
    sgemm(Trans::No, Trans::Yes, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    bias_activation(epilogue, y, bias, rows, out, out);
    return;
  }
  if (bias == nullptr) {
    sgemm(Trans::No, Trans::Yes, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
  } else {
    // Bias first, then accumulate the product onto it (beta = 1): one pass over y fewer than a
    // separate bias add, and no row kernel running right after the BLAS threads. The fill runs
    // on the calling thread: waking the pool while the GEMM library's OpenMP workers still spin
    // cost 5-10% at 2 threads for M = 3536 (docs/performance.md).
    for (std::int64_t r = 0; r < rows; ++r)
      std::copy(bias, bias + out, y + r * out);
    sgemm(Trans::No, Trans::Yes, rows, out, in, 1.0f, x, in, w, in, 1.0f, y, out);
  }
}

// Tiles of y for the threaded path. With oneDNN, column blocks of 128 or more columns compute
// every element as the whole product does, narrower ones (64, or a lone remainder) do not.
// Up to 512 rows (an image or a batch of texts): column blocks only, two per thread (below).
// Taller x: column blocks of 256 (the last one takes the remainder, up to twice the block) and
// row blocks of at most 256 rows, plus as many more (each at least 32 rows) as make the tile
// count a multiple of the thread count, at least twice it, so that no thread ends up a tile
// behind; when the rows cannot be split enough, columns go down to blocks of 128.
struct Tiling {
  std::int64_t row_block, rows_tiles, col_block, col_tiles;
  std::int64_t count() const { return rows_tiles * col_tiles; }
};

std::int64_t tiles_of(std::int64_t n, std::int64_t block) {
  return std::max<std::int64_t>(1, n / block);
}

Tiling tiling(std::int64_t rows, std::int64_t out, int threads) {
  constexpr std::int64_t kMinRows = 32;
  constexpr std::int64_t kMinColumns = 128;  // narrower blocks would change the bits
  constexpr std::int64_t kColumnTilesMaxRows = 512;
  Tiling t;
  if (rows <= kColumnTilesMaxRows) {
    // Column blocks only, 2 per thread (more when that would make them wider than 1024): each
    // tile packs x once and its own columns of W, so W is packed once in all (a row split packs
    // it once per row block) and x once per tile; a round of many small tiles packed x again
    // for every 256 columns. Blocks are multiples of 16 wide, the last one takes the rest.
    std::int64_t n = std::max<std::int64_t>(2 * threads, (out + 1023) / 1024);
    n = (n + threads - 1) / threads * threads;
    if (out / n < kMinColumns && out / threads >= kMinColumns) n = threads;
    if (out / n >= kMinColumns) {
      t.rows_tiles = 1;
      t.row_block = rows;
      t.col_tiles = n;
      t.col_block = out / n / 16 * 16;
      return t;
    }
  }
  t.col_block = 256;
  t.col_tiles = tiles_of(out, t.col_block);
  const std::int64_t min_row_tiles = rows > 512 ? (rows + 255) / 256 : 1;
  const std::int64_t max_row_tiles = std::max<std::int64_t>(min_row_tiles, rows / kMinRows);
  auto balanced = [&](std::int64_t r) {
    const std::int64_t n = r * t.col_tiles;
    return n % threads == 0 && n >= 2 * threads;
  };
  std::int64_t r = min_row_tiles;
  while (r < max_row_tiles && r < min_row_tiles + 2 * threads && !balanced(r))
    ++r;
  if (!balanced(r)) {
    r = min_row_tiles;
    if (r * t.col_tiles < 3 * threads) {
      t.col_block = 128;
      t.col_tiles = tiles_of(out, t.col_block);
    }
  }
  t.rows_tiles = r;
  t.row_block = rows / r;
  return t;
}

// [begin, end) of tile i of `tiles` blocks of `block` over n (the last one takes the rest).
void tile_range(std::int64_t n, std::int64_t block, std::int64_t tiles, std::int64_t i,
                std::int64_t* begin, std::int64_t* end) {
  *begin = i * block;
  *end = i + 1 == tiles ? n : *begin + block;
}

using TileFn = std::function<void(std::int64_t, std::int64_t, std::int64_t, std::int64_t)>;

// Runs tile(r0, r1, c0, c1) over y [rows, out] in tiling()'s tiles, one kernel task each (the
// backend's calls then run on their task's thread alone).
void parallel_tiles(std::int64_t rows, std::int64_t out, int threads, const TileFn& tile) {
  const Tiling t = tiling(rows, out, threads);
  parallel_tasks(t.count(), [&](std::int64_t i) {
    std::int64_t r0, r1, c0, c1;
    tile_range(rows, t.row_block, t.rows_tiles, i / t.col_tiles, &r0, &r1);
    tile_range(out, t.col_block, t.col_tiles, i % t.col_tiles, &c0, &c1);
    tile(r0, r1, c0, c1);
  });
}

// One tile [r0, r1) x [c0, c1) of y = act(product + bias): without an activation the bias is
// written first and product(accumulate = true, Y) adds to it; with one, the product is written
// (accumulate = false), then the bias and the activation follow in one pass.
void bias_tile(const float* bias, Epilogue epilogue, float* y, std::int64_t out, std::int64_t r0,
               std::int64_t r1, std::int64_t c0, std::int64_t c1,
               const std::function<void(bool accumulate, float* Y)>& product) {
  float* Y = y + r0 * out + c0;
  const bool prefill = bias != nullptr && epilogue == Epilogue::None;
  if (prefill) {
    for (std::int64_t r = 0; r < r1 - r0; ++r)
      std::copy(bias + c0, bias + c1, Y + r * out);
  }
  product(prefill, Y);
  if (epilogue != Epilogue::None) {
    bias_activation(epilogue, Y, bias != nullptr ? bias + c0 : nullptr, r1 - r0, c1 - c0, out);
  }
}

}  // namespace

void linear(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
            std::int64_t in, std::int64_t out, Epilogue epilogue) {
  if (rows <= 0 || out <= 0) return;
  // Short x (one text, a caption): read W once in place instead of packing it (gemm_small.h);
  // above one panel (a batch of 8 sixteen-token texts), the short path on each half of x, one
  // after the other (each splits its column blocks over the threads). Fewer rows stay with the
  // backend, whose matrix-vector-like path streams W faster, and so does taller x.
  if (rows >= detail::kSmallRowsLinearMin && rows <= detail::kSmallRowsGrouped && in > 0 &&
      detail::small_rows_supported()) {
    const std::int64_t first = rows <= detail::kSmallRowsLinear ? rows : (rows + 1) / 2;
    detail::small_rows_linear(x, w, bias, y, first, in, out, epilogue);
    if (first < rows) {
      detail::small_rows_linear(x + first * in, w, bias, y + first * out, rows - first, in, out,
                                epilogue);
    }
    return;
  }
  const int threads = num_threads();
  if (threads <= 1 || in_parallel_task() || selected_gemm_backend().set_thread_serial == nullptr ||
      in == 0 || rows * out * in < kMinThreadedWork) {
    // Small, or inside a task (one part of a batch per thread, nn::batch_parts): one sgemm
    // call on this thread, which packs x and W once, rather than the tiles run one by one.
    linear_whole(x, w, bias, y, rows, in, out, epilogue);
    return;
  }
  parallel_tiles(
      rows, out, threads, [&](std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
        bias_tile(bias, epilogue, y, out, r0, r1, c0, c1, [&](bool accumulate, float* Y) {
          // Inside parallel_tasks, the sgemm runs on this thread alone (set_thread_serial).
          sgemm(Trans::No, Trans::Yes, r1 - r0, c1 - c0, in, 1.0f, x + r0 * in, in, w + c0 * in, in,
                accumulate ? 1.0f : 0.0f, Y, out);
        });
      });
}

void linear(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
            std::int64_t in, std::int64_t out) {
  linear(x, w, bias, y, rows, in, out, Epilogue::None);
}

// ---- bf16 ----

void to_bf16(const float* x, std::uint16_t* y, std::int64_t n) {
  f32_to_bf16_n(x, y, n);
}

namespace {
// Makes v hold at least n elements, growing only (the contents are overwritten by the caller).
template <typename T>
void grow(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

// Runs tile(r0, r1, c0, c1) over y [rows, out]: once on this thread when the product is small,
// single-threaded or already inside a task; else in parallel_tiles(), as linear() does.
void for_tiles(const GemmBackend& backend, std::int64_t rows, std::int64_t in, std::int64_t out,
               const TileFn& tile) {
  const int threads = num_threads();
  if (threads <= 1 || in_parallel_task() || backend.set_thread_serial == nullptr ||
      rows * out * in < kMinThreadedWork) {
    tile(0, rows, 0, out);
    return;
  }
  parallel_tiles(rows, out, threads, tile);
}
}  // namespace

bool int8_supported() {
  return selected_gemm_backend().gemm_s8 != nullptr;
}

MMEMBED_TARGET_CLONES
void quantize_rows_s8(const float* x, std::int64_t rows, std::int64_t cols, std::int8_t* q,
                      float* scale) {
  using detail::kLanes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    // max |x| over kLanes lanes (max is exact: the lanes change nothing but the speed).
    float lane[kLanes] = {};
    std::int64_t k = 0;
    for (; k + kLanes <= cols; k += kLanes) {
      for (int l = 0; l < kLanes; ++l)
        lane[l] = std::max(lane[l], std::fabs(xr[k + l]));
    }
    float amax = 0;
    for (; k < cols; ++k)
      amax = std::max(amax, std::fabs(xr[k]));
    for (int l = 0; l < kLanes; ++l)
      amax = std::max(amax, lane[l]);
    const float s = amax > 0 && std::isfinite(amax) ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    std::int8_t* qr = q + r * cols;
    for (k = 0; k < cols; ++k) {
      const float v = std::nearbyint(xr[k] * inv);
      qr[k] = static_cast<std::int8_t>(std::min(127.0f, std::max(-127.0f, v)));
    }
    scale[r] = s;
  }
}

namespace {
// y[c] = acc[c] * (sx * ws[c]) + bias[c] over one row.
MMEMBED_TARGET_CLONES
void rescale_row(const std::int32_t* acc, float sx, const float* ws, const float* bias, float* y,
                 std::int64_t n) {
  if (bias != nullptr) {
    for (std::int64_t c = 0; c < n; ++c)
      y[c] = static_cast<float>(acc[c]) * (sx * ws[c]) + bias[c];
  } else {
    for (std::int64_t c = 0; c < n; ++c)
      y[c] = static_cast<float>(acc[c]) * (sx * ws[c]);
  }
}
}  // namespace

void linear_int8(const float* x, const std::int8_t* w, const float* w_scales, const float* bias,
                 float* y, std::int64_t rows, std::int64_t in, std::int64_t out,
                 Epilogue epilogue) {
  if (rows <= 0 || out <= 0) return;
  const GemmBackend& backend = selected_gemm_backend();
  MMEMBED_CHECK(backend.gemm_s8 != nullptr, Unsupported, "int8 weights need the oneDNN GEMM ",
                "backend; this build uses ", backend.name, " (MMEMBED_BLAS)");
  static const int configured = num_threads();
  (void)configured;
  // The quantized input, in buffers this thread keeps: a fresh allocation of this size per
  // call costs its page faults and zeroing every time (measured: a sixth of a model's time).
  // (The lambdas below run on other threads: they use these pointers, not the thread_locals.)
  thread_local std::vector<std::int8_t> xq_buffer;
  thread_local std::vector<float> xs_buffer;
  grow(xq_buffer, static_cast<std::size_t>(rows * std::max<std::int64_t>(in, 1)));
  grow(xs_buffer, static_cast<std::size_t>(rows));
  std::int8_t* const xq = xq_buffer.data();
  float* const xs = xs_buffer.data();
  parallel_for(rows, row_grain(in), [&](std::int64_t r0, std::int64_t r1) {
    quantize_rows_s8(x + r0 * in, r1 - r0, in, xq + r0 * in, xs + r0);
  });
  auto tile = [&](std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
    const std::int64_t m = r1 - r0, n = c1 - c0;
    thread_local std::vector<std::int32_t> acc;
    grow(acc, static_cast<std::size_t>(m * n));
    if (in > 0) {
      backend.gemm_s8(m, n, in, xq + r0 * in, in, w + c0 * in, in, acc.data(), n);  // beta 0
    } else {
      std::fill_n(acc.begin(), m * n, 0);  // an empty sum
    }
    for (std::int64_t r = 0; r < m; ++r) {
      rescale_row(acc.data() + r * n, xs[r0 + r], w_scales + c0,
                  bias != nullptr ? bias + c0 : nullptr, y + (r0 + r) * out + c0, n);
    }
    if (epilogue != Epilogue::None) {
      bias_activation(epilogue, y + r0 * out + c0, nullptr, m, n, out);
    }
  };
  for_tiles(backend, rows, in, out, tile);
}

bool bf16_supported() {
  return selected_gemm_backend().gemm_bf16 != nullptr;
}

void linear_bf16(const float* x, const std::uint16_t* w, const float* bias, float* y,
                 std::int64_t rows, std::int64_t in, std::int64_t out, Epilogue epilogue) {
  if (rows <= 0 || out <= 0) return;
  const GemmBackend& backend = selected_gemm_backend();
  MMEMBED_CHECK(backend.gemm_bf16 != nullptr, Unsupported, "bf16 weights need the oneDNN GEMM ",
                "backend; this build uses ", backend.name, " (MMEMBED_BLAS)");
  static const int configured = num_threads();  // the backend gets the default thread count
  (void)configured;
  if (in == 0) {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < out; ++c)
        y[r * out + c] = bias != nullptr ? bias[c] : 0.0f;
    }
    if (epilogue != Epilogue::None) bias_activation(epilogue, y, nullptr, rows, out, out);
    return;
  }
  thread_local std::vector<std::uint16_t> xb_buffer;  // kept, as linear_int8's buffers
  grow(xb_buffer, static_cast<std::size_t>(rows * in));
  std::uint16_t* const xb = xb_buffer.data();
  parallel_for(rows, row_grain(in), [&](std::int64_t r0, std::int64_t r1) {
    to_bf16(x + r0 * in, xb + r0 * in, (r1 - r0) * in);
  });
  auto tile = [&](std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
    bias_tile(bias, epilogue, y, out, r0, r1, c0, c1, [&](bool accumulate, float* Y) {
      backend.gemm_bf16(r1 - r0, c1 - c0, in, xb + r0 * in, in, w + c0 * in, in, accumulate, Y,
                        out);
    });
  };
  for_tiles(backend, rows, in, out, tile);
}

}  // namespace mmembed::kernels
