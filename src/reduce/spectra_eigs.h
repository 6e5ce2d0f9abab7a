// Internal to reduce: the largest eigenpairs of a symmetric operator by Spectra (Debian's
// libspectra-dev, header-only, on Eigen), the implicitly restarted Lanczos method that ARPACK's
// dsaupd runs. Unlike ARPACK, which keeps its iteration state in Fortran SAVE variables, it is
// reentrant: UMAP's spectral layout solves its graph's components side by side with it.
#pragma once

#include <cstdint>
#include <functional>

namespace mmembed::reduce {

// The `count` largest (algebraic) eigenpairs of the symmetric operator y = op(x) of size n, with
// `ncv` Lanczos vectors (count < ncv <= n), tolerance `tol`, at most `max_iter` restarts, from
// `start` [n] or the all-ones vector when null (as umap-learn's eigsh(v0=ones)). values [count]
// ascending, vectors [n, count] (ld n). False when it converges on fewer than `count` pairs.
// The arithmetic is Eigen's, serial: the same bits on any thread count.
bool spectra_largest(std::int64_t n, std::int64_t count, std::int64_t ncv, double tol, int max_iter,
                     const std::function<void(const double* x, double* y)>& op, double* values,
                     double* vectors, const double* start = nullptr);

}  // namespace mmembed::reduce
