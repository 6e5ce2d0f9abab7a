// Collections: items (id, text, image, label, metadata) with their embeddings, kept in one
// folder and searched by vector kind (image, text, pair).
//
//   mmembed::IndexSpec spec;
//   spec.dim = 512;
//   spec.kinds = {mmembed::InputKind::kImage, mmembed::InputKind::kText};
//   spec.provenance.model = "openai/clip-vit-base-patch32";
//   mmembed::Index index = mmembed::Index::create("photos.index", spec);
//   index.add(items, {{InputKind::kImage, image_vectors}, {InputKind::kText, text_vectors}});
//
//   mmembed::Index reader = mmembed::Index::open("photos.index");
//   mmembed::SearchOptions o;
//   o.k = 10;
//   o.filters = {{"label", "cat"}};
//   auto hits = reader.search(InputKind::kImage, query, 1, o);   // hits[0]: best first
//
// On disk (docs/index.md): INDEX/index.sqlite holds the items, the provenance and the list of
// segments; INDEX/segments/N/ holds one segment's vectors (<kind>.npy, float32, one row per item
// of the segment, memory-mapped when searched) and, for large segments, its approximate index
// (<kind>.faiss: FAISS HNSW or IVF-PQ). `add` writes a new segment and commits it with its items
// in one SQLite transaction, so a process killed at any point leaves the index in its old or its
// new state; `remove` deletes items (their rows stay in the segment files until compact()).
//
// Scores: every result is scored by the metric's exact implementation (kernels/distance.h, the
// one `similarity` and the kNN graphs use) on the stored vectors; an approximate index only
// chooses the candidates. Cosine indexes store unit vectors. Similarities (cosine, dot) are
// listed largest first, distances (euclidean) smallest first; ties by insertion order.
//
// Concurrency: one writer at a time (an flock on INDEX/.lock; a second writer fails at once with
// IoError); any number of readers, in this process or others. An Index opened for reading is
// safe to search from several threads at once; it sees the state of the moment it was opened
// (reopen to see later changes). Opening reads the database only; each segment's vectors and
// ANN index are loaded on first use.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mmembed/embedder.h"

namespace mmembed {

enum class AnnKind {
  kAuto,   // exact below AnnOptions::flat_max_rows rows per segment, HNSW above
  kFlat,   // exact search only (no ANN file)
  kHnsw,   // FAISS IndexHNSWFlat
  kIvfPq,  // FAISS IndexIVFPQ, candidates re-scored exactly
};
const char* ann_kind_name(AnnKind kind);          // "auto", "flat", "hnsw", "ivfpq"
AnnKind parse_ann_kind(const std::string& name);  // InvalidArgument for another name

struct AnnOptions {
  AnnKind kind = AnnKind::kAuto;
  std::int64_t flat_max_rows = 50'000;  // kAuto: segments with fewer rows are searched exactly
  int hnsw_m = 32;                      // HNSW: links per node
  int hnsw_ef_construction = 80;        // HNSW: candidate list while building
  int hnsw_ef_search = 128;             // HNSW: candidate list while searching (at least k)
  std::int64_t ivf_nlist = 0;           // IVF: lists; 0 = 4 sqrt(rows), within [1, rows / 39]
  int ivf_nprobe = 32;                  // IVF: lists visited per query
  int pq_m = 0;                         // PQ: sub-quantizers (bytes per vector); 0 = dim / 8
  int rescore_factor = 50;              // IVF-PQ: candidates re-scored exactly = k * this
};

// Who made the vectors: checked against the model that embeds a query.
struct IndexProvenance {
  std::string model;         // as the user named it (repo id or folder)
  std::string model_path;    // the folder that was loaded
  std::string revision;      // Hub revision, when `model` is a repo id
  std::string family;        // "bridgetower", "clip", "sentence-transformers"
  std::string model_digest;  // mmembed::model_digest() of the model folder: its identity
  std::string image_backend;
  std::string pair_output;
  std::string dtype = "float32";  // the model's precision: "float32" (fp32) or "bf16"
};

struct IndexSpec {
  std::size_t dim = 0;
  std::vector<InputKind> kinds;   // the vector kinds every item has, at least one
  std::string metric = "cosine";  // "cosine", "dot" or "euclidean"
  AnnOptions ann;
  IndexProvenance provenance;
};

struct IndexItem {
  std::string id;        // unique within the index, non-empty
  std::string text;      // optional
  std::string image;     // optional: path or URL
  std::string label;     // optional
  std::string metadata;  // optional: a JSON object, as text
};

struct IndexSegmentInfo {
  std::int64_t segment = 0, rows = 0, live = 0;
  std::map<InputKind, AnnKind> ann;  // what each kind's search uses (kFlat or the ANN kind)
};

struct IndexInfo {
  std::string path;
  IndexSpec spec;
  std::int64_t items = 0;  // live items
  std::int64_t rows = 0;   // vector rows on disk (removed items included until compact)
  std::vector<IndexSegmentInfo> segments;
  std::string mmembed_version;  // the version that created it
  std::string created;          // UTC, ISO 8601
  std::int64_t disk_bytes = 0;  // the folder's files
};

// A condition on items: `field` is "id", "label", "text", "image", or "metadata.KEY" (the value
// of KEY in the item's metadata object, compared as text); all filters must hold.
struct SearchFilter {
  std::string field;
  std::string value;
};
// "label=cat" -> {"label", "cat"}; InvalidArgument naming the text otherwise.
SearchFilter parse_search_filter(const std::string& text);

struct SearchOptions {
  std::int64_t k = 10;  // 1 to 10000
  std::vector<SearchFilter> filters;
  std::vector<std::string> exclude_ids;  // never returned (e.g. the query item itself)
  bool exact = false;  // scan every vector (the oracle), even where an ANN index exists
  // Per search, over the index's saved values (0 = the saved one): HNSW's candidate list and
  // IVF's lists visited. Larger: better recall, slower.
  int hnsw_ef_search = 0;
  int ivf_nprobe = 0;
  int rescore_factor = 0;  // IVF-PQ: candidates re-scored exactly = k * this
};

struct SearchHit {
  std::int64_t rank = 0;  // 1-based
  double score = 0;       // in the metric's units
  IndexItem item;
};

// How the recommendation query is formed: normalise(mean(like) - unlike_weight * mean(unlike)
// + text_weight * text), then MMR when mmr_lambda < 1.
struct RecommendOptions {
  std::int64_t k = 10;
  double unlike_weight = 1.0;
  // Maximal marginal relevance: each next result maximises lambda * sim(query, c) -
  // (1 - lambda) * max sim(c, chosen); 1 = plain ranking. In [0, 1].
  double mmr_lambda = 1.0;
  std::int64_t mmr_candidates = 0;  // candidates MMR chooses from; 0 = max(50, 5 k)
  std::vector<SearchFilter> filters;
};

// Near-duplicate groups: connected components of the graph joining each item to its
// `neighbours` nearest items whose score passes `threshold` (>= for similarities, <= for
// distances).
struct DedupeOptions {
  double threshold = 0.95;
  std::int64_t neighbours = 10;
  bool exact = false;
};
struct DuplicateGroup {
  std::vector<IndexItem> items;  // insertion order: items[0] is the one to keep
  double min_score = 0;          // the weakest link that joined the group
};

// Distribution of each item's nearest-neighbour scores, to choose thresholds.
struct NeighbourStats {
  std::int64_t sampled = 0, neighbours = 0;
  std::vector<double> percentiles;  // the percentile points, e.g. 0, 1, 5, 25, 50, 75, 95, 99, 100
  std::vector<double> nearest;      // the nearest neighbour's score at each percentile
  std::vector<double> kth;          // the `neighbours`-th neighbour's score at each percentile
};

class Index {
 public:
  // Makes a new, empty index in `dir` (which must not exist, or be an empty folder).
  // InvalidArgument for a bad spec; IoError when dir cannot be made.
  static Index create(const std::string& dir, const IndexSpec& spec);
  // Opens an index; `writable` takes the writer's lock (IoError when another process holds it)
  // and removes what an interrupted writer left behind.
  static Index open(const std::string& dir, bool writable = false);
  Index(Index&&) noexcept;
  Index& operator=(Index&&) noexcept;
  ~Index();

  const IndexInfo& info() const;
  // Adds items with their vectors: for every kind of info().spec.kinds, items.size() * dim
  // floats, row i for items[i]. All or nothing: a duplicate or empty id, a missing kind, a
  // non-finite value or (cosine) a zero vector is refused before anything is written.
  void add(std::span<const IndexItem> items,
           const std::map<InputKind, std::span<const float>>& vectors);
  // Removes the items with these ids; returns how many were there. Unknown ids are ignored
  // unless `strict` (then InvalidArgument naming the first, and nothing is removed).
  std::int64_t remove(std::span<const std::string> ids, bool strict = true);
  // Rewrites the live items into one segment (drops removed rows, rebuilds the ANN index).
  void compact();

  bool contains(const std::string& id) const;
  // Every item, in insertion order (compact() keeps the order).
  std::vector<IndexItem> items() const;
  std::optional<IndexItem> item(const std::string& id) const;
  // The stored vector of one item (InvalidArgument for an unknown id or a kind the index lacks).
  std::vector<float> vector(const std::string& id, InputKind kind) const;

  // For each of nq queries [nq, dim] row-major: up to k hits, best first.
  std::vector<std::vector<SearchHit>> search(InputKind kind, const float* queries, std::int64_t nq,
                                             const SearchOptions& options) const;
  // More like `like`, less like `unlike` (ids of this index), optionally steered by a query
  // vector (text_vector, dim floats, with text_weight); the seeds are never returned.
  std::vector<SearchHit> recommend(InputKind kind, std::span<const std::string> like,
                                   std::span<const std::string> unlike,
                                   std::span<const float> text_vector, double text_weight,
                                   const RecommendOptions& options) const;
  std::vector<DuplicateGroup> dedupe(InputKind kind, const DedupeOptions& options) const;
  // Up to `sample` items (evenly spread, deterministic) against their neighbours.
  NeighbourStats neighbour_stats(InputKind kind, std::int64_t sample = 1000,
                                 std::int64_t neighbours = 10) const;

 private:
  struct Impl;
  explicit Index(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmembed
