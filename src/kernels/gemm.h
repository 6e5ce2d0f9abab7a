// The GEMM seam: every matrix product in mmembed goes through sgemm() below.
//
//   // y[rows, out] = x[rows, in] * W^T + b, W stored [out, in] row-major as in PyTorch
//   kernels::linear(x, W, b, y, rows, in, out);
//   // C = 0.125 * A * B^T
//   kernels::sgemm(Trans::No, Trans::Yes, M, N, K, 0.125f, A, K, B, K, 0.0f, C, N);
//
// All matrices are row-major. The backend (OpenBLAS, BLIS or oneDNN) is chosen at configure time
// by MMEMBED_BLAS and measured in docs/performance.md; gemm_backend.h is the interface a new
// backend implements. Thread count: kernels::set_num_threads (parallel.h).
#pragma once

#include <cstdint>
#include <string>

namespace mmembed::kernels {

enum class Trans : bool { No = false, Yes = true };

// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major.
//   op(A) is [M,K]: A is [M,K] with lda >= K (Trans::No) or [K,M] with lda >= M (Trans::Yes);
//   op(B) is [K,N]: B is [K,N] with ldb >= N (Trans::No) or [N,K] with ldb >= K (Trans::Yes);
//   ldc >= N. When beta == 0, C is only written (NaN or garbage in C does not propagate).
//   M, N, K >= 0; K == 0 gives C = beta * C. A and B must not overlap C.
// Results may differ in the last bits between backends and, for some backends, thread counts.
// Thread-safe: may be called from several threads at once.
void sgemm(Trans trans_a, Trans trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
           float beta, float* C, std::int64_t ldc);

// y[rows, out] = x[rows, in] * w^T + bias: a PyTorch nn.Linear with w stored [out, in].
// bias may be null. y must not overlap x or w.
void linear(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
            std::int64_t in, std::int64_t out);

// What the epilogue form of linear() applies to y after the bias, element by element.
enum class Epilogue { None, Gelu, QuickGelu };

// y = act(x * w^T + bias): on the backend's path, the product without bias, then the bias and
// the activation in one pass (bias_gelu_rows, elementwise.h); the short path (8 to 160 rows)
// starts each sum from its bias, then applies the activation. Either way within rounding of
// linear() followed by the element-wise kernel of `epilogue`. With several threads and a
// backend that can run a call on one thread (GemmBackend::set_thread_serial, oneDNN), y is cut
// into fixed tiles
// (up to 512 rows: two column blocks per thread; taller: blocks of 256 columns and row blocks
// that balance the threads; gemm.cc) that the threads
// take dynamically; each tile's GEMM (on that thread alone), bias and activation run back to
// back while the tile is in cache. The tiles depend only on (rows, out, thread count), and a
// tile's values equal those of the whole product on one thread (checked for the model shapes by
// kernels_tests), so results do not depend on the thread count. linear() above is this with
// Epilogue::None.
void linear(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
            std::int64_t in, std::int64_t out, Epilogue epilogue);

// ---- bfloat16 weights (EmbedderOptions::dtype = bf16) ----
// bf16 is the upper half of a float32: 8 exponent bits, 7 mantissa bits. y[i] =
// f32_to_bf16(x[i]) (core/half.h: to nearest, ties to even; NaN stays NaN).
void to_bf16(const float* x, std::uint16_t* y, std::int64_t n);

// Whether this build's GEMM backend multiplies bf16 matrices (oneDNN: yes, on CPUs with AVX-512
// at least, natively with AVX-512 BF16 or AMX).
bool bf16_supported();

// linear() with the weight w [out, in] in bf16: x is rounded to bf16 row by row, the products
// are summed in float32, then the bias and the epilogue are applied in float32 as in linear().
// Tiled over the threads as linear() is. Unsupported when !bf16_supported().
void linear_bf16(const float* x, const std::uint16_t* w, const float* bias, float* y,
                 std::int64_t rows, std::int64_t in, std::int64_t out, Epilogue epilogue);

// ---- int8 weights (EmbedderOptions::dtype = int8) ----
// Symmetric per-row quantization: scale[r] = max_k |x[r,k]| / 127 (1 for an all-zero or
// non-finite row), q[r,k] = x[r,k] * (1 / scale[r]) rounded to nearest (ties to even), clamped
// to [-127, 127].
void quantize_rows_s8(const float* x, std::int64_t rows, std::int64_t cols, std::int8_t* q,
                      float* scale);

bool int8_supported();

// linear() with w [out, in] int8 and one scale per output row (w_scales [out]: w ~ w_q * scale):
// each x row is quantized on the fly (quantize_rows_s8), the int8 products summed exactly in
// int32, then y = sum * x_scale[r] * w_scale[c] + bias, and the epilogue, in float32. Tiled over
// the threads as linear() is. Unsupported when !int8_supported().
void linear_int8(const float* x, const std::int8_t* w, const float* w_scales, const float* bias,
                 float* y, std::int64_t rows, std::int64_t in, std::int64_t out,
                 Epilogue epilogue);

// Does the backend's one-time setup now: oneDNN generates its GEMM kernels on the process's first
// call (about 30 ms here, whatever the shape). A command can run this on a spare thread while it
// reads its inputs (std::jthread), so that its first product does not wait. Thread-safe.
void prepare_gemm();

// Name of the backend behind sgemm ("openblas", "blis", "dnnl").
const char* gemm_backend_name();
// One line about it: library version and the CPU kernels it selected at run time.
std::string gemm_backend_description();

namespace ref {
// Plain triple loop with double accumulation: the oracle for the tests, not for speed.
void sgemm(Trans trans_a, Trans trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
           float beta, float* C, std::int64_t ldc);
void linear(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
            std::int64_t in, std::int64_t out);
}  // namespace ref

}  // namespace mmembed::kernels
