// Index at scale (issue #21): N x D synthetic clustered unit vectors through the public API
// (mmembed::Index), measured as a user meets them:
//   - exact (flat) search: latency per query and the bytes scanned per second, against the
//     machine's read bandwidth measured here on one thread;
//   - HNSW (FAISS IndexHNSWFlat inside an index segment): build time, open time, first-search
//     time (the lazy load), latency and recall@10 against exact, for several efSearch;
//   - IVF-PQ with exact re-scoring: build time, the ANN file's size, latency, recall@10.
// The data and the ground truth are written as .npy for bench/index/faiss_py.py, which runs the
// same parameters through FAISS's own Python package on the same vectors.
//
//   bench_index --n 1000000 --dim 512 --queries 1000 --dir /tmp/ixbench [--threads 1]
//               [--build-threads 2] [--only flat,hnsw,ivfpq]   (flat always runs: the truth)
//               [--reuse]   (open the indexes a previous run left in --dir; build_s is then -1)
// Prints one JSON object. Searches run one query at a time on --threads threads; the index
// builds on --build-threads.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "io/matrix.h"
#include "kernels/parallel.h"
#include "mmembed/index.h"

namespace fs = std::filesystem;
using namespace mmembed;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Clustered data: 1000 centres ~ N(0, 1); each point a centre plus N(0, 0.6^2) noise, normalised.
void make_data(std::int64_t n, std::int64_t d, std::uint64_t seed, std::vector<float>& out) {
  std::mt19937_64 crng(7);
  std::normal_distribution<float> g(0, 1);
  constexpr int kCentres = 1000;
  std::vector<float> c(kCentres * d);
  for (float& v : c)
    v = g(crng);
  out.resize(n * d);
  std::mt19937_64 rng(seed);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = static_cast<std::int64_t>(rng() % kCentres);
    double s = 0;
    float* r = out.data() + i * d;
    for (std::int64_t j = 0; j < d; ++j) {
      r[j] = c[k * d + j] + 0.6f * g(rng);
      s += double(r[j]) * r[j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(s));
    for (std::int64_t j = 0; j < d; ++j)
      r[j] *= inv;
  }
}

// One thread reading a buffer larger than the caches: bytes per second.
double read_bandwidth() {
  const std::size_t n = std::size_t{1} << 28;  // 1 GiB of floats
  std::vector<float> buf(n, 1.0f);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (std::size_t i = 0; i < n; i += 8) {
      s0 += buf[i];
      s1 += buf[i + 1];
      s2 += buf[i + 2];
      s3 += buf[i + 3];
      s4 += buf[i + 4];
      s5 += buf[i + 5];
      s6 += buf[i + 6];
      s7 += buf[i + 7];
    }
    const double t = seconds_since(t0);
    volatile float sink = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    (void)sink;
    best = std::max(best, double(n) * 4 / t);
  }
  return best;
}

struct Latency {
  double mean_ms = 0, p50_ms = 0, p99_ms = 0;
};

Latency one_at_a_time(const Index& index, const std::vector<float>& q, std::int64_t nq,
                      std::int64_t d, const SearchOptions& o,
                      std::vector<std::vector<std::string>>* ids) {
  std::vector<double> ms;
  ids->assign(nq, {});
  for (std::int64_t i = 0; i < nq; ++i) {
    const auto t0 = Clock::now();
    const auto hits = index.search(InputKind::kImage, q.data() + i * d, 1, o)[0];
    ms.push_back(seconds_since(t0) * 1000);
    for (const auto& h : hits)
      (*ids)[i].push_back(h.item.id);
  }
  Latency l;
  for (double v : ms)
    l.mean_ms += v / double(nq);
  std::sort(ms.begin(), ms.end());
  l.p50_ms = ms[ms.size() / 2];
  l.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  return l;
}

double recall(const std::vector<std::vector<std::string>>& got,
              const std::vector<std::vector<std::string>>& truth) {
  double hit = 0, all = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {  // got may cover the first queries only
    const std::set<std::string> t(truth[i].begin(), truth[i].end());
    for (const auto& id : got[i])
      hit += t.count(id);
    all += double(truth[i].size());
  }
  return hit / all;
}

std::int64_t rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t n = 100000, d = 512, nq = 1000;
  int threads = 1, build_threads = 2;
  bool reuse = false;  // --reuse: open an index a previous run left in --dir instead of building
  std::string dir = "/tmp/mmembed-index-bench", only;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--reuse") {
      reuse = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", a.c_str());
      return 2;
    }
    const std::string v = argv[i + 1];
    if (a == "--n")
      n = std::atoll(v.c_str());
    else if (a == "--dim")
      d = std::atoll(v.c_str());
    else if (a == "--queries")
      nq = std::atoll(v.c_str());
    else if (a == "--dir")
      dir = v;
    else if (a == "--threads")
      threads = std::atoi(v.c_str());
    else if (a == "--build-threads")
      build_threads = std::atoi(v.c_str());
    else if (a == "--only")
      only = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  kernels::set_num_threads(threads);
  fs::create_directories(dir);
  std::printf(
      "{\"n\": %lld, \"dim\": %lld, \"queries\": %lld, \"threads\": %d, "
      "\"build_threads\": %d",
      static_cast<long long>(n), static_cast<long long>(d), static_cast<long long>(nq), threads,
      build_threads);
  std::fflush(stdout);

  std::vector<float> x, q;
  auto t0 = Clock::now();
  make_data(n, d, 1, x);
  make_data(nq, d, 2, q);
  io::write_npy(dir + "/base.npy", x.data(), n, d);
  io::write_npy(dir + "/queries.npy", q.data(), nq, d);
  std::printf(",\n \"data_s\": %.1f", seconds_since(t0));
  std::printf(",\n \"read_bandwidth_gbs\": %.2f", read_bandwidth() / 1e9);
  std::fflush(stdout);

  std::vector<IndexItem> items(n);
  for (std::int64_t i = 0; i < n; ++i)
    items[i].id = std::to_string(i);
  auto build = [&](AnnKind kind, const std::string& name) {
    IndexSpec spec;
    spec.dim = static_cast<std::size_t>(d);
    spec.kinds = {InputKind::kImage};
    spec.ann.kind = kind;
    spec.ann.flat_max_rows = 0;
    spec.ann.pq_m = static_cast<int>(d / 8);
    const std::string path = dir + "/" + name;
    if (reuse && fs::exists(path + "/index.sqlite")) return std::make_pair(path, -1.0);
    fs::remove_all(path);
    kernels::set_num_threads(build_threads);
    const auto t = Clock::now();
    {
      Index index = Index::create(path, spec);
      index.add(items, {{InputKind::kImage, std::span<const float>(x)}});
    }
    const double s = seconds_since(t);
    kernels::set_num_threads(threads);
    return std::make_pair(path, s);
  };

  // Exact: the ground truth, and the scan's speed.
  const auto [flat_path, flat_build] = build(AnnKind::kFlat, "flat.index");
  std::vector<std::vector<std::string>> truth;
  {
    t0 = Clock::now();
    const Index flat = Index::open(flat_path);
    const double open_s = seconds_since(t0);
    SearchOptions o;
    o.k = 10;
    const std::int64_t nq_flat = std::min<std::int64_t>(nq, 200);
    std::vector<std::vector<std::string>> ids;
    const Latency l = one_at_a_time(flat, q, nq_flat, d, o, &ids);
    // Ground truth for every query, batched (the same exact code, faster in bulk).
    const auto all = flat.search(InputKind::kImage, q.data(), nq, o);
    truth.clear();
    for (const auto& hits : all) {
      truth.emplace_back();
      for (const auto& h : hits)
        truth.back().push_back(h.item.id);
    }
    std::vector<float> gt(nq * 10);
    for (std::int64_t i = 0; i < nq; ++i)
      for (int r = 0; r < 10; ++r)
        gt[i * 10 + r] = std::stof(truth[i][r]);
    io::write_npy(dir + "/truth.npy", gt.data(), nq, 10);
    std::printf(
        ",\n \"flat\": {\"build_s\": %.1f, \"open_s\": %.4f, \"mean_ms\": %.2f, "
        "\"p50_ms\": %.2f, \"scan_gbs\": %.2f, \"recall_vs_batch\": %.4f}",
        flat_build, open_s, l.mean_ms, l.p50_ms, double(n) * d * 4 / (l.p50_ms / 1000) / 1e9,
        recall(ids, truth));
    std::fflush(stdout);
  }
  const auto wanted = [&](const char* part) {
    return only.empty() ||
           ("," + only + ",").find(std::string(",") + part + ",") != std::string::npos;
  };
  if (wanted("hnsw")) {
    const auto [path, build_s] = build(AnnKind::kHnsw, "hnsw.index");
    t0 = Clock::now();
    const Index index = Index::open(path);
    const double open_s = seconds_since(t0);
    SearchOptions o;
    o.k = 10;
    t0 = Clock::now();
    index.search(InputKind::kImage, q.data(), 1, o);
    const double first_s = seconds_since(t0);
    std::printf(
        ",\n \"hnsw\": {\"m\": 32, \"ef_construction\": 80, \"build_s\": %.1f, "
        "\"open_s\": %.4f, \"first_search_s\": %.2f, \"disk_mb\": %.1f, \"runs\": [",
        build_s, open_s, first_s, index.info().disk_bytes / 1e6);
    bool first = true;
    for (int ef : {16, 32, 64, 128, 256}) {
      o.hnsw_ef_search = ef;
      std::vector<std::vector<std::string>> ids;
      const Latency l = one_at_a_time(index, q, nq, d, o, &ids);
      std::printf(
          "%s{\"ef_search\": %d, \"mean_ms\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
          "\"recall10\": %.4f}",
          first ? "" : ", ", ef, l.mean_ms, l.p50_ms, l.p99_ms, recall(ids, truth));
      first = false;
    }
    std::printf("]}");
    std::fflush(stdout);
  }
  if (wanted("ivfpq")) {
    const auto [path, build_s] = build(AnnKind::kIvfPq, "ivfpq.index");
    const Index index = Index::open(path);
    std::int64_t ann_bytes = 0;
    for (const auto& e : fs::recursive_directory_iterator(path)) {
      if (e.path().extension() == ".faiss") ann_bytes += static_cast<std::int64_t>(e.file_size());
    }
    std::printf(
        ",\n \"ivfpq\": {\"nlist\": %lld, \"pq_m\": %lld, \"rescore\": %d, "
        "\"build_s\": %.1f, \"ann_file_mb\": %.1f, \"runs\": [",
        static_cast<long long>(4 * std::sqrt(double(n))), static_cast<long long>(d / 8),
        index.info().spec.ann.rescore_factor, build_s, ann_bytes / 1e6);
    bool first = true;
    for (const auto& [nprobe, rescore] :
         std::vector<std::pair<int, int>>{{16, 10}, {32, 10}, {64, 10}, {128, 10}, {32, 50},
                                          {64, 50}, {64, 100}}) {
      SearchOptions o;
      o.k = 10;
      o.ivf_nprobe = nprobe;
      o.rescore_factor = rescore;
      std::vector<std::vector<std::string>> ids;
      const Latency l = one_at_a_time(index, q, nq, d, o, &ids);
      std::printf("%s{\"nprobe\": %d, \"rescore\": %d, \"mean_ms\": %.3f, \"p50_ms\": %.3f, "
                  "\"recall10\": %.4f}",
                  first ? "" : ", ", nprobe, rescore, l.mean_ms, l.p50_ms, recall(ids, truth));
      first = false;
      std::fflush(stdout);
    }
    std::printf("]}");
  }
  std::printf(",\n \"max_rss_mb\": %lld}\n", static_cast<long long>(rss_mb()));
  return 0;
}
