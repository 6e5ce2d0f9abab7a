// Internal to reduce: the few double-precision LAPACK/BLAS routines PCA needs, from Debian's
// OpenBLAS (which carries LAPACK). All matrices here are column-major, as LAPACK's.
// This file and lapack.cc are the only places that declare LAPACK symbols.
#pragma once

#include <cstdint>
#include <functional>

namespace mmembed::reduce::lapack {

// Thin SVD a = u diag(s) vt of the m x n matrix a (overwritten), r = min(m, n):
// s [r] descending, u [m, r] (ld m), vt [r, n] (ld r). Divide and conquer (dgesdd), as
// scipy.linalg.svd's default driver. Throws Error when LAPACK reports failure.
void svd(std::int64_t m, std::int64_t n, double* a, double* s, double* u, double* vt);

// c = alpha op(a) op(b) + beta c (dgemm).
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
          const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
          double* c, std::int64_t ldc);

// Replaces the m x n matrix a (m >= n) by the Q of its thin QR factorization (dgeqrf + dorgqr).
void orthonormalize(std::int64_t m, std::int64_t n, double* a);

// The `count` largest eigenpairs of the symmetric n x n matrix a (column-major, lower triangle
// read, overwritten), by dsyevr (MRRR): values [count] ascending, vectors [n, count] (ld n).
void symmetric_eigen_largest(std::int64_t n, double* a, std::int64_t count, double* values,
                             double* vectors);

// ARPACK (Debian's libarpack2, dsaupd/dseupd in regular mode): the `count` largest (algebraic)
// eigenpairs of the symmetric operator y = op(x) of size n, with `ncv` Lanczos vectors
// (count < ncv <= n), tolerance `tol` (<= 0: machine precision), at most `max_iter` restarts,
// starting from `start` [n], or the all-ones vector when null (as umap-learn's eigsh(v0=ones)).
// values [count] ascending, vectors [n, count] (ld n). Returns false when ARPACK reports an error
// or converges on fewer than `count` pairs.
bool lanczos_largest(std::int64_t n, std::int64_t count, std::int64_t ncv, double tol,
                     int max_iter, const std::function<void(const double* x, double* y)>& op,
                     double* values, double* vectors, const double* start = nullptr);

// Runs OpenBLAS on one thread while alive, then restores its previous count. OpenBLAS's
// multi-threaded dgesdd/dgemm differ in the last bits between thread counts (measured), so PCA
// runs its LAPACK calls single-threaded: the same bits on any --threads.
class SingleThreaded {
 public:
  SingleThreaded();
  ~SingleThreaded();
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;

 private:
  int previous_;
};

}  // namespace mmembed::reduce::lapack
