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
void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n, double* a,
             const int* lda, const double* vl, const double* vu, const int* il, const int* iu,
             const double* abstol, int* m, double* w, double* z, const int* ldz, int* isuppz,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info);
// ARPACK-NG's C bindings (arpack/arpack.h; 32-bit a_int in Debian's build).
void dsaupd_c(int* ido, const char* bmat, int n, const char* which, int nev, double tol,
              double* resid, int ncv, double* v, int ldv, int* iparam, int* ipntr, double* workd,
              double* workl, int lworkl, int* info);
void dseupd_c(int rvec, const char* howmny, const int* select, double* d, double* z, int ldz,
              double sigma, const char* bmat, int n, const char* which, int nev, double tol,
              double* resid, int ncv, double* v, int ldv, int* iparam, int* ipntr, double* workd,
              double* workl, int lworkl, int* info);
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

void symmetric_eigen_largest(std::int64_t n64, double* a, std::int64_t count, double* values,
                             double* vectors) {
  const int n = to_int(n64, "rows"), k = to_int(count, "eigenpairs");
  to_int(n64 * n64, "matrix size");
  MMEMBED_ASSERT(k >= 1 && k <= n);
  const int lda = std::max(1, n), il = n - k + 1, iu = n;
  const double vl = 0, vu = 0, abstol = 0;
  int m = 0, info = 0, lwork = -1, liwork = -1, iquery = 0;
  double query = 0;
  std::vector<int> isuppz(2 * static_cast<std::size_t>(n));
  std::vector<double> w(n);  // dsyevr writes up to n values
  dsyevr_("V", "I", "L", &n, a, &lda, &vl, &vu, &il, &iu, &abstol, &m, w.data(), vectors, &lda,
          isuppz.data(), &query, &lwork, &iquery, &liwork, &info);
  MMEMBED_CHECK(info == 0, Error, "LAPACK dsyevr workspace query failed (info ", info, ")");
  lwork = static_cast<int>(query) + 1;
  liwork = iquery + 1;
  std::vector<double> work(lwork);
  std::vector<int> iwork(liwork);
  dsyevr_("V", "I", "L", &n, a, &lda, &vl, &vu, &il, &iu, &abstol, &m, w.data(), vectors, &lda,
          isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  MMEMBED_CHECK(info == 0 && m == k, Error, "LAPACK dsyevr failed (info ", info, ", ", m, " of ",
                k, " eigenpairs)");
  std::copy(w.begin(), w.begin() + k, values);
}

bool lanczos_largest(std::int64_t n64, std::int64_t count, std::int64_t ncv64, double tol,
                     int max_iter, const std::function<void(const double* x, double* y)>& op,
                     double* values, double* vectors, const double* start) {
  const int n = to_int(n64, "rows"), nev = to_int(count, "eigenpairs"),
            ncv = to_int(ncv64, "Lanczos vectors");
  MMEMBED_ASSERT(nev >= 1 && nev < ncv && ncv <= n);
  to_int(n64 * ncv64, "Lanczos basis size");
  const int lworkl = ncv * (ncv + 8);
  std::vector<double> resid(n, 1.0), v(static_cast<std::size_t>(n) * ncv), workd(3 * static_cast<std::size_t>(n)),
      workl(lworkl);
  if (start != nullptr) std::copy(start, start + n, resid.begin());
  int iparam[11] = {}, ipntr[11] = {};
  iparam[0] = 1;         // exact shifts
  iparam[2] = max_iter;  // restarts
  iparam[6] = 1;         // mode 1: A x = lambda x
  int ido = 0, info = 1;  // info 1: resid holds the start vector
  for (;;) {
    dsaupd_c(&ido, "I", n, "LA", nev, tol, resid.data(), ncv, v.data(), n, iparam, ipntr,
             workd.data(), workl.data(), lworkl, &info);
    if (ido != 1 && ido != -1) break;
    op(workd.data() + ipntr[0] - 1, workd.data() + ipntr[1] - 1);
  }
  if (info != 0 || iparam[4] < nev) return false;
  std::vector<int> select(ncv, 1);
  std::vector<double> d(ncv);
  dseupd_c(1, "A", select.data(), d.data(), vectors, n, 0.0, "I", n, "LA", nev, tol, resid.data(),
           ncv, v.data(), n, iparam, ipntr, workd.data(), workl.data(), lworkl, &info);
  if (info != 0) return false;
  std::copy(d.begin(), d.begin() + nev, values);  // ascending
  return true;
}

SingleThreaded::SingleThreaded() : previous_(openblas_get_num_threads()) {
  openblas_set_num_threads(1);
}
SingleThreaded::~SingleThreaded() { openblas_set_num_threads(std::max(1, previous_)); }

}  // namespace mmembed::reduce::lapack
