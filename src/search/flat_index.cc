#include "search/flat_index.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "kernels/parallel.h"
#include "search/top_k.h"

namespace mmembed::search {

namespace {
// Fixed block sizes: the GEMM shapes, and thus the bits, do not depend on the thread count.
constexpr std::int64_t kQueryBlock = 256;
constexpr std::int64_t kDataBlock = 4096;
}  // namespace

FlatIndex::FlatIndex(std::int64_t dim, const kernels::MetricSpec& metric)
    : dim_(dim), metric_(metric) {
  MMEMBED_CHECK(dim >= 1, InvalidArgument, "FlatIndex: dimension must be >= 1 (got ", dim, ")");
  kernels::validate(metric);
}

void FlatIndex::add(const float* x, std::int64_t n) {
  MMEMBED_CHECK(n >= 0, InvalidArgument, "FlatIndex::add: negative count ", n);
  check_rows(x, n, dim_, metric_, "FlatIndex::add", size_);
  data_.insert(data_.end(), x, x + n * dim_);
  size_ += n;
}

void FlatIndex::search(const float* queries, std::int64_t nq, std::int64_t k,
                       std::int64_t* labels, float* values) const {
  MMEMBED_CHECK(nq >= 0 && k >= 0, InvalidArgument, "FlatIndex::search: nq ", nq, " and k ", k,
                " must be >= 0");
  check_rows(queries, nq, dim_, metric_, "FlatIndex::search: query");
  search_impl(queries, nq, k, labels, values, -1);
}

KnnGraph FlatIndex::graph(std::int64_t k) const {
  MMEMBED_CHECK(k >= 1 && k < size_, InvalidArgument, "kNN graph: need 1 <= k < number of points (k ",
                k, ", ", size_, " points)");
  KnnGraph g = KnnGraph::sized(size_, k, metric_);
  search_impl(data_.data(), size_, k, g.indices.data(), g.values.data(), 0);
  return g;
}

void FlatIndex::search_impl(const float* queries, std::int64_t nq, std::int64_t k,
                            std::int64_t* labels, float* values, std::int64_t exclude_from) const {
  if (nq == 0 || k == 0) return;
  const kernels::Metric m = metric_.metric;
  const std::int64_t bq_max = std::min(nq, kQueryBlock);
  const std::int64_t bd_max = std::min(std::max<std::int64_t>(size_, 1), kDataBlock);
  std::vector<float> scratch(bq_max * bd_max);
  std::vector<TopK> heaps(bq_max, TopK(k));
  for (std::int64_t q0 = 0; q0 < nq; q0 += kQueryBlock) {
    const std::int64_t bq = std::min(kQueryBlock, nq - q0);
    for (std::int64_t i = 0; i < bq; ++i) heaps[i].clear();
    for (std::int64_t j0 = 0; j0 < size_; j0 += kDataBlock) {
      const std::int64_t bd = std::min(kDataBlock, size_ - j0);
      kernels::pairwise(metric_, queries + q0 * dim_, bq, data_.data() + j0 * dim_, bd, dim_,
                        scratch.data(), bd);
      check_values(scratch.data(), bq, bd, bd, metric_,
                   exclude_from >= 0 ? "kNN graph: point" : "search: query", q0,
                   exclude_from >= 0 ? "point" : "indexed", j0, exclude_from >= 0);
      kernels::parallel_for(bq, std::max<std::int64_t>(1, 16384 / bd), [&](std::int64_t a, std::int64_t b) {
        for (std::int64_t i = a; i < b; ++i) {
          const float* row = scratch.data() + i * bd;
          const std::int64_t self = exclude_from >= 0 ? exclude_from + q0 + i : -1;
          TopK& heap = heaps[i];
          for (std::int64_t j = 0; j < bd; ++j) {
            if (j0 + j == self) continue;
            heap.push(static_cast<float>(kernels::closeness_key(m, row[j])), j0 + j);
          }
        }
      });
    }
    kernels::parallel_for(bq, 64, [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t i = a; i < b; ++i) {
        heaps[i].write_sorted(m, labels + (q0 + i) * k, values + (q0 + i) * k);
      }
    });
  }
}

}  // namespace mmembed::search
