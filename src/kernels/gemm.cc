// The seam: argument checks and degenerate cases here, the product in the selected backend.
#include "kernels/gemm.h"

#include <algorithm>

#include "core/check.h"
#include "kernels/gemm_backend.h"
#include "kernels/parallel.h"

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

const char* gemm_backend_name() { return selected_gemm_backend().name; }

std::string gemm_backend_description() {
  num_threads();  // apply the default thread count first, so the description shows it
  return selected_gemm_backend().describe();
}

namespace {

void scale_rows(float beta, float* C, std::int64_t M, std::int64_t N, std::int64_t ldc) {
  for (std::int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) {
      std::fill(c, c + N, 0.0f);
    } else {
      for (std::int64_t j = 0; j < N; ++j) c[j] *= beta;
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
  selected_gemm_backend().sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void linear(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
            std::int64_t in, std::int64_t out) {
  if (bias == nullptr) {
    sgemm(Trans::No, Trans::Yes, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    return;
  }
  // Bias first, then accumulate the product onto it (beta = 1): one pass over y fewer than a
  // separate bias add, and no row kernel running right after the BLAS threads. The fill runs on
  // the calling thread: waking the pool while the GEMM library's OpenMP workers still spin cost
  // 5-10% at 2 threads for M = 3536 (docs/performance.md); a memory-bound copy gains little
  // from a second core anyway.
  for (std::int64_t r = 0; r < rows; ++r) std::copy(bias, bias + out, y + r * out);
  sgemm(Trans::No, Trans::Yes, rows, out, in, 1.0f, x, in, w, in, 1.0f, y, out);
}

}  // namespace mmembed::kernels
