// Internal to reduce: the few double-precision LAPACK/BLAS routines PCA needs, from Debian's
// OpenBLAS (which carries LAPACK). All matrices here are column-major, as LAPACK's.
// This file and lapack.cc are the only places that declare LAPACK symbols.
#pragma once

#include <cstdint>

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
