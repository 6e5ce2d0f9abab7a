#include "mmembed/retrieval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/check.h"
#include "core/file.h"
#include "data/manifest.h"
#include "data/points.h"
#include "embed/batch_job.h"
#include "retrieval/feature_cache.h"

namespace fs = std::filesystem;

namespace mmembed::retrieval {

std::vector<InputKind> default_kinds(const ModelInfo& model, bool have_images, bool have_texts) {
  std::vector<InputKind> kinds;
  if (have_images && model.image) kinds.push_back(InputKind::kImage);
  if (have_texts && model.text) kinds.push_back(InputKind::kText);
  if (have_images && have_texts && model.pair && model.family == "bridgetower") {
    kinds.push_back(InputKind::kPair);
  }
  MMEMBED_CHECK(!kinds.empty(), Unsupported, model.path, ": this ", model.family,
                " model embeds none of what the items have (",
                have_images && have_texts ? "images and texts"
                : have_images             ? "images"
                                          : "texts",
                ")", model.unsupported_reason.empty() ? "" : ": ", model.unsupported_reason);
  return kinds;
}

IndexSpec spec_for(const Embedder& embedder, const std::string& model_name,
                   const std::string& revision, bool have_images, bool have_texts) {
  const ModelInfo& info = embedder.info();
  IndexSpec spec;
  spec.dim = info.dim;
  spec.kinds = default_kinds(info, have_images, have_texts);
  IndexProvenance& p = spec.provenance;
  p.model = model_name.empty() ? info.path : model_name;
  p.model_path = fs::absolute(info.path).lexically_normal().string();
  p.revision = revision;
  p.family = info.family;
  p.model_digest = model_digest(info.path);
  p.image_backend = image_backend_name(embedder.options().image_backend);
  p.pair_output = pair_output_name(embedder.options().pair_output);
  p.dtype = embedder.options().dtype == ModelDtype::kFp32
                ? "float32"
                : model_dtype_name(embedder.options().dtype);
  return spec;
}

void check_same_model(const IndexInfo& index, const Embedder& embedder) {
  const IndexProvenance& p = index.spec.provenance;
  const std::string digest = model_digest(embedder.info().path);
  MMEMBED_CHECK(digest == p.model_digest && embedder.info().dim == index.spec.dim, InvalidArgument,
                index.path, " was built with the model '", p.model, "' (", p.model_digest,
                "); the query model '", embedder.info().path, "' is another one (", digest,
                "): its vectors are not comparable; use the index's model");
  const std::string backend = image_backend_name(embedder.options().image_backend);
  MMEMBED_CHECK(p.image_backend.empty() || p.image_backend == backend, InvalidArgument, index.path,
                ": its images were embedded with the '", p.image_backend,
                "' image backend, the query uses '", backend, "'");
  const std::string pair = pair_output_name(embedder.options().pair_output);
  MMEMBED_CHECK(p.pair_output.empty() || p.pair_output == pair, InvalidArgument, index.path,
                ": its pairs are '", p.pair_output, "' vectors, the query asks for '", pair, "'");
}

namespace {

// id -> reason, from a batch job's errors.jsonl.
std::unordered_map<std::string, std::string> read_errors(const fs::path& path) {
  std::unordered_map<std::string, std::string> out;
  data::for_each_json_object(read_input_file(path.string(), kMaxTextDataFileBytes), path.string(),
                             [&](std::size_t, const nlohmann::json& j) {
                               out[j.value("id", "")] = j.value("error", "failed");
                             });
  return out;
}

}  // namespace

AddResult add_items(Index& index, const Embedder& embedder, const std::vector<IndexItem>& items,
                    const AddOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  check_same_model(index.info(), embedder);
  MMEMBED_CHECK(!options.work_dir.empty(), InvalidArgument, "add_items needs a work folder");
  AddResult result;
  result.items = items.size();
  std::vector<embed::BatchItem> batch;
  std::unordered_set<std::string> ids;
  for (const IndexItem& it : items) {
    MMEMBED_CHECK(ids.insert(it.id).second, InvalidArgument, "id '", it.id,
                  "' appears twice among the items");
    if (index.contains(it.id)) {
      result.failed.push_back({it.id, "already in the index (remove it first to replace it)"});
      continue;
    }
    batch.push_back({it.id, it.text, it.image, it.label});
  }
  const std::vector<InputKind>& kinds = index.info().spec.kinds;
  // Per kind: id -> row of its embeddings, and the reasons of the failed.
  std::map<InputKind, data::EmbeddingFolder> done;
  std::unordered_map<std::string, std::string> failures;
  for (InputKind kind : kinds) {
    std::vector<embed::BatchItem> kind_items = batch;
    for (embed::BatchItem& it : kind_items) {
      if (kind == InputKind::kText) it.image.clear();
      if (kind == InputKind::kImage) it.text.clear();
      if (kind != InputKind::kText && !it.image.empty() && data::is_url(it.image)) {
        it.image.clear();  // fails alone below
        failures.emplace(it.id, "its image is a URL: download it first (mmembed fetch)");
      }
    }
    embed::BatchJobOptions job;
    job.kind = kind;
    job.out_dir = (fs::path(options.work_dir) / input_kind_name(kind)).string();
    job.chunk_size = options.chunk_size;
    job.max_image_pixels = options.max_image_pixels;
    job.model_name = index.info().spec.provenance.model;
    job.revision = index.info().spec.provenance.revision;
    job.version = options.version;
    if (options.on_progress) {
      job.on_progress = [&](const embed::BatchProgress& p) {
        options.on_progress(kind, p.done, p.failed, p.total);
      };
    }
    std::error_code ec;
    fs::create_directories(job.out_dir, ec);
    MMEMBED_CHECK(!ec, IoError, job.out_dir, ": cannot create (", ec.message(), ")");
    if (kind_items.empty()) continue;
    embed::run_batch_job(embedder, kind_items, job);
    for (const auto& [id, reason] : read_errors(fs::path(job.out_dir) / "errors.jsonl")) {
      failures.emplace(id, str_cat(input_kind_name(kind), ": ", reason));
    }
    done.emplace(kind, data::read_embedding_folder(job.out_dir));
  }
  // The items every kind embedded, in input order.
  std::map<InputKind, std::unordered_map<std::string, std::size_t>> row_of;
  for (const auto& [kind, f] : done) {
    for (std::size_t r = 0; r < f.points.ids.size(); ++r)
      row_of[kind][f.points.ids[r]] = r;
  }
  std::vector<IndexItem> ok;
  std::map<InputKind, std::vector<float>> vecs;
  const std::size_t d = index.info().spec.dim;
  for (const IndexItem& it : items) {
    if (index.contains(it.id)) continue;
    bool all = !done.empty();
    for (InputKind kind : kinds)
      all = all && row_of[kind].count(it.id);
    if (!all) {
      auto f = failures.find(it.id);
      result.failed.push_back({it.id, f != failures.end() ? f->second : "not embedded"});
      continue;
    }
    ok.push_back(it);
    for (InputKind kind : kinds) {
      const data::EmbeddingFolder& f = done.at(kind);
      MMEMBED_CHECK(static_cast<std::size_t>(f.matrix.cols) == d, FormatError, f.dir.string(),
                    ": vectors of ", f.matrix.cols, " dimensions; the index has ", d);
      const float* v = f.matrix.data.data() + row_of[kind].at(it.id) * d;
      vecs[kind].insert(vecs[kind].end(), v, v + d);
    }
  }
  std::map<InputKind, std::span<const float>> spans;
  for (const auto& [kind, v] : vecs)
    spans.emplace(kind, std::span<const float>(v));
  if (!ok.empty()) index.add(ok, spans);
  result.added = ok.size();
  std::error_code ec;
  fs::remove_all(options.work_dir, ec);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

std::vector<SearchHit> rerank(const Embedder& embedder, const std::string& text,
                              const std::vector<SearchHit>& candidates,
                              const RerankOptions& options, RerankStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelInfo& info = embedder.info();
  MMEMBED_CHECK(info.match, Unsupported, info.path, ": this ", info.family,
                " model has no way to match an image with a text, so it cannot re-rank");
  MMEMBED_CHECK(options.keep >= 0, InvalidArgument, "rerank keep must be >= 0");
  std::optional<FeatureCache> cache;
  if (!options.feature_cache.empty()) {
    cache.emplace(
        options.feature_cache,
        str_cat(model_digest(info.path), " ", image_backend_name(embedder.options().image_backend)),
        info.match_features_shape, options.feature_cache_max_bytes);
  }
  RerankStats st;
  std::vector<MatchScore> m(candidates.size());
  std::vector<bool> scored(candidates.size(), false);
  // Groups of candidates, so that the features held at once stay bounded (11 MB per image for
  // bridgetower-large); the text's side runs once per group.
  constexpr std::size_t kGroup = 16;
  bool stored = false;
  for (std::size_t g0 = 0; g0 < candidates.size(); g0 += kGroup) {
    const std::size_t g1 = std::min(candidates.size(), g0 + kGroup);
    std::vector<ImageMatchFeatures> features(g1 - g0);
    std::vector<bool> have(g1 - g0, false);
    std::vector<Image> images;
    std::vector<std::size_t> image_of;  // index in the group per decoded image
    std::vector<std::string> keys(g1 - g0);
    for (std::size_t i = g0; i < g1; ++i) {
      const std::string& path = candidates[i].item.image;
      if (path.empty()) continue;
      try {
        // Read once: the bytes key the cache, and are decoded only on a miss.
        const std::vector<std::uint8_t> bytes = read_input_file_bytes(path, kMaxImageFileBytes);
        if (cache) {
          keys[i - g0] = cache->key(bytes);
          if (auto f = cache->load(keys[i - g0])) {
            features[i - g0] = std::move(*f);
            have[i - g0] = true;
            ++st.cached;
            continue;
          }
        }
        images.push_back(Image::decode(bytes.data(), bytes.size(), path, options.max_image_pixels));
        image_of.push_back(i - g0);
      } catch (const Error&) {
        // Unreadable now (moved, deleted): the candidate keeps its place after the scored ones.
      }
    }
    if (!images.empty()) {
      std::vector<ImageMatchFeatures> computed = embedder.image_match_features(images);
      for (std::size_t j = 0; j < computed.size(); ++j) {
        const std::size_t k = image_of[j];
        if (cache) {
          cache->store(keys[k], computed[j]);
          stored = true;
        }
        features[k] = std::move(computed[j]);
        have[k] = true;
      }
    }
    std::vector<ImageMatchFeatures> batch;
    std::vector<std::size_t> at;
    for (std::size_t k = 0; k < features.size(); ++k) {
      if (!have[k]) continue;
      batch.push_back(std::move(features[k]));
      at.push_back(g0 + k);
    }
    if (batch.empty()) continue;
    const std::vector<MatchScore> part = embedder.match_text(text, batch);
    for (std::size_t j = 0; j < part.size(); ++j) {
      m[at[j]] = part[j];
      scored[at[j]] = true;
    }
  }
  if (cache && stored) cache->trim();

  std::vector<double> score(candidates.size(), std::numeric_limits<double>::quiet_NaN());
  double top = -INFINITY;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (!scored[i]) continue;
    ++st.scored;
    if (m[i].probability) {
      score[i] = *m[i].probability;
    } else {
      top = std::max(top, m[i].scaled_logit.value_or(*m[i].cosine));
    }
  }
  if (std::isfinite(top)) {
    // CLIP: softmax of the scaled logits over the candidates.
    double sum = 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
      if (scored[i]) sum += std::exp(m[i].scaled_logit.value_or(*m[i].cosine) - top);
    }
    for (std::size_t i = 0; i < m.size(); ++i) {
      if (scored[i]) score[i] = std::exp(m[i].scaled_logit.value_or(*m[i].cosine) - top) / sum;
    }
  }
  st.unreadable = candidates.size() - st.scored;
  std::vector<std::size_t> order(candidates.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const bool na = std::isnan(score[a]), nb = std::isnan(score[b]);
    if (na != nb) return nb;  // scored first
    return !na && score[a] > score[b];
  });
  std::vector<SearchHit> out;
  const std::size_t keep =
      options.keep > 0 ? std::min<std::size_t>(options.keep, order.size()) : order.size();
  for (std::size_t r = 0; r < keep; ++r) {
    SearchHit h = candidates[order[r]];
    h.rank = static_cast<std::int64_t>(r) + 1;
    h.score = score[order[r]];
    out.push_back(std::move(h));
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stats != nullptr) *stats = st;
  return out;
}

}  // namespace mmembed::retrieval
