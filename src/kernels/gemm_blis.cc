// GEMM backend: BLIS through its native typed API (bli_sgemm), not its CBLAS layer, so that it
// cannot be confused with OpenBLAS's cblas_sgemm when both are linked into one benchmark.
//
// Debian's BLIS 0.9.0 is built for the "amd64" configuration family (haswell, zen*, ...): it has
// no AVX-512 (skx) kernels, so on AVX-512 CPUs it runs its AVX2 haswell kernels.
#include <blis.h>

#include <string>

#include "core/check.h"
#include "kernels/gemm_backend.h"

namespace mmembed::kernels {
namespace {

void blis_sgemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                float* C, std::int64_t ldc) {
  // Row-major: row stride = leading dimension, column stride = 1. BLIS takes non-const pointers
  // but does not write A, B, alpha or beta.
  bli_sgemm(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
            static_cast<dim_t>(M), static_cast<dim_t>(N), static_cast<dim_t>(K), &alpha,
            const_cast<float*>(A), static_cast<inc_t>(lda), 1, const_cast<float*>(B),
            static_cast<inc_t>(ldb), 1, &beta, C, static_cast<inc_t>(ldc), 1);
}

void blis_set_threads(int n) { bli_thread_set_num_threads(static_cast<dim_t>(n)); }

std::string blis_describe() {
  return str_cat("BLIS ", bli_info_get_version_str(),
                 " arch=", bli_arch_string(bli_arch_query_id()),
                 " threads=", bli_thread_get_num_threads());
}

}  // namespace

const GemmBackend& gemm_backend_blis() {
  static const GemmBackend backend{"blis", blis_sgemm, blis_set_threads, blis_describe};
  return backend;
}

}  // namespace mmembed::kernels
