// Re-ranking cost per candidate (issue #21), through the public API, three ways:
//   joint   - Embedder::match: text tower, vision tower and cross-modal layers per candidate
//             (what re-ranking did before the split path);
//   split   - retrieval::rerank with a cold feature cache: each candidate's image tower once
//             (features written to the cache), the text tower once per group, the cross-modal
//             layers per candidate;
//   cached  - retrieval::rerank again with the cache warm: features read from disk, the text
//             tower once per group and the cross-modal layers per candidate.
// Each way re-ranks the same candidates (the images given, repeated to --candidates) for one
// query text; the best of --reps runs is reported, per candidate, with the cache's size.
//
//   bench_rerank --model DIR --images a.jpg,b.png,... [--candidates 16] [--threads 2]
//                [--batch 8] [--reps 2] [--cache /tmp/rerank-cache] [--only joint,split,cached]
// (--only without split reuses the cache a previous run left; -1 marks a way not run)
// Prints one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "mmembed/embedder.h"
#include "mmembed/index.h"
#include "mmembed/retrieval.h"

namespace fs = std::filesystem;
using namespace mmembed;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string model, images_arg, cache = "/tmp/mmembed-bench-rerank-cache";
  std::string text = "a motorcycle parked in front of a red barn", only = "joint,split,cached";
  int threads = 2, reps = 2;
  std::size_t candidates = 16, batch = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model = v;
    else if (a == "--images")
      images_arg = v;
    else if (a == "--candidates")
      candidates = std::stoul(v);
    else if (a == "--threads")
      threads = std::stoi(v);
    else if (a == "--batch")
      batch = std::stoul(v);
    else if (a == "--reps")
      reps = std::stoi(v);
    else if (a == "--cache")
      cache = v;
    else if (a == "--text")
      text = v;
    else if (a == "--only")
      only = v;
    else {
      std::fprintf(stderr, "bench_rerank: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (model.empty() || images_arg.empty()) {
    std::fprintf(stderr, "usage: bench_rerank --model DIR --images a.jpg,b.png [...]\n");
    return 2;
  }
  std::vector<std::string> paths;
  std::stringstream ss(images_arg);
  for (std::string p; std::getline(ss, p, ',');)
    paths.push_back(p);
  // Distinct files (the cache keys by content): copies of the given images, each with one byte
  // appended (decoders ignore trailing bytes after the image's end marker).
  const fs::path work = fs::temp_directory_path() / "mmembed-bench-rerank-images";
  fs::remove_all(work);
  fs::create_directories(work);
  std::vector<SearchHit> hits;
  std::vector<Image> decoded;
  for (std::size_t i = 0; i < candidates; ++i) {
    const std::string& src = paths[i % paths.size()];
    const fs::path dst = work / (std::to_string(i) + fs::path(src).extension().string());
    fs::copy_file(src, dst);
    FILE* f = std::fopen(dst.c_str(), "ab");
    std::fputc(static_cast<int>(i / paths.size()), f);
    std::fclose(f);
    SearchHit h;
    h.item.id = std::to_string(i);
    h.item.image = dst.string();
    h.rank = static_cast<std::int64_t>(i) + 1;
    hits.push_back(h);
    decoded.push_back(Image::read(dst.string()));
  }
  EmbedderOptions eo;
  eo.threads = threads;
  eo.batch_size = batch;
  const Embedder e = Embedder::load(model, eo);
  const std::vector<std::string> texts(candidates, text);

  auto best_of = [&](auto&& f) {
    double best = 1e300;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
  };
  auto wanted = [&](const char* way) { return only.find(way) != std::string::npos; };
  const double joint = wanted("joint") ? best_of([&] { e.match(decoded, texts); }) : -1;
  retrieval::RerankOptions ro;
  ro.feature_cache = cache;
  std::size_t cached_hits = 0;
  const double split = wanted("split") ? best_of([&] {
    fs::remove_all(cache);
    retrieval::rerank(e, text, hits, ro);
  })
                                       : -1;
  const double cached = best_of([&] {
    retrieval::RerankStats st;
    retrieval::rerank(e, text, hits, ro, &st);
    cached_hits = st.cached;
  });
  std::uintmax_t cache_bytes = 0;
  for (const auto& f : fs::directory_iterator(cache))
    cache_bytes += f.file_size();
  const double n = static_cast<double>(candidates);
  std::printf(
      "{\"model\": \"%s\", \"candidates\": %zu, \"threads\": %d, \"batch\": %zu, \"reps\": %d, "
      "\"joint_s_per_candidate\": %.4f, \"split_cold_s_per_candidate\": %.4f, "
      "\"cached_s_per_candidate\": %.4f, \"cached_hits\": %zu, \"cache_bytes_per_image\": %ju}\n",
      model.c_str(), candidates, threads, batch, reps, joint < 0 ? -1.0 : joint / n,
      split < 0 ? -1.0 : split / n, cached / n, cached_hits, cache_bytes / candidates);
  fs::remove_all(work);
  return 0;
}
