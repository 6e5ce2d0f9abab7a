// Reduced precision against fp32 (issue #22): the same inputs embedded by one model loaded in
// fp32 and in bf16, through the public API. Reports the per-vector cosine of each bf16 vector to
// its fp32 vector (minimum, 1st percentile, median) and the time per item of each precision
// (best of --reps passes, the two interleaved pass by pass).
//
//   bench_dtype --model DIR --kind text|image|pair --manifest FILE.tsv [--limit N]
//               [--batch 8] [--threads 2] [--reps 3] [--dtype bf16]
// The manifest is a TSV with a header naming `image` and/or `text` columns (image paths
// relative to the manifest's folder), e.g. tests/data/toy-scenes/manifest.tsv. Prints one JSON
// object.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mmembed/embedder.h"

namespace fs = std::filesystem;
using namespace mmembed;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string f; std::getline(ss, f, '\t');) out.push_back(f);
  return out;
}

Embeddings run(const Embedder& e, InputKind kind, const std::vector<Image>& images,
               const std::vector<std::string>& texts) {
  switch (kind) {
    case InputKind::kText: return e.embed_texts(texts);
    case InputKind::kImage: return e.embed_images(images);
    case InputKind::kPair: return e.embed_pairs(images, texts);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, kind_name = "image", manifest, dtype = "bf16";
  std::size_t limit = 0, batch = 8;
  int threads = 2, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model") model = v;
    else if (a == "--kind") kind_name = v;
    else if (a == "--manifest") manifest = v;
    else if (a == "--limit") limit = std::stoul(v);
    else if (a == "--batch") batch = std::stoul(v);
    else if (a == "--threads") threads = std::stoi(v);
    else if (a == "--reps") reps = std::stoi(v);
    else if (a == "--dtype") dtype = v;
    else {
      std::fprintf(stderr, "bench_dtype: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (model.empty() || manifest.empty()) {
    std::fprintf(stderr, "usage: bench_dtype --model DIR --kind K --manifest FILE.tsv\n");
    return 2;
  }
  const InputKind kind = parse_input_kind(kind_name);
  std::ifstream in(manifest);
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = split_tabs(line);
  const auto col = [&](const char* name) -> int {
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  const int ci = col("image"), ct = col("text");
  std::vector<Image> images;
  std::vector<std::string> texts;
  const fs::path base = fs::path(manifest).parent_path();
  while (std::getline(in, line) && (limit == 0 || std::max(images.size(), texts.size()) < limit)) {
    const std::vector<std::string> f = split_tabs(line);
    if (kind != InputKind::kText) images.push_back(Image::read((base / f.at(ci)).string()));
    if (kind != InputKind::kImage) texts.push_back(f.at(ct));
  }
  const std::size_t n = std::max(images.size(), texts.size());
  EmbedderOptions o;
  o.threads = threads;
  o.batch_size = batch;
  const Embedder fp32 = Embedder::load(model, o);
  o.dtype = parse_model_dtype(dtype);
  const Embedder low = Embedder::load(model, o);
  double best_fp32 = 1e300, best_low = 1e300;
  Embeddings a, b;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    a = run(fp32, kind, images, texts);
    best_fp32 = std::min(best_fp32, std::chrono::duration<double>(Clock::now() - t0).count());
    t0 = Clock::now();
    b = run(low, kind, images, texts);
    best_low = std::min(best_low, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::vector<double> cos(n);
  for (std::size_t i = 0; i < n; ++i) {
    double dot = 0, na = 0, nb = 0;
    for (std::size_t k = 0; k < a.dim; ++k) {
      dot += double(a.row(i)[k]) * b.row(i)[k];
      na += double(a.row(i)[k]) * a.row(i)[k];
      nb += double(b.row(i)[k]) * b.row(i)[k];
    }
    cos[i] = dot / std::sqrt(na * nb);
  }
  std::sort(cos.begin(), cos.end());
  std::printf(
      "{\"model\": \"%s\", \"kind\": \"%s\", \"dtype\": \"%s\", \"items\": %zu, \"batch\": %zu, "
      "\"threads\": %d, \"reps\": %d, \"cosine_min\": %.7f, \"cosine_p01\": %.7f, "
      "\"cosine_median\": %.7f, \"fp32_s_per_item\": %.5f, \"low_s_per_item\": %.5f, "
      "\"speedup\": %.3f}\n",
      model.c_str(), kind_name.c_str(), dtype.c_str(), n, batch, threads, reps, cos.front(),
      cos[n / 100], cos[n / 2], best_fp32 / n, best_low / n, best_fp32 / best_low);
  return 0;
}
