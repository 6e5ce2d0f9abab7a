// The collection store behind include/mmembed/index.h: SQLite for items, provenance and the
// segment list; per segment, .npy vectors (memory-mapped) and FAISS ANN files.
#include "mmembed/index.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/check.h"
#include "index/ann.h"
#include "index/ann_json.h"
#include "index/sqlite.h"
#include "io/mapped_file.h"
#include "io/matrix.h"
#include "kernels/distance.h"
#include "mmembed/version.h"
#include "search/knn.h"
#include "search/top_k.h"

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace mmembed {

using index::ann_to_json;
using index::AnnIndex;
using index::Database;
using index::Statement;
using index::Transaction;

const char* ann_kind_name(AnnKind kind) {
  switch (kind) {
    case AnnKind::kAuto:
      return "auto";
    case AnnKind::kFlat:
      return "flat";
    case AnnKind::kHnsw:
      return "hnsw";
    case AnnKind::kIvfPq:
      return "ivfpq";
  }
  return "?";
}

AnnKind parse_ann_kind(const std::string& name) {
  for (AnnKind k : {AnnKind::kAuto, AnnKind::kFlat, AnnKind::kHnsw, AnnKind::kIvfPq}) {
    if (name == ann_kind_name(k)) return k;
  }
  throw InvalidArgument(str_cat("unknown ANN index '", name, "' (auto, flat, hnsw or ivfpq)"));
}

SearchFilter parse_search_filter(const std::string& text) {
  const std::size_t eq = text.find('=');
  MMEMBED_CHECK(eq != std::string::npos && eq > 0, InvalidArgument, "filter '", text,
                "': expected FIELD=VALUE (label=cat, metadata.source=web)");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

namespace index {

nlohmann::ordered_json ann_to_json(const AnnOptions& a) {
  return {{"kind", ann_kind_name(a.kind)},
          {"flat_max_rows", a.flat_max_rows},
          {"hnsw_m", a.hnsw_m},
          {"hnsw_ef_construction", a.hnsw_ef_construction},
          {"hnsw_ef_search", a.hnsw_ef_search},
          {"ivf_nlist", a.ivf_nlist},
          {"ivf_nprobe", a.ivf_nprobe},
          {"pq_m", a.pq_m},
          {"rescore_factor", a.rescore_factor}};
}

}  // namespace index

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kDatabase = "index.sqlite";
constexpr std::int64_t kMaxK = 10000;
constexpr std::size_t kMaxDim = 65536;
// A filter that leaves at most this many items is answered by scanning just those items.
constexpr std::int64_t kFilterScanMax = 50'000;
constexpr std::int64_t kBlock = 4096;

InputKind parse_kind(const std::string& name, const std::string& where) {
  try {
    return parse_input_kind(name);
  } catch (const InvalidArgument&) {
    throw FormatError(str_cat(where, ": unknown vector kind '", name, "'"));
  }
}

kernels::MetricSpec metric_spec(const std::string& metric) {
  if (metric == "cosine") return {kernels::Metric::Cosine};
  if (metric == "dot") return {kernels::Metric::Dot};
  if (metric == "euclidean") return {kernels::Metric::Euclidean};
  throw InvalidArgument(str_cat("index metric '", metric,
                                "' is not supported (cosine, dot or "
                                "euclidean)"));
}

AnnOptions ann_from_json(const Json& j) {
  AnnOptions a;
  a.kind = parse_ann_kind(j.at("kind").get<std::string>());
  a.flat_max_rows = j.at("flat_max_rows").get<std::int64_t>();
  a.hnsw_m = j.at("hnsw_m").get<int>();
  a.hnsw_ef_construction = j.at("hnsw_ef_construction").get<int>();
  a.hnsw_ef_search = j.at("hnsw_ef_search").get<int>();
  a.ivf_nlist = j.at("ivf_nlist").get<std::int64_t>();
  a.ivf_nprobe = j.at("ivf_nprobe").get<int>();
  a.pq_m = j.at("pq_m").get<int>();
  a.rescore_factor = j.at("rescore_factor").get<int>();
  return a;
}

void validate_ann(const AnnOptions& a, std::size_t dim) {
  MMEMBED_CHECK(a.flat_max_rows >= 0, InvalidArgument, "flat_max_rows must be >= 0");
  MMEMBED_CHECK(a.hnsw_m >= 2 && a.hnsw_m <= 256, InvalidArgument, "HNSW M ", a.hnsw_m,
                " is out of range (2 to 256)");
  MMEMBED_CHECK(a.hnsw_ef_construction >= 1 && a.hnsw_ef_construction <= 100000, InvalidArgument,
                "HNSW efConstruction ", a.hnsw_ef_construction, " is out of range (1 to 100000)");
  MMEMBED_CHECK(a.hnsw_ef_search >= 1 && a.hnsw_ef_search <= 100000, InvalidArgument,
                "HNSW efSearch ", a.hnsw_ef_search, " is out of range (1 to 100000)");
  MMEMBED_CHECK(a.ivf_nlist >= 0 && a.ivf_nlist <= (1 << 24), InvalidArgument, "IVF lists ",
                a.ivf_nlist, " is out of range (0 = auto, up to 16777216)");
  MMEMBED_CHECK(a.ivf_nprobe >= 1 && a.ivf_nprobe <= (1 << 24), InvalidArgument, "IVF nprobe ",
                a.ivf_nprobe, " is out of range");
  MMEMBED_CHECK(a.pq_m >= 0 && (a.pq_m == 0 || dim % static_cast<std::size_t>(a.pq_m) == 0),
                InvalidArgument, "PQ sub-quantizers ", a.pq_m, " must divide the dimension ", dim);
  MMEMBED_CHECK(
      a.pq_m != 0 || a.kind != AnnKind::kIvfPq || dim % std::max<std::size_t>(1, dim / 8) == 0,
      InvalidArgument, "IVF-PQ: the dimension ", dim,
      " is not divisible by dim/8 sub-quantizers; give pq_m");
  MMEMBED_CHECK(a.rescore_factor >= 1 && a.rescore_factor <= 1000, InvalidArgument,
                "rescore factor ", a.rescore_factor, " is out of range (1 to 1000)");
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Test hook: MMEMBED_TEST_CRASH=<point> kills the process there (SIGKILL), to test that an
// interrupted writer leaves the old or the new state.
void crash_point(const char* point) {
  const char* want = std::getenv("MMEMBED_TEST_CRASH");
  if (want && std::strcmp(want, point) == 0) std::raise(SIGKILL);
}

std::int64_t folder_bytes(const fs::path& dir) {
  std::int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<std::int64_t>(it->file_size(ec));
  }
  return total;
}

// Unit rows for any finite non-zero row, however short or long (in double): not
// kernels::l2_normalize, whose eps floor would leave rows shorter than 1e-12 short.
void normalize_rows(float* x, std::int64_t n, std::int64_t d) {
  for (std::int64_t i = 0; i < n; ++i) {
    float* r = x + i * d;
    double s = 0;
    for (std::int64_t j = 0; j < d; ++j)
      s += double(r[j]) * r[j];
    const double inv = 1.0 / std::sqrt(s);
    for (std::int64_t j = 0; j < d; ++j)
      r[j] = static_cast<float>(r[j] * inv);
  }
}

struct Segment {
  std::int64_t segment = 0, first_item = 0, rows = 0, live = 0;
  std::map<InputKind, AnnKind> ann;
  std::map<InputKind, std::int64_t> ann_bytes;  // each ANN file's size, checked when read
  // Loaded on first use (under Impl::load_mutex).
  std::map<InputKind, io::MappedMatrix> vectors;
  std::map<InputKind, std::unique_ptr<AnnIndex>> ann_index;
  std::map<InputKind, std::vector<double>> sq_norms;  // per row, for the exact scan's metric
  std::vector<std::uint8_t> live_rows;  // per row; empty until needed (and while live == rows)
  bool live_loaded = false;

  bool holds(std::int64_t item) const { return item >= first_item && item < first_item + rows; }
};

}  // namespace

struct Index::Impl {
  fs::path dir;
  IndexInfo info;
  kernels::MetricSpec metric;
  Database db;
  int lock_fd = -1;
  bool writable = false;
  std::int64_t next_item = 0;
  std::int64_t next_segment = 0;
  std::vector<std::unique_ptr<Segment>> segments;
  mutable std::mutex load_mutex;

  ~Impl() {
    if (lock_fd >= 0) ::close(lock_fd);
  }

  std::string name() const { return dir.string(); }
  std::size_t dim() const { return info.spec.dim; }
  bool has_kind(InputKind k) const {
    const auto& ks = info.spec.kinds;
    return std::find(ks.begin(), ks.end(), k) != ks.end();
  }
  void require_kind(InputKind k) const {
    MMEMBED_CHECK(has_kind(k), InvalidArgument, name(), ": the index holds no ", input_kind_name(k),
                  " vectors (it has ", kinds_text(), ")");
  }
  std::string kinds_text() const {
    std::string s;
    for (InputKind k : info.spec.kinds)
      s += (s.empty() ? "" : ", ") + std::string(input_kind_name(k));
    return s;
  }
  fs::path segment_dir(std::int64_t segment) const {
    return dir / "segments" / std::to_string(segment);
  }
  bool inner_product() const { return metric.metric != kernels::Metric::Euclidean; }

  // --- loading -----------------------------------------------------------------------------

  const io::MappedMatrix& vectors(Segment& s, InputKind kind) const {
    std::lock_guard<std::mutex> lock(load_mutex);
    auto it = s.vectors.find(kind);
    if (it != s.vectors.end()) return it->second;
    const fs::path p = segment_dir(s.segment) / (std::string(input_kind_name(kind)) + ".npy");
    std::error_code ec;
    MMEMBED_CHECK(fs::exists(p, ec), IoError, p.string(),
                  ": missing (the index was compacted by another process since it was opened; "
                  "open it again)");
    io::MappedMatrix m = io::map_npy(p.string());
    MMEMBED_CHECK(m.rows == s.rows && m.cols == static_cast<std::int64_t>(dim()), FormatError,
                  p.string(), ": holds [", m.rows, ", ", m.cols, "]; the database lists [", s.rows,
                  ", ", dim(), "]");
    return s.vectors.emplace(kind, std::move(m)).first->second;
  }

  // The rows' squared norms (kernels::row_sq_norms), computed once per segment and kind, so that
  // each exact scan reads the vectors once instead of twice.
  const std::vector<double>& sq_norms(Segment& s, InputKind kind) const {
    const io::MappedMatrix& m = vectors(s, kind);
    std::lock_guard<std::mutex> lock(load_mutex);
    auto it = s.sq_norms.find(kind);
    if (it != s.sq_norms.end()) return it->second;
    std::vector<double> norms(s.rows);
    kernels::row_sq_norms(m.data, s.rows, static_cast<std::int64_t>(dim()), norms.data());
    return s.sq_norms.emplace(kind, std::move(norms)).first->second;
  }

  const AnnIndex* ann(Segment& s, InputKind kind) const {
    const AnnKind k = s.ann.at(kind);
    if (k == AnnKind::kFlat) return nullptr;
    std::lock_guard<std::mutex> lock(load_mutex);
    auto it = s.ann_index.find(kind);
    if (it != s.ann_index.end()) return it->second.get();
    const fs::path p = segment_dir(s.segment) / (std::string(input_kind_name(kind)) + ".faiss");
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    MMEMBED_CHECK(!ec, IoError, p.string(), ": cannot read (", ec.message(), ")");
    MMEMBED_CHECK(static_cast<std::int64_t>(size) == s.ann_bytes.at(kind), FormatError, p.string(),
                  ": ", size, " bytes, the database lists ", s.ann_bytes.at(kind),
                  " (a damaged or replaced file)");
    auto idx =
        AnnIndex::read(p.string(), k, s.rows, static_cast<std::int64_t>(dim()), info.spec.ann);
    return s.ann_index.emplace(kind, std::move(idx)).first->second.get();
  }

  // Per row of the segment: 1 when its item is live. Empty when every row is.
  const std::vector<std::uint8_t>& live_rows(Segment& s) const {
    std::lock_guard<std::mutex> lock(load_mutex);
    if (!s.live_loaded) {
      if (s.live != s.rows) {
        s.live_rows.assign(s.rows, 0);
        Statement st = db.prepare("SELECT item FROM items WHERE item >= ?1 AND item < ?2");
        st.bind(1, s.first_item).bind(2, s.first_item + s.rows);
        while (st.step())
          s.live_rows[st.column_int(0) - s.first_item] = 1;
      }
      s.live_loaded = true;
    }
    return s.live_rows;
  }

  Segment& segment_of(std::int64_t item) const {
    for (const auto& s : segments) {
      if (s->holds(item)) return *s;
    }
    throw FormatError(str_cat(name(), ": item ", item, " lies in no segment (a damaged index)"));
  }

  const float* vector_of(std::int64_t item, InputKind kind) const {
    Segment& s = segment_of(item);
    return vectors(s, kind).data + (item - s.first_item) * static_cast<std::int64_t>(dim());
  }

  // --- items -------------------------------------------------------------------------------

  std::optional<std::int64_t> item_number(const std::string& id) const {
    Statement st = db.prepare("SELECT item FROM items WHERE id = ?1");
    st.bind(1, id);
    if (!st.step()) return std::nullopt;
    return st.column_int(0);
  }

  std::int64_t require_item(const std::string& id) const {
    const auto n = item_number(id);
    MMEMBED_CHECK(n.has_value(), InvalidArgument, name(), ": no item with id '", id, "'");
    return *n;
  }

  IndexItem read_item(std::int64_t item) const {
    Statement st = db.prepare("SELECT id, text, image, label, metadata FROM items WHERE item = ?1");
    st.bind(1, item);
    MMEMBED_CHECK(st.step(), FormatError, name(), ": item ", item,
                  " vanished (another process "
                  "changed the index; open it again)");
    return IndexItem{st.column_text(0), st.column_text(1), st.column_text(2), st.column_text(3),
                     st.column_text(4)};
  }

  // The items passing every filter, sorted; nullopt for no filters.
  std::optional<std::vector<std::int64_t>> filtered_items(
      const std::vector<SearchFilter>& filters) const {
    if (filters.empty()) return std::nullopt;
    std::string sql = "SELECT item FROM items WHERE ";
    std::vector<std::string> params;
    for (std::size_t i = 0; i < filters.size(); ++i) {
      const SearchFilter& f = filters[i];
      if (i) sql += " AND ";
      static const char* kColumns[] = {"id", "label", "text", "image"};
      if (std::find(std::begin(kColumns), std::end(kColumns), f.field) != std::end(kColumns)) {
        sql += f.field + " = ?";
        params.push_back(f.value);
      } else if (f.field.rfind("metadata.", 0) == 0 && f.field.size() > 9) {
        const std::string key = f.field.substr(9);
        MMEMBED_CHECK(key.find_first_of("\"\\") == std::string::npos, InvalidArgument, "filter '",
                      f.field, "': a metadata key cannot hold '\"' or '\\'");
        sql += "CAST(json_extract(metadata, ?) AS TEXT) = ?";
        params.push_back("$.\"" + key + "\"");
        params.push_back(f.value);
      } else {
        throw InvalidArgument(str_cat("filter field '", f.field,
                                      "' is not one of id, label, text, image, metadata.KEY"));
      }
    }
    sql += " ORDER BY item";
    Statement st = db.prepare(sql);
    for (std::size_t i = 0; i < params.size(); ++i)
      st.bind(static_cast<int>(i + 1), params[i]);
    std::vector<std::int64_t> items;
    while (st.step())
      items.push_back(st.column_int(0));
    return items;
  }

  // --- search ------------------------------------------------------------------------------

  struct Constraints {
    std::optional<std::vector<std::int64_t>> allowed;  // sorted items, nullopt = all
    std::vector<std::int64_t> excluded;                // sorted items
  };

  // Pushes every kept row of `s` scored against queries [nq, dim] into heaps (key, item).
  void scan_segment(Segment& s, InputKind kind, const float* queries, std::int64_t nq,
                    const std::function<bool(std::int64_t)>& keep,
                    std::vector<search::TopK>& heaps) const {
    const io::MappedMatrix& m = vectors(s, kind);
    const std::vector<double>& norms = sq_norms(s, kind);
    const std::int64_t d = static_cast<std::int64_t>(dim());
    std::vector<float> scratch;
    for (std::int64_t j0 = 0; j0 < s.rows; j0 += kBlock) {
      const std::int64_t bd = std::min(kBlock, s.rows - j0);
      scratch.resize(nq * bd);
      kernels::pairwise(metric, queries, nq, m.data + j0 * d, bd, d, scratch.data(), bd,
                        norms.data() + j0);
      search::check_values(scratch.data(), nq, bd, bd, metric, "search: query", 0, "indexed row",
                           j0);
      for (std::int64_t q = 0; q < nq; ++q) {
        const float* row = scratch.data() + q * bd;
        for (std::int64_t j = 0; j < bd; ++j) {
          if (!keep(j0 + j)) continue;
          heaps[q].push(static_cast<float>(kernels::closeness_key(metric.metric, row[j])),
                        s.first_item + j0 + j);
        }
      }
    }
  }

  // Scores the given items (any segments) against queries and pushes them.
  void score_items(InputKind kind, const float* queries, std::int64_t nq,
                   const std::vector<std::int64_t>& items, std::vector<search::TopK>& heaps,
                   std::int64_t only_query = -1) const {
    const std::int64_t d = static_cast<std::int64_t>(dim());
    std::vector<float> block, scratch;
    for (std::size_t i0 = 0; i0 < items.size(); i0 += kBlock) {
      const std::int64_t bd = std::min<std::int64_t>(kBlock, items.size() - i0);
      block.resize(bd * d);
      for (std::int64_t j = 0; j < bd; ++j) {
        const float* v = vector_of(items[i0 + j], kind);
        std::copy(v, v + d, block.data() + j * d);
      }
      const std::int64_t q0 = only_query >= 0 ? only_query : 0;
      const std::int64_t bq = only_query >= 0 ? 1 : nq;
      scratch.resize(bq * bd);
      kernels::pairwise(metric, queries + q0 * d, bq, block.data(), bd, d, scratch.data(), bd);
      search::check_values(scratch.data(), bq, bd, bd, metric, "search: query", q0, "item", 0);
      for (std::int64_t q = 0; q < bq; ++q) {
        for (std::int64_t j = 0; j < bd; ++j) {
          heaps[q0 + q].push(
              static_cast<float>(kernels::closeness_key(metric.metric, scratch[q * bd + j])),
              items[i0 + j]);
        }
      }
    }
  }

  // The k nearest items of each query: (key, item), closest first.
  std::vector<std::vector<search::Neighbour>> nearest(InputKind kind, const float* queries,
                                                      std::int64_t nq, std::int64_t k,
                                                      const Constraints& c, bool exact,
                                                      int ef_search = 0, int nprobe = 0,
                                                      int rescore = 0) const {
    const std::int64_t d = static_cast<std::int64_t>(dim());
    std::vector<search::TopK> heaps(nq, search::TopK(k));
    const auto excluded = [&](std::int64_t item) {
      return std::binary_search(c.excluded.begin(), c.excluded.end(), item);
    };
    if (c.allowed && static_cast<std::int64_t>(c.allowed->size()) <= kFilterScanMax) {
      std::vector<std::int64_t> items;
      for (std::int64_t it : *c.allowed) {
        if (!excluded(it)) items.push_back(it);
      }
      score_items(kind, queries, nq, items, heaps);
    } else {
      // Queries for FAISS: unit vectors when the metric is cosine.
      std::vector<float> unit;
      const float* ann_queries = queries;
      if (metric.metric == kernels::Metric::Cosine) {
        unit.assign(queries, queries + nq * d);
        normalize_rows(unit.data(), nq, d);
        ann_queries = unit.data();
      }
      for (const auto& sp : segments) {
        Segment& s = *sp;
        if (s.live == 0) continue;
        const std::vector<std::uint8_t>& live = live_rows(s);
        std::vector<std::uint8_t> allowed_rows;
        if (c.allowed) {
          allowed_rows.assign(s.rows, 0);
          auto lo = std::lower_bound(c.allowed->begin(), c.allowed->end(), s.first_item);
          for (; lo != c.allowed->end() && *lo < s.first_item + s.rows; ++lo) {
            allowed_rows[*lo - s.first_item] = 1;
          }
        }
        const std::int64_t first = s.first_item;
        const std::function<bool(std::int64_t)> keep = [&](std::int64_t row) {
          return (live.empty() || live[row]) && (allowed_rows.empty() || allowed_rows[row]) &&
                 (c.excluded.empty() || !excluded(first + row));
        };
        const bool all_kept = live.empty() && allowed_rows.empty() && c.excluded.empty();
        const AnnIndex* a = exact ? nullptr : ann(s, kind);
        if (!a) {
          scan_segment(s, kind, queries, nq, keep, heaps);
          continue;
        }
        AnnOptions o = info.spec.ann;
        if (ef_search > 0) o.hnsw_ef_search = ef_search;
        if (nprobe > 0) o.ivf_nprobe = nprobe;
        if (rescore > 0) o.rescore_factor = rescore;
        const std::int64_t kc =
            std::min(s.rows, a->kind() == AnnKind::kIvfPq ? k * o.rescore_factor : k);
        std::vector<std::int64_t> labels(nq * kc);
        a->search(ann_queries, nq, kc, all_kept ? nullptr : &keep, o, labels.data());
        std::vector<std::int64_t> cand;
        for (std::int64_t q = 0; q < nq; ++q) {
          cand.clear();
          for (std::int64_t r = 0; r < kc; ++r) {
            const std::int64_t row = labels[q * kc + r];
            if (row >= 0 && row < s.rows && keep(row)) cand.push_back(first + row);
          }
          score_items(kind, queries, nq, cand, heaps, q);
        }
      }
    }
    std::vector<std::vector<search::Neighbour>> out(nq);
    for (std::int64_t q = 0; q < nq; ++q)
      out[q] = heaps[q].sorted();
    return out;
  }

  double value_of(float key) const {
    return kernels::higher_is_closer(metric.metric) ? -double(key) : double(key);
  }

  // The hits' items, read in one query (a statement per hit costs more than the search).
  std::vector<SearchHit> hits(const std::vector<search::Neighbour>& ns) const {
    std::unordered_map<std::int64_t, IndexItem> items;
    constexpr std::size_t kPerQuery = 500;  // well under SQLite's limit on bound values
    for (std::size_t i0 = 0; i0 < ns.size(); i0 += kPerQuery) {
      const std::size_t i1 = std::min(ns.size(), i0 + kPerQuery);
      std::string sql = "SELECT item, id, text, image, label, metadata FROM items WHERE item IN (";
      for (std::size_t i = i0; i < i1; ++i)
        sql += i > i0 ? ",?" : "?";
      sql += ")";
      Statement st = db.prepare(sql);
      for (std::size_t i = i0; i < i1; ++i)
        st.bind(static_cast<int>(i - i0 + 1), ns[i].index);
      while (st.step()) {
        items[st.column_int(0)] = IndexItem{st.column_text(1), st.column_text(2), st.column_text(3),
                                            st.column_text(4), st.column_text(5)};
      }
    }
    std::vector<SearchHit> out;
    for (const search::Neighbour& n : ns) {
      auto it = items.find(n.index);
      MMEMBED_CHECK(it != items.end(), FormatError, name(), ": item ", n.index,
                    " vanished (another process changed the index; open it again)");
      out.push_back(
          SearchHit{static_cast<std::int64_t>(out.size()) + 1, value_of(n.key), it->second});
    }
    return out;
  }

  void check_queries(const float* q, std::int64_t nq, const char* what) const {
    search::check_rows(q, nq, static_cast<std::int64_t>(dim()), metric, what);
  }

  Constraints constraints(const std::vector<SearchFilter>& filters,
                          const std::vector<std::string>& exclude_ids) const {
    Constraints c;
    c.allowed = filtered_items(filters);
    for (const std::string& id : exclude_ids) {
      if (auto n = item_number(id)) c.excluded.push_back(*n);
    }
    std::sort(c.excluded.begin(), c.excluded.end());
    return c;
  }

  // --- writing -----------------------------------------------------------------------------

  void require_writable(const char* what) const {
    MMEMBED_CHECK(writable, InvalidArgument, name(), ": opened read-only; cannot ", what);
  }

  // Writes a segment's files under a temporary name and renames it into place; returns its ANN
  // kinds and file sizes.
  void write_segment(Segment& s, const std::map<InputKind, std::vector<float>>& vecs) const {
    const fs::path final_dir = segment_dir(s.segment);
    const fs::path tmp = dir / "segments" / str_cat(s.segment, ".tmp-", ::getpid());
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    MMEMBED_CHECK(!ec, IoError, tmp.string(), ": cannot create (", ec.message(), ")");
    const std::int64_t d = static_cast<std::int64_t>(dim());
    for (const auto& [kind, v] : vecs) {
      const std::string kname = input_kind_name(kind);
      io::write_npy((tmp / (kname + ".npy")).string(), v.data(), s.rows, d);
      const AnnKind ak = index::resolve_ann_kind(info.spec.ann, s.rows);
      s.ann[kind] = ak;
      if (ak != AnnKind::kFlat) {
        auto a = AnnIndex::build(ak, info.spec.ann, v.data(), s.rows, d, inner_product());
        const fs::path p = tmp / (kname + ".faiss");
        a->write(p.string());
        s.ann_bytes[kind] = static_cast<std::int64_t>(fs::file_size(p));
      }
    }
    fsync_dir(tmp);
    fs::remove_all(final_dir, ec);  // an uncommitted leftover of an interrupted writer
    fs::rename(tmp, final_dir, ec);
    MMEMBED_CHECK(!ec, IoError, final_dir.string(), ": cannot move the new segment into place (",
                  ec.message(), ")");
    fsync_dir(dir / "segments");
  }

  static std::string ann_json(const Segment& s) {
    Json j = Json::object();
    for (const auto& [kind, ak] : s.ann) {
      Json e{{"ann", ann_kind_name(ak)}};
      if (auto it = s.ann_bytes.find(kind); it != s.ann_bytes.end()) e["bytes"] = it->second;
      j[input_kind_name(kind)] = e;
    }
    return j.dump();
  }

  void insert_segment(const Segment& s) {
    db.prepare("INSERT INTO segments(segment, first_item, rows, live, ann) VALUES (?1,?2,?3,?4,?5)")
        .bind(1, s.segment)
        .bind(2, s.first_item)
        .bind(3, s.rows)
        .bind(4, s.live)
        .bind(5, ann_json(s))
        .step();
  }

  void set_meta(const std::string& key, const std::string& value) {
    db.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")
        .bind(1, key)
        .bind(2, value)
        .step();
  }

  // Removes segment folders the database does not list (an interrupted writer's).
  void collect_garbage() {
    std::set<std::string> listed;
    for (const auto& s : segments)
      listed.insert(std::to_string(s->segment));
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir / "segments", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string n = it->path().filename().string();
      if (!listed.count(n)) fs::remove_all(it->path(), ec);
    }
  }

  void load_state() {
    auto meta = [&](const std::string& key) {
      Statement st = db.prepare("SELECT value FROM meta WHERE key = ?1");
      st.bind(1, key);
      MMEMBED_CHECK(st.step(), FormatError, (dir / kDatabase).string(), ": no '", key,
                    "' in its meta table (not an mmembed index, or an unfinished one)");
      return st.column_text(0);
    };
    const std::string db_name = (dir / kDatabase).string();
    try {
      const int version = std::stoi(meta("format_version"));
      MMEMBED_CHECK(version <= kFormatVersion, Unsupported, name(), ": index format ", version,
                    " is newer than this mmembed reads (", kFormatVersion, "); upgrade mmembed");
      IndexSpec& spec = info.spec;
      spec.dim = static_cast<std::size_t>(std::stoll(meta("dim")));
      MMEMBED_CHECK(spec.dim >= 1 && spec.dim <= kMaxDim, FormatError, db_name, ": dimension ",
                    spec.dim, " out of range");
      spec.metric = meta("metric");
      metric = metric_spec(spec.metric);
      spec.kinds.clear();
      for (const auto& k : Json::parse(meta("kinds"))) {
        spec.kinds.push_back(parse_kind(k.get<std::string>(), db_name));
      }
      spec.ann = ann_from_json(Json::parse(meta("ann")));
      const Json p = Json::parse(meta("provenance"));
      IndexProvenance& pr = spec.provenance;
      pr.model = p.value("model", "");
      pr.model_path = p.value("model_path", "");
      pr.revision = p.value("revision", "");
      pr.family = p.value("family", "");
      pr.model_digest = p.value("model_digest", "");
      pr.image_backend = p.value("image_backend", "");
      pr.pair_output = p.value("pair_output", "");
      pr.dtype = p.value("dtype", "float32");
      info.mmembed_version = meta("mmembed_version");
      info.created = meta("created");
      next_item = std::stoll(meta("next_item"));
      next_segment = std::stoll(meta("next_segment"));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(str_cat(db_name, ": malformed metadata (", e.what(), ")"));
    } catch (const std::logic_error& e) {  // stoi/stoll
      if (dynamic_cast<const Error*>(&e)) throw;
      throw FormatError(str_cat(db_name, ": malformed metadata (", e.what(), ")"));
    }
    segments.clear();
    info.segments.clear();
    info.items = info.rows = 0;
    Statement st =
        db.prepare("SELECT segment, first_item, rows, live, ann FROM segments ORDER BY first_item");
    while (st.step()) {
      auto s = std::make_unique<Segment>();
      s->segment = st.column_int(0);
      s->first_item = st.column_int(1);
      s->rows = st.column_int(2);
      s->live = st.column_int(3);
      MMEMBED_CHECK(s->rows >= 0 && s->live >= 0 && s->live <= s->rows && s->first_item >= 0,
                    FormatError, db_name, ": segment ", s->segment, " has bad counts");
      try {
        const Json ann = Json::parse(st.column_text(4));
        for (const auto& [k, v] : ann.items()) {
          const InputKind kind = parse_kind(k, db_name);
          s->ann[kind] = parse_ann_kind(v.at("ann").get<std::string>());
          if (v.contains("bytes")) s->ann_bytes[kind] = v.at("bytes").get<std::int64_t>();
        }
      } catch (const nlohmann::json::exception& e) {
        throw FormatError(
            str_cat(db_name, ": segment ", s->segment, ": malformed (", e.what(), ")"));
      }
      for (InputKind k : info.spec.kinds) {
        MMEMBED_CHECK(s->ann.count(k), FormatError, db_name, ": segment ", s->segment, " lacks ",
                      input_kind_name(k), " vectors");
      }
      IndexSegmentInfo si{s->segment, s->rows, s->live, s->ann};
      info.segments.push_back(si);
      info.items += s->live;
      info.rows += s->rows;
      segments.push_back(std::move(s));
    }
    info.disk_bytes = folder_bytes(dir);
  }
};

Index::Index(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Index::Index(Index&&) noexcept = default;
Index& Index::operator=(Index&&) noexcept = default;
Index::~Index() = default;

const IndexInfo& Index::info() const {
  return impl_->info;
}

Index Index::create(const std::string& dir, const IndexSpec& spec) {
  MMEMBED_CHECK(spec.dim >= 1 && spec.dim <= kMaxDim, InvalidArgument, "index dimension ", spec.dim,
                " is out of range (1 to ", kMaxDim, ")");
  MMEMBED_CHECK(!spec.kinds.empty(), InvalidArgument, "an index needs at least one vector kind");
  for (std::size_t i = 0; i < spec.kinds.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      MMEMBED_CHECK(spec.kinds[i] != spec.kinds[j], InvalidArgument, "vector kind ",
                    input_kind_name(spec.kinds[i]), " is listed twice");
    }
  }
  metric_spec(spec.metric);
  validate_ann(spec.ann, spec.dim);
  std::error_code ec;
  const fs::path root(dir);
  if (fs::exists(fs::symlink_status(root, ec))) {
    MMEMBED_CHECK(fs::is_directory(fs::symlink_status(root, ec)) && fs::is_empty(root, ec), IoError,
                  dir,
                  ": already exists and is not an empty folder (choose a new index "
                  "folder; `index add` adds to an existing index)");
  }
  fs::create_directories(root / "segments", ec);
  MMEMBED_CHECK(!ec, IoError, dir, ": cannot create the index folder (", ec.message(), ")");
  {
    Database db = Database::open((root / kDatabase).string(), true, true);
    db.exec(
        "PRAGMA journal_mode=DELETE;"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE segments(segment INTEGER PRIMARY KEY, first_item INTEGER NOT NULL,"
        " rows INTEGER NOT NULL, live INTEGER NOT NULL, ann TEXT NOT NULL);"
        "CREATE TABLE items(item INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, text TEXT,"
        " image TEXT, label TEXT, metadata TEXT);"
        "CREATE INDEX items_label ON items(label);");
    Transaction t(db);
    Json kinds = Json::array();
    for (InputKind k : spec.kinds)
      kinds.push_back(input_kind_name(k));
    const IndexProvenance& p = spec.provenance;
    const Json prov{{"model", p.model},
                    {"model_path", p.model_path},
                    {"revision", p.revision},
                    {"family", p.family},
                    {"model_digest", p.model_digest},
                    {"image_backend", p.image_backend},
                    {"pair_output", p.pair_output},
                    {"dtype", p.dtype}};
    const std::pair<const char*, std::string> rows[] = {
        {"format_version", std::to_string(kFormatVersion)},
        {"dim", std::to_string(spec.dim)},
        {"metric", spec.metric},
        {"kinds", kinds.dump()},
        {"ann", ann_to_json(spec.ann).dump()},
        {"provenance", prov.dump()},
        {"mmembed_version", MMEMBED_VERSION},
        {"created", utc_now()},
        {"next_item", "0"},
        {"next_segment", "0"}};
    for (const auto& [k, v] : rows) {
      db.prepare("INSERT INTO meta(key, value) VALUES (?1, ?2)")
          .bind(1, std::string(k))
          .bind(2, v)
          .step();
    }
    t.commit();
  }
  return open(dir, true);
}

Index Index::open(const std::string& dir, bool writable) {
  auto impl = std::make_unique<Impl>();
  impl->dir = fs::path(dir);
  impl->info.path = dir;
  impl->writable = writable;
  std::error_code ec;
  MMEMBED_CHECK(fs::is_directory(impl->dir, ec), IoError, dir, ": no such index folder");
  const fs::path db_path = impl->dir / kDatabase;
  MMEMBED_CHECK(fs::is_regular_file(fs::symlink_status(db_path, ec)), IoError, dir,
                ": not an mmembed index (no ", kDatabase, ")");
  if (writable) {
    const fs::path lock = impl->dir / ".lock";
    impl->lock_fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    MMEMBED_CHECK(impl->lock_fd >= 0, IoError, lock.string(), ": cannot open (",
                  std::strerror(errno), ")");
    MMEMBED_CHECK(::flock(impl->lock_fd, LOCK_EX | LOCK_NB) == 0, IoError, dir,
                  ": another process is writing to this index now (one writer at a time); try "
                  "again when it has finished");
  }
  impl->db = Database::open(db_path.string(), writable, false);
  impl->load_state();
  if (writable) impl->collect_garbage();
  return Index(std::move(impl));
}

void Index::add(std::span<const IndexItem> items,
                const std::map<InputKind, std::span<const float>>& vectors) {
  Impl& m = *impl_;
  m.require_writable("add items");
  if (items.empty()) return;
  const std::int64_t n = static_cast<std::int64_t>(items.size());
  const std::int64_t d = static_cast<std::int64_t>(m.dim());
  // Everything is checked before anything is written.
  std::unordered_set<std::string_view> seen;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const IndexItem& it = items[i];
    MMEMBED_CHECK(!it.id.empty(), InvalidArgument, "item ", i, ": empty id");
    MMEMBED_CHECK(seen.insert(it.id).second, InvalidArgument, "id '", it.id,
                  "' appears twice among the items to add");
    MMEMBED_CHECK(!m.item_number(it.id), InvalidArgument, "id '", it.id, "' is already in ",
                  m.name(), " (remove it first to replace it)");
    if (!it.metadata.empty()) {
      const Json j = Json::parse(it.metadata, nullptr, false);
      MMEMBED_CHECK(j.is_object(), InvalidArgument, "item '", it.id,
                    "': metadata must be a JSON object");
    }
  }
  std::map<InputKind, std::vector<float>> vecs;
  for (InputKind k : m.info.spec.kinds) {
    auto it = vectors.find(k);
    MMEMBED_CHECK(it != vectors.end(), InvalidArgument, "no ", input_kind_name(k),
                  " vectors given; the index holds ", m.kinds_text());
    MMEMBED_CHECK(static_cast<std::int64_t>(it->second.size()) == n * d, InvalidArgument,
                  input_kind_name(k), " vectors: ", it->second.size(), " values for ", n,
                  " items of dimension ", d, " (expected ", n * d, ")");
    search::check_rows(it->second.data(), n, d, m.metric,
                       str_cat(input_kind_name(k), " vectors: item").c_str());
    std::vector<float> v(it->second.begin(), it->second.end());
    if (m.metric.metric == kernels::Metric::Cosine) normalize_rows(v.data(), n, d);
    vecs.emplace(k, std::move(v));
  }
  for (const auto& [k, v] : vectors) {
    MMEMBED_CHECK(m.has_kind(k), InvalidArgument, input_kind_name(k),
                  " vectors given; the index holds ", m.kinds_text());
  }

  auto seg = std::make_unique<Segment>();
  seg->segment = m.next_segment;
  seg->first_item = m.next_item;
  seg->rows = seg->live = n;
  m.write_segment(*seg, vecs);
  crash_point("add:segment-written");
  {
    Transaction t(m.db);
    m.insert_segment(*seg);
    Statement ins = m.db.prepare(
        "INSERT INTO items(item, id, text, image, label, metadata) VALUES (?1,?2,?3,?4,?5,?6)");
    for (std::int64_t i = 0; i < n; ++i) {
      const IndexItem& it = items[i];
      ins.reset();
      ins.bind(1, seg->first_item + i)
          .bind(2, it.id)
          .bind_text_or_null(3, it.text)
          .bind_text_or_null(4, it.image)
          .bind_text_or_null(5, it.label)
          .bind_text_or_null(6, it.metadata);
      ins.step();
    }
    m.set_meta("next_item", std::to_string(m.next_item + n));
    m.set_meta("next_segment", std::to_string(m.next_segment + 1));
    crash_point("add:before-commit");
    t.commit();
  }
  m.load_state();
}

std::int64_t Index::remove(std::span<const std::string> ids, bool strict) {
  Impl& m = *impl_;
  m.require_writable("remove items");
  std::vector<std::int64_t> items;
  for (const std::string& id : ids) {
    const auto n = m.item_number(id);
    MMEMBED_CHECK(n || !strict, InvalidArgument, m.name(), ": no item with id '", id,
                  "' (nothing was removed)");
    if (n) items.push_back(*n);
  }
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  if (items.empty()) return 0;
  {
    Transaction t(m.db);
    Statement del = m.db.prepare("DELETE FROM items WHERE item = ?1");
    for (std::int64_t it : items) {
      del.reset();
      del.bind(1, it).step();
    }
    for (const auto& s : m.segments) {
      const auto lo = std::lower_bound(items.begin(), items.end(), s->first_item);
      const auto hi = std::lower_bound(items.begin(), items.end(), s->first_item + s->rows);
      if (lo == hi) continue;
      m.db.prepare("UPDATE segments SET live = live - ?1 WHERE segment = ?2")
          .bind(1, static_cast<std::int64_t>(hi - lo))
          .bind(2, s->segment)
          .step();
    }
    crash_point("remove:before-commit");
    t.commit();
  }
  m.load_state();
  return static_cast<std::int64_t>(items.size());
}

namespace {

// The numbers of the live items, in item (insertion) order.
std::vector<std::int64_t> live_items(const Database& db) {
  std::vector<std::int64_t> items;
  Statement st = db.prepare("SELECT item FROM items ORDER BY item");
  while (st.step())
    items.push_back(st.column_int(0));
  return items;
}

}  // namespace

void Index::compact() {
  Impl& m = *impl_;
  m.require_writable("compact");
  const std::int64_t d = static_cast<std::int64_t>(m.dim());
  const std::vector<std::int64_t> live = live_items(m.db);
  std::map<InputKind, std::vector<float>> vecs;
  for (InputKind k : m.info.spec.kinds) {
    std::vector<float>& v = vecs[k];
    v.resize(live.size() * d);
    for (std::size_t i = 0; i < live.size(); ++i) {
      const float* src = m.vector_of(live[i], k);
      std::copy(src, src + d, v.data() + i * d);
    }
  }
  auto seg = std::make_unique<Segment>();
  seg->segment = m.next_segment;
  seg->first_item = m.next_item;
  seg->rows = seg->live = static_cast<std::int64_t>(live.size());
  if (seg->rows > 0) m.write_segment(*seg, vecs);
  std::vector<std::int64_t> old;
  for (const auto& s : m.segments)
    old.push_back(s->segment);
  {
    Transaction t(m.db);
    m.db.exec("DELETE FROM segments");
    if (seg->rows > 0) m.insert_segment(*seg);
    Statement up = m.db.prepare("UPDATE items SET item = ?1 WHERE item = ?2");
    for (std::size_t i = 0; i < live.size(); ++i) {  // new numbers lie above every old one
      up.reset();
      up.bind(1, seg->first_item + static_cast<std::int64_t>(i)).bind(2, live[i]).step();
    }
    m.set_meta("next_item", std::to_string(m.next_item + seg->rows));
    m.set_meta("next_segment", std::to_string(m.next_segment + 1));
    crash_point("compact:before-commit");
    t.commit();
  }
  std::error_code ec;
  for (std::int64_t s : old)
    fs::remove_all(m.segment_dir(s), ec);
  m.load_state();
}

bool Index::contains(const std::string& id) const {
  return impl_->item_number(id).has_value();
}

std::vector<IndexItem> Index::items() const {
  std::vector<IndexItem> out;
  Statement st =
      impl_->db.prepare("SELECT id, text, image, label, metadata FROM items ORDER BY item");
  while (st.step()) {
    out.push_back(IndexItem{st.column_text(0), st.column_text(1), st.column_text(2),
                            st.column_text(3), st.column_text(4)});
  }
  return out;
}

std::optional<IndexItem> Index::item(const std::string& id) const {
  const auto n = impl_->item_number(id);
  if (!n) return std::nullopt;
  return impl_->read_item(*n);
}

std::vector<float> Index::vector(const std::string& id, InputKind kind) const {
  impl_->require_kind(kind);
  const float* v = impl_->vector_of(impl_->require_item(id), kind);
  return std::vector<float>(v, v + impl_->dim());
}

std::vector<std::vector<SearchHit>> Index::search(InputKind kind, const float* queries,
                                                  std::int64_t nq,
                                                  const SearchOptions& options) const {
  const Impl& m = *impl_;
  m.require_kind(kind);
  MMEMBED_CHECK(options.k >= 1 && options.k <= kMaxK, InvalidArgument, "k ", options.k,
                " is out of range (1 to ", kMaxK, ")");
  MMEMBED_CHECK(nq >= 0, InvalidArgument, "negative query count");
  m.check_queries(queries, nq, "search: query");
  const auto c = m.constraints(options.filters, options.exclude_ids);
  MMEMBED_CHECK(options.hnsw_ef_search >= 0 && options.hnsw_ef_search <= 100000 &&
                    options.ivf_nprobe >= 0 && options.ivf_nprobe <= (1 << 24) &&
                    options.rescore_factor >= 0 && options.rescore_factor <= 1000,
                InvalidArgument, "efSearch ", options.hnsw_ef_search, ", nprobe ",
                options.ivf_nprobe, " or rescore factor ", options.rescore_factor,
                " is out of range");
  const auto ns = m.nearest(kind, queries, nq, options.k, c, options.exact, options.hnsw_ef_search,
                            options.ivf_nprobe, options.rescore_factor);
  std::vector<std::vector<SearchHit>> out;
  for (const auto& n : ns)
    out.push_back(m.hits(n));
  return out;
}

std::vector<SearchHit> Index::recommend(InputKind kind, std::span<const std::string> like,
                                        std::span<const std::string> unlike,
                                        std::span<const float> text_vector, double text_weight,
                                        const RecommendOptions& options) const {
  const Impl& m = *impl_;
  m.require_kind(kind);
  const std::int64_t d = static_cast<std::int64_t>(m.dim());
  MMEMBED_CHECK(options.k >= 1 && options.k <= kMaxK, InvalidArgument, "k ", options.k,
                " is out of range (1 to ", kMaxK, ")");
  MMEMBED_CHECK(options.mmr_lambda >= 0 && options.mmr_lambda <= 1, InvalidArgument, "MMR lambda ",
                options.mmr_lambda, " is out of range (0 to 1)");
  MMEMBED_CHECK(std::isfinite(options.unlike_weight) && std::isfinite(text_weight), InvalidArgument,
                "weights must be finite");
  MMEMBED_CHECK(!like.empty() || (!text_vector.empty() && text_weight != 0), InvalidArgument,
                "recommend needs at least one liked item or a text with a weight");
  MMEMBED_CHECK(text_vector.empty() || static_cast<std::int64_t>(text_vector.size()) == d,
                InvalidArgument, "the text vector has ", text_vector.size(),
                " values; the index's dimension is ", d);
  // Each part (mean of the liked, of the unliked, the text) is summed with its weight; a query
  // whose length is a tiny fraction of its parts' is what is left when they cancel.
  std::vector<double> q(d, 0.0);
  double parts = 0;
  std::vector<std::string> seeds;
  auto accumulate = [&](std::span<const float> v, double weight) {
    double len = 0;
    for (std::int64_t j = 0; j < d; ++j)
      q[j] += weight * v[j], len += double(v[j]) * v[j];
    parts += std::abs(weight) * std::sqrt(len);
  };
  auto mean_of = [&](std::span<const std::string> ids, double weight) {
    if (ids.empty()) return;
    std::vector<float> mean(d, 0.0f);
    std::vector<double> sum(d, 0.0);
    for (const std::string& id : ids) {
      const float* v = m.vector_of(m.require_item(id), kind);
      for (std::int64_t j = 0; j < d; ++j)
        sum[j] += v[j];
      seeds.push_back(id);
    }
    for (std::int64_t j = 0; j < d; ++j)
      mean[j] = static_cast<float>(sum[j] / double(ids.size()));
    accumulate(mean, weight);
  };
  mean_of(like, 1.0);
  mean_of(unlike, -options.unlike_weight);
  if (!text_vector.empty()) {
    std::vector<float> t(text_vector.begin(), text_vector.end());
    m.check_queries(t.data(), 1, "recommend: text vector");
    if (m.metric.metric == kernels::Metric::Cosine) normalize_rows(t.data(), 1, d);
    accumulate(t, text_weight);
  }
  std::vector<float> query(q.begin(), q.end());
  double norm = 0;
  for (double v : q)
    norm += v * v;
  MMEMBED_CHECK(std::isfinite(norm) && std::sqrt(norm) > 1e-6 * parts, InvalidArgument,
                "the liked, unliked and text parts cancel out: the recommendation query is zero");
  const bool mmr = options.mmr_lambda < 1;
  const std::int64_t pool =
      mmr ? (options.mmr_candidates > 0 ? options.mmr_candidates
                                        : std::max<std::int64_t>(50, 5 * options.k))
          : options.k;
  MMEMBED_CHECK(pool <= kMaxK, InvalidArgument, "MMR candidates ", pool, " exceed ", kMaxK);
  const auto c = m.constraints(options.filters, seeds);
  std::vector<search::Neighbour> cand = m.nearest(kind, query.data(), 1, pool, c, false)[0];
  if (!mmr) return m.hits(cand);
  // Maximal marginal relevance over the pool, with the metric's closeness (higher = closer).
  const std::int64_t nc = static_cast<std::int64_t>(cand.size());
  std::vector<float> cv(nc * d);
  for (std::int64_t i = 0; i < nc; ++i) {
    const float* v = m.vector_of(cand[i].index, kind);
    std::copy(v, v + d, cv.data() + i * d);
  }
  std::vector<float> sim(nc * nc);
  if (nc > 0) kernels::pairwise(m.metric, cv.data(), nc, cv.data(), nc, d, sim.data(), nc);
  auto closeness = [&](float value) { return -kernels::closeness_key(m.metric.metric, value); };
  std::vector<double> max_sim(nc, -INFINITY);
  std::vector<bool> taken(nc, false);
  std::vector<search::Neighbour> chosen;
  const double lambda = options.mmr_lambda;
  while (static_cast<std::int64_t>(chosen.size()) < std::min(options.k, nc)) {
    std::int64_t best = -1;
    double best_score = -INFINITY;
    for (std::int64_t i = 0; i < nc; ++i) {
      if (taken[i]) continue;
      const double rel = -double(cand[i].key);
      const double score = chosen.empty() ? rel : lambda * rel - (1 - lambda) * max_sim[i];
      if (score > best_score) best = i, best_score = score;
    }
    taken[best] = true;
    chosen.push_back(cand[best]);
    for (std::int64_t i = 0; i < nc; ++i) {
      max_sim[i] = std::max(max_sim[i], closeness(sim[i * nc + best]));
    }
  }
  return m.hits(chosen);
}

std::vector<DuplicateGroup> Index::dedupe(InputKind kind, const DedupeOptions& options) const {
  const Impl& m = *impl_;
  m.require_kind(kind);
  MMEMBED_CHECK(options.neighbours >= 1 && options.neighbours <= 1000, InvalidArgument,
                "dedupe neighbours ", options.neighbours, " out of range (1 to 1000)");
  MMEMBED_CHECK(std::isfinite(options.threshold), InvalidArgument, "threshold must be finite");
  const std::vector<std::int64_t> items = live_items(m.db);
  const std::int64_t n = static_cast<std::int64_t>(items.size());
  const std::int64_t d = static_cast<std::int64_t>(m.dim());
  std::unordered_map<std::int64_t, std::int64_t> pos;
  for (std::int64_t i = 0; i < n; ++i)
    pos[items[i]] = i;
  // Union-find over positions; the weakest joining score per root.
  std::vector<std::int64_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  const std::function<std::int64_t(std::int64_t)> find = [&](std::int64_t x) {
    while (parent[x] != x)
      x = parent[x] = parent[parent[x]];
    return x;
  };
  const bool higher = kernels::higher_is_closer(m.metric.metric);
  std::unordered_map<std::int64_t, double> weakest;
  const std::int64_t k = std::min(options.neighbours + 1, std::max<std::int64_t>(1, n));
  constexpr std::int64_t kQueries = 256;
  std::vector<float> q;
  for (std::int64_t i0 = 0; i0 < n; i0 += kQueries) {
    const std::int64_t bq = std::min(kQueries, n - i0);
    q.resize(bq * d);
    for (std::int64_t i = 0; i < bq; ++i) {
      const float* v = m.vector_of(items[i0 + i], kind);
      std::copy(v, v + d, q.data() + i * d);
    }
    const auto ns = m.nearest(kind, q.data(), bq, k, {}, options.exact);
    for (std::int64_t i = 0; i < bq; ++i) {
      for (const search::Neighbour& nb : ns[i]) {
        if (nb.index == items[i0 + i]) continue;
        const double v = m.value_of(nb.key);
        if (higher ? v < options.threshold : v > options.threshold) continue;
        const std::int64_t a = find(i0 + i), b = find(pos.at(nb.index));
        if (a == b) continue;  // already one group
        double w = v;
        for (std::int64_t r : {a, b}) {
          if (auto it = weakest.find(r); it != weakest.end()) {
            w = higher ? std::min(w, it->second) : std::max(w, it->second);
          }
        }
        const std::int64_t root = std::min(a, b);
        parent[std::max(a, b)] = root;
        weakest[root] = w;
      }
    }
  }
  std::map<std::int64_t, std::vector<std::int64_t>> groups;
  for (std::int64_t i = 0; i < n; ++i)
    groups[find(i)].push_back(i);
  std::vector<DuplicateGroup> out;
  for (const auto& [root, members] : groups) {
    if (members.size() < 2) continue;
    DuplicateGroup g;
    for (std::int64_t p : members)
      g.items.push_back(m.read_item(items[p]));
    g.min_score = weakest.at(root);
    out.push_back(std::move(g));
  }
  return out;
}

NeighbourStats Index::neighbour_stats(InputKind kind, std::int64_t sample,
                                      std::int64_t neighbours) const {
  const Impl& m = *impl_;
  m.require_kind(kind);
  MMEMBED_CHECK(sample >= 1 && sample <= 1'000'000, InvalidArgument, "sample ", sample,
                " out of range (1 to 1000000)");
  MMEMBED_CHECK(neighbours >= 1 && neighbours <= 1000, InvalidArgument, "neighbours ", neighbours,
                " out of range (1 to 1000)");
  const std::vector<std::int64_t> items = live_items(m.db);
  const std::int64_t n = static_cast<std::int64_t>(items.size());
  NeighbourStats st;
  st.percentiles = {0, 1, 5, 25, 50, 75, 95, 99, 100};
  st.neighbours = neighbours;
  if (n < 2) return st;
  const std::int64_t d = static_cast<std::int64_t>(m.dim());
  const std::int64_t ns = std::min(sample, n);
  const std::int64_t k = std::min(neighbours, n - 1) + 1;
  std::vector<double> nearest, kth;
  constexpr std::int64_t kQueries = 256;
  std::vector<float> q;
  std::vector<std::int64_t> who;
  for (std::int64_t s0 = 0; s0 < ns; s0 += kQueries) {
    const std::int64_t bq = std::min(kQueries, ns - s0);
    q.resize(bq * d);
    who.resize(bq);
    for (std::int64_t i = 0; i < bq; ++i) {
      who[i] = items[(s0 + i) * n / ns];
      const float* v = m.vector_of(who[i], kind);
      std::copy(v, v + d, q.data() + i * d);
    }
    const auto res = m.nearest(kind, q.data(), bq, k, {}, false);
    for (std::int64_t i = 0; i < bq; ++i) {
      std::vector<double> vals;
      for (const search::Neighbour& nb : res[i]) {
        if (nb.index != who[i]) vals.push_back(m.value_of(nb.key));
      }
      if (vals.empty()) continue;
      nearest.push_back(vals.front());
      kth.push_back(vals.size() >= static_cast<std::size_t>(neighbours) ? vals[neighbours - 1]
                                                                        : vals.back());
    }
  }
  st.sampled = static_cast<std::int64_t>(nearest.size());
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const double r = p / 100.0 * double(v.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(std::floor(r));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (r - double(lo));
  };
  for (double p : st.percentiles) {
    st.nearest.push_back(pct(nearest, p));
    st.kth.push_back(pct(kth, p));
  }
  return st;
}

}  // namespace mmembed
