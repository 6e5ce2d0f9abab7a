// Internal to the index layer: one segment's approximate index for one vector kind, over FAISS
// (Debian's libfaiss). It only proposes candidates; the index scores them exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>

#include "mmembed/index.h"

namespace faiss {
struct Index;
}

namespace mmembed::index {

class AnnIndex {
 public:
  // Builds `kind` (kHnsw or kIvfPq) over x [n, d]; `inner_product` selects FAISS's inner-product
  // metric (cosine on unit vectors, dot), else L2.
  static std::unique_ptr<AnnIndex> build(AnnKind kind, const AnnOptions& options, const float* x,
                                         std::int64_t n, std::int64_t d, bool inner_product);
  // Reads a file written by write(); FormatError when it is not the expected kind and shape.
  static std::unique_ptr<AnnIndex> read(const std::string& path, AnnKind kind, std::int64_t n,
                                        std::int64_t d, const AnnOptions& options);
  ~AnnIndex();
  // Writes the index to `path` and flushes it to the disk (IoError on failure).
  void write(const std::string& path) const;
  AnnKind kind() const { return kind_; }
  // Up to kc candidate rows per query into labels [nq, kc] (-1 where fewer were found); rows
  // for which keep(row) is false are skipped during the search (nullptr: all rows).
  void search(const float* queries, std::int64_t nq, std::int64_t kc,
              const std::function<bool(std::int64_t)>* keep, const AnnOptions& options,
              std::int64_t* labels) const;

 private:
  AnnIndex(AnnKind kind, std::unique_ptr<faiss::Index> index);
  AnnKind kind_;
  std::unique_ptr<faiss::Index> index_;
  // Debian's FAISS 1.7.3 reads HNSW's efSearch from the index, not from the search parameters:
  // searches with the saved value share the index; one with another value holds it alone while
  // it sets and restores the field.
  mutable std::shared_mutex ef_mutex_;
  int default_ef_ = 0;
};

// The ANN kind a segment of `rows` rows gets under `options` (kFlat: none).
AnnKind resolve_ann_kind(const AnnOptions& options, std::int64_t rows);
// IVF lists for `rows` rows (options.ivf_nlist, or 4 sqrt(rows), at most rows / 39).
std::int64_t ivf_lists(const AnnOptions& options, std::int64_t rows);

}  // namespace mmembed::index
