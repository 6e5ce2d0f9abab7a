#include "reduce/spectra_eigs.h"

#include <vector>

#include <Spectra/SymEigsSolver.h>

#include "core/check.h"

namespace mmembed::reduce {
namespace {

// Spectra's operator concept over a std::function.
class FunctionOp {
 public:
  using Scalar = double;
  FunctionOp(Eigen::Index n, const std::function<void(const double*, double*)>& f) : n_(n), f_(f) {}
  Eigen::Index rows() const { return n_; }
  Eigen::Index cols() const { return n_; }
  void perform_op(const double* x, double* y) const { f_(x, y); }

 private:
  Eigen::Index n_;
  const std::function<void(const double*, double*)>& f_;
};

}  // namespace

bool spectra_largest(std::int64_t n, std::int64_t count, std::int64_t ncv, double tol, int max_iter,
                     const std::function<void(const double* x, double* y)>& op, double* values,
                     double* vectors, const double* start) {
  MMEMBED_ASSERT(count >= 1 && count < ncv && ncv <= n);
  FunctionOp mat(n, op);
  Spectra::SymEigsSolver<FunctionOp> eigs(mat, count, ncv);
  std::vector<double> resid(static_cast<std::size_t>(n), 1.0);
  if (start != nullptr) resid.assign(start, start + n);
  eigs.init(resid.data());
  // Sorted smallest first, as ARPACK's dseupd hands them back.
  const Eigen::Index found = eigs.compute(Spectra::SortRule::LargestAlge, max_iter, tol,
                                          Spectra::SortRule::SmallestAlge);
  if (eigs.info() != Spectra::CompInfo::Successful || found < count) return false;
  const Eigen::VectorXd& vals = eigs.eigenvalues();
  const Eigen::MatrixXd vecs = eigs.eigenvectors();
  for (std::int64_t c = 0; c < count; ++c) {
    values[c] = vals[c];
    for (std::int64_t i = 0; i < n; ++i) vectors[c * n + i] = vecs(i, c);
  }
  return true;
}

}  // namespace mmembed::reduce
