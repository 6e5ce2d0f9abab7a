#include "reduce/lapack.h"

#include <algorithm>
#include <climits>
#include <vector>

#include "core/check.h"

extern "C" {
// Fortran LAPACK/BLAS as exported by OpenBLAS (32-bit integers on Debian's build).
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
             double* u, const int* ldu, double* vt, const int* ldvt, double* work,
             const int* lwork, int* iwork, int* info);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work,
             const int* lwork, int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda,
             const double* tau, double* work, const int* lwork, int* info);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
}

namespace mmembed::reduce::lapack {
namespace {
int to_int(std::int64_t v, const char* what) {
  MMEMBED_CHECK(v >= 0 && v <= INT_MAX, InvalidArgument, what, " ", v,
                " exceeds LAPACK's 32-bit index range");
  return static_cast<int>(v);
}
}  // namespace

void svd(std::int64_t m64, std::int64_t n64, double* a, double* s, double* u, double* vt) {
  const int m = to_int(m64, "rows"), n = to_int(n64, "columns");
  to_int(m64 * n64, "matrix size");
  const int r = std::min(m, n), lda = std::max(1, m), ldu = std::max(1, m), ldvt = std::max(1, r);
  std::vector<int> iwork(8 * static_cast<std::size_t>(std::max(r, 1)));
  int info = 0, lwork = -1;
  double query = 0;
  dgesdd_("S", &m, &n, a, &lda, s, u, &ldu, vt, &ldvt, &query, &lwork, iwork.data(), &info);
  MMEMBED_CHECK(info == 0, Error, "LAPACK dgesdd workspace query failed (info ", info, ")");
  lwork = static_cast<int>(query) + 1;
  std::vector<double> work(lwork);
  dgesdd_("S", &m, &n, a, &lda, s, u, &ldu, vt, &ldvt, work.data(), &lwork, iwork.data(), &info);
  MMEMBED_CHECK(info == 0, Error, "LAPACK dgesdd failed (info ", info,
                info > 0 ? ": the SVD did not converge)" : ")");
}

void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
          double alpha, const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
          double beta, double* c, std::int64_t ldc) {
  const int M = to_int(m, "rows"), N = to_int(n, "columns"), K = to_int(k, "inner size");
  const int LDA = std::max(1, to_int(lda, "lda")), LDB = std::max(1, to_int(ldb, "ldb")),
            LDC = std::max(1, to_int(ldc, "ldc"));
  if (M == 0 || N == 0) return;
  dgemm_(trans_a ? "T" : "N", trans_b ? "T" : "N", &M, &N, &K, &alpha, a, &LDA, b, &LDB, &beta, c,
         &LDC);
}

void orthonormalize(std::int64_t m64, std::int64_t n64, double* a) {
  const int m = to_int(m64, "rows"), n = to_int(n64, "columns");
  MMEMBED_ASSERT(m >= n);
  if (n == 0) return;
  const int lda = std::max(1, m);
  std::vector<double> tau(n);
  int info = 0, lwork = -1;
  double query = 0;
  dgeqrf_(&m, &n, a, &lda, tau.data(), &query, &lwork, &info);
  lwork = std::max(static_cast<int>(query), n) + 1;
  std::vector<double> work(lwork);
  dgeqrf_(&m, &n, a, &lda, tau.data(), work.data(), &lwork, &info);
  MMEMBED_CHECK(info == 0, Error, "LAPACK dgeqrf failed (info ", info, ")");
  lwork = -1;
  dorgqr_(&m, &n, &n, a, &lda, tau.data(), &query, &lwork, &info);
  lwork = std::max(static_cast<int>(query), n) + 1;
  work.resize(lwork);
  dorgqr_(&m, &n, &n, a, &lda, tau.data(), work.data(), &lwork, &info);
  MMEMBED_CHECK(info == 0, Error, "LAPACK dorgqr failed (info ", info, ")");
}

SingleThreaded::SingleThreaded() : previous_(openblas_get_num_threads()) {
  openblas_set_num_threads(1);
}
SingleThreaded::~SingleThreaded() { openblas_set_num_threads(std::max(1, previous_)); }

}  // namespace mmembed::reduce::lapack
