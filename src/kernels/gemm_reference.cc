#include "core/check.h"
#include "kernels/gemm.h"

namespace mmembed::kernels::ref {

void sgemm(Trans trans_a, Trans trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
           float beta, float* C, std::int64_t ldc) {
  const bool ta = trans_a == Trans::Yes, tb = trans_b == Trans::Yes;
  MMEMBED_ASSERT(M >= 0 && N >= 0 && K >= 0 && ldc >= N);
  for (std::int64_t i = 0; i < M; ++i) {
    for (std::int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (std::int64_t p = 0; p < K; ++p) {
        double a = ta ? A[p * lda + i] : A[i * lda + p];
        double b = tb ? B[j * ldb + p] : B[p * ldb + j];
        acc += a * b;
      }
      double c = beta == 0.0f ? 0.0 : static_cast<double>(beta) * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(alpha * acc + c);
    }
  }
}

void linear(const float* x, const float* w, const float* bias, float* y, std::int64_t rows,
            std::int64_t in, std::int64_t out) {
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = bias ? bias[o] : 0.0;
      for (std::int64_t i = 0; i < in; ++i) {
        acc += static_cast<double>(x[r * in + i]) * w[o * in + i];
      }
      y[r * out + o] = static_cast<float>(acc);
    }
  }
}

}  // namespace mmembed::kernels::ref
