#include "index/ann.h"

#include <fcntl.h>
#include <unistd.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/check.h"
#include "kernels/distance.h"
#include "kernels/parallel.h"

// The OpenMP runtime's (FAISS runs on it), declared here so that no compiler's omp.h is needed.
extern "C" void omp_set_num_threads(int num_threads);

namespace mmembed::index {

namespace {

// FAISS runs on OpenMP threads: as many as mmembed's compute threads.
void set_faiss_threads() {
  omp_set_num_threads(std::max(1, kernels::num_threads()));
}

// HNSW's storage with mmembed's distance kernels: the graph walk computes one distance per
// visited node, and Debian's FAISS is built for the baseline x86-64 (no AVX2 code), so this is
// where its time goes. Written and read as a plain IndexFlat (the same bytes).
struct KernelDistance final : faiss::FlatCodesDistanceComputer {
  KernelDistance(const faiss::IndexFlat& storage, bool inner_product)
      : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size),
        d(storage.d),
        ip(inner_product) {}
  void set_query(const float* x) override { q = x; }
  float distance_to_code(const std::uint8_t* code) override {
    const float* v = reinterpret_cast<const float*>(code);
    return ip ? kernels::dot_f32(q, v, d) : kernels::sq_l2_f32(q, v, d);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    const float* a = reinterpret_cast<const float*>(codes + i * code_size);
    const float* b = reinterpret_cast<const float*>(codes + j * code_size);
    return ip ? kernels::dot_f32(a, b, d) : kernels::sq_l2_f32(a, b, d);
  }
  std::int64_t d;
  bool ip;
  const float* q = nullptr;
};

struct KernelFlat final : faiss::IndexFlat {
  KernelFlat(faiss::Index::idx_t dim, faiss::MetricType metric) : faiss::IndexFlat(dim, metric) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new KernelDistance(*this, metric_type == faiss::METRIC_INNER_PRODUCT);
  }
  // A few queries (IVF's coarse quantizer at search time): one pass of the kernels over the
  // stored rows. Many (k-means assignment, adding vectors): FAISS's BLAS path.
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override {
    if (n > 4 || params != nullptr || k > 1024) {
      faiss::IndexFlat::search(n, x, k, distances, labels, params);
      return;
    }
    const bool ip = metric_type == faiss::METRIC_INNER_PRODUCT;
    const float* rows = get_xb();
    std::vector<std::pair<float, idx_t>> best;  // (key, row), smaller key closer
    for (idx_t q = 0; q < n; ++q) {
      best.clear();
      for (idx_t r = 0; r < ntotal; ++r) {
        const float v = ip ? kernels::dot_f32(x + q * d, rows + r * d, d)
                           : kernels::sq_l2_f32(x + q * d, rows + r * d, d);
        const std::pair<float, idx_t> e{ip ? -v : v, r};
        if (static_cast<idx_t>(best.size()) < k) {
          best.push_back(e);
          std::push_heap(best.begin(), best.end());
        } else if (e < best.front()) {
          std::pop_heap(best.begin(), best.end());
          best.back() = e;
          std::push_heap(best.begin(), best.end());
        }
      }
      std::sort_heap(best.begin(), best.end());
      for (idx_t i = 0; i < k; ++i) {
        const bool have = i < static_cast<idx_t>(best.size());
        labels[q * k + i] = have ? best[i].second : -1;
        distances[q * k + i] = have ? (ip ? -best[i].first : best[i].first)
                                    : (ip ? -std::numeric_limits<float>::max()
                                          : std::numeric_limits<float>::max());
      }
    }
  }
};

// Gives an HNSW index the kernel storage, taking over the stored vectors of its plain one.
void use_kernel_storage(faiss::IndexHNSW& idx) {
  auto* old = dynamic_cast<faiss::IndexFlat*>(idx.storage);
  MMEMBED_ASSERT(old != nullptr);
  auto fresh = std::make_unique<KernelFlat>(old->d, old->metric_type);
  fresh->codes.swap(old->codes);
  fresh->ntotal = old->ntotal;
  if (idx.own_fields) delete idx.storage;
  idx.storage = fresh.release();
  idx.own_fields = true;
}

// Gives an IVF index the kernel quantizer (the same centroids).
void use_kernel_quantizer(faiss::IndexIVF& idx) {
  auto* old = dynamic_cast<faiss::IndexFlat*>(idx.quantizer);
  if (old == nullptr || dynamic_cast<KernelFlat*>(old) != nullptr) return;
  auto fresh = std::make_unique<KernelFlat>(old->d, old->metric_type);
  fresh->codes.swap(old->codes);
  fresh->ntotal = old->ntotal;
  fresh->is_trained = old->is_trained;
  if (idx.own_fields) delete idx.quantizer;
  idx.quantizer = fresh.release();
  idx.own_fields = true;
}

struct KeepSelector final : faiss::IDSelector {
  explicit KeepSelector(const std::function<bool(std::int64_t)>& keep) : keep_(keep) {}
  bool is_member(idx_t id) const override { return keep_(id); }
  const std::function<bool(std::int64_t)>& keep_;
};

}  // namespace

AnnKind resolve_ann_kind(const AnnOptions& options, std::int64_t rows) {
  switch (options.kind) {
    case AnnKind::kAuto:
      return rows < options.flat_max_rows ? AnnKind::kFlat : AnnKind::kHnsw;
    case AnnKind::kIvfPq:
      // PQ's k-means needs 39 points per each of its 256 centroids; smaller segments are
      // scanned exactly.
      return rows < 10'000 ? AnnKind::kFlat : AnnKind::kIvfPq;
    case AnnKind::kHnsw:
      return rows < 2 ? AnnKind::kFlat : AnnKind::kHnsw;
    case AnnKind::kFlat:
      break;
  }
  return AnnKind::kFlat;
}

std::int64_t ivf_lists(const AnnOptions& options, std::int64_t rows) {
  std::int64_t nlist = options.ivf_nlist > 0
                           ? options.ivf_nlist
                           : static_cast<std::int64_t>(4 * std::sqrt(static_cast<double>(rows)));
  return std::clamp<std::int64_t>(nlist, 1, std::max<std::int64_t>(1, rows / 39));
}

AnnIndex::AnnIndex(AnnKind kind, std::unique_ptr<faiss::Index> index)
    : kind_(kind), index_(std::move(index)) {}

AnnIndex::~AnnIndex() = default;

std::unique_ptr<AnnIndex> AnnIndex::build(AnnKind kind, const AnnOptions& options, const float* x,
                                          std::int64_t n, std::int64_t d, bool inner_product) {
  const faiss::MetricType metric = inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
  set_faiss_threads();
  try {
    if (kind == AnnKind::kHnsw) {
      auto idx =
          std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(d), options.hnsw_m, metric);
      idx->hnsw.efConstruction = options.hnsw_ef_construction;
      idx->hnsw.efSearch = options.hnsw_ef_search;
      use_kernel_storage(*idx);
      idx->add(n, x);
      auto a = std::unique_ptr<AnnIndex>(new AnnIndex(kind, std::move(idx)));
      a->default_ef_ = options.hnsw_ef_search;
      return a;
    }
    MMEMBED_ASSERT(kind == AnnKind::kIvfPq);
    const std::int64_t nlist = ivf_lists(options, n);
    const int m =
        options.pq_m > 0 ? options.pq_m : static_cast<int>(std::max<std::int64_t>(1, d / 8));
    MMEMBED_CHECK(d % m == 0, InvalidArgument, "IVF-PQ: ", m, " sub-quantizers do not divide the ",
                  d, " dimensions");
    auto quantizer = std::make_unique<KernelFlat>(
        d, inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
    auto idx = std::make_unique<faiss::IndexIVFPQ>(quantizer.get(), d, nlist, m, 8, metric);
    idx->own_fields = true;
    quantizer.release();
    idx->cp.seed = 1234;  // deterministic k-means
    idx->pq.cp.seed = 1234;
    // k-means on at most 256 points per centroid (what FAISS samples anyway), evenly spread.
    const std::int64_t train_n =
        std::min<std::int64_t>(n, std::max<std::int64_t>(nlist, 256) * 256);
    std::vector<float> sample;
    const float* train = x;
    if (train_n < n) {
      sample.resize(train_n * d);
      for (std::int64_t i = 0; i < train_n; ++i) {
        const std::int64_t r = i * n / train_n;
        std::copy(x + r * d, x + (r + 1) * d, sample.data() + i * d);
      }
      train = sample.data();
    }
    idx->train(train_n, train);
    idx->add(n, x);
    return std::unique_ptr<AnnIndex>(new AnnIndex(kind, std::move(idx)));
  } catch (const faiss::FaissException& e) {
    throw InvalidArgument(
        str_cat("building the ", ann_kind_name(kind), " index failed: ", e.what()));
  }
}

std::unique_ptr<AnnIndex> AnnIndex::read(const std::string& path, AnnKind kind, std::int64_t n,
                                         std::int64_t d, const AnnOptions& options) {
  std::unique_ptr<faiss::Index> idx;
  try {
    idx.reset(faiss::read_index(path.c_str()));
  } catch (const faiss::FaissException& e) {
    throw FormatError(str_cat(path, ": not a readable FAISS index (", e.what(), ")"));
  }
  const bool kind_ok = kind == AnnKind::kHnsw
                           ? dynamic_cast<faiss::IndexHNSW*>(idx.get()) != nullptr
                           : dynamic_cast<faiss::IndexIVFPQ*>(idx.get()) != nullptr;
  MMEMBED_CHECK(kind_ok, FormatError, path, ": not the ", ann_kind_name(kind),
                " index the database lists");
  MMEMBED_CHECK(idx->ntotal == n && idx->d == d, FormatError, path, ": holds ", idx->ntotal,
                " vectors of ", idx->d, " dimensions; the segment has ", n, " of ", d);
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(idx.get())) use_kernel_quantizer(*ivf);
  if (auto* h = dynamic_cast<faiss::IndexHNSW*>(idx.get())) {
    MMEMBED_CHECK(dynamic_cast<faiss::IndexFlat*>(h->storage) != nullptr, FormatError, path,
                  ": an HNSW index without flat storage");
    h->hnsw.efSearch = options.hnsw_ef_search;
    use_kernel_storage(*h);
  }
  auto a = std::unique_ptr<AnnIndex>(new AnnIndex(kind, std::move(idx)));
  a->default_ef_ = options.hnsw_ef_search;
  return a;
}

void AnnIndex::write(const std::string& path) const {
  try {
    faiss::write_index(index_.get(), path.c_str());
  } catch (const faiss::FaissException& e) {
    throw IoError(str_cat(path, ": cannot write the FAISS index (", e.what(), ")"));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MMEMBED_CHECK(fd >= 0 && ::fsync(fd) == 0, IoError, path, ": cannot flush to the disk");
  ::close(fd);
}

void AnnIndex::search(const float* queries, std::int64_t nq, std::int64_t kc,
                      const std::function<bool(std::int64_t)>* keep, const AnnOptions& options,
                      std::int64_t* labels) const {
  set_faiss_threads();
  std::vector<float> distances(nq * kc);
  std::unique_ptr<KeepSelector> sel;
  if (keep) sel = std::make_unique<KeepSelector>(*keep);
  try {
    if (kind_ == AnnKind::kHnsw) {
      const int ef = std::max<int>(options.hnsw_ef_search, static_cast<int>(kc));
      faiss::SearchParametersHNSW p;
      p.efSearch = ef;
      p.sel = sel.get();
      auto& hnsw = dynamic_cast<faiss::IndexHNSW&>(*index_).hnsw;
      if (ef == default_ef_) {
        std::shared_lock<std::shared_mutex> lock(ef_mutex_);
        index_->search(nq, queries, kc, distances.data(), labels, &p);
      } else {
        std::unique_lock<std::shared_mutex> lock(ef_mutex_);
        hnsw.efSearch = ef;
        try {
          index_->search(nq, queries, kc, distances.data(), labels, &p);
        } catch (...) {
          hnsw.efSearch = default_ef_;
          throw;
        }
        hnsw.efSearch = default_ef_;
      }
    } else {
      faiss::SearchParametersIVF p;
      p.nprobe = static_cast<std::size_t>(std::max(1, options.ivf_nprobe));
      p.sel = sel.get();
      index_->search(nq, queries, kc, distances.data(), labels, &p);
    }
  } catch (const faiss::FaissException& e) {
    throw InvalidArgument(str_cat("ANN search failed: ", e.what()));
  }
}

}  // namespace mmembed::index
