// GEMM backend: OpenBLAS through its CBLAS interface.
//
// Debian's OpenBLAS 0.3.21 is built with DYNAMIC_ARCH and picks its kernels from the CPU model at
// load time. CPUs newer than the library (e.g. Emerald Rapids, family 6 model 207) fall back to
// the SSE3 "Prescott" kernels unless OPENBLAS_CORETYPE=SkylakeX is set in the environment before
// the process starts; describe() reports the core in use (see docs/performance.md).
#include <cblas.h>

#include <climits>
#include <string>

#include "core/check.h"
#include "kernels/gemm_backend.h"

namespace mmembed::kernels {
namespace {

int to_int(std::int64_t v) {
  MMEMBED_ASSERT(v >= 0 && v <= INT_MAX);  // OpenBLAS is built with 32-bit integers
  return static_cast<int>(v);
}

void openblas_sgemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                    const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                    float* C, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              to_int(M), to_int(N), to_int(K), alpha, A, to_int(lda), B, to_int(ldb), beta, C,
              to_int(ldc));
}

void openblas_set_threads(int n) { openblas_set_num_threads(n); }

std::string openblas_describe() {
  return str_cat(openblas_get_config(), " core=", openblas_get_corename(),
                 " threads=", openblas_get_num_threads());
}

}  // namespace

const GemmBackend& gemm_backend_openblas() {
  static const GemmBackend backend{"openblas", openblas_sgemm, openblas_set_threads,
                                   openblas_describe};
  return backend;
}

}  // namespace mmembed::kernels
