// Exact nearest-neighbour search by brute force: every query against every stored point through
// kernels::pairwise, in fixed-size blocks, with a bounded heap per query. The oracle that the
// approximate indexes are measured against. See knn.h for the conventions.
#pragma once

#include <cstdint>
#include <vector>

#include "search/knn.h"

namespace mmembed::search {

class FlatIndex final : public Knn {
 public:
  FlatIndex(std::int64_t dim, const kernels::MetricSpec& metric);

  // Appends x [n, dim()] (copied). Validates the rows (check_rows).
  void add(const float* x, std::int64_t n);
  const float* data() const { return data_.data(); }

  std::int64_t size() const override { return size_; }
  std::int64_t dim() const override { return dim_; }
  const kernels::MetricSpec& metric() const override { return metric_; }
  void search(const float* queries, std::int64_t nq, std::int64_t k, std::int64_t* labels,
              float* values) const override;
  KnnGraph graph(std::int64_t k) const override;

 private:
  // exclude_from >= 0: query q is stored point exclude_from + q and is skipped.
  void search_impl(const float* queries, std::int64_t nq, std::int64_t k, std::int64_t* labels,
                   float* values, std::int64_t exclude_from) const;

  std::int64_t dim_;
  kernels::MetricSpec metric_;
  std::int64_t size_ = 0;
  std::vector<float> data_;
};

}  // namespace mmembed::search
