// An index together with the model that made its vectors: building and growing it from items
// (images, captions), embedding queries with the right model, and re-ranking candidates with a
// matching head. The CLI (`index`, `search`, `recommend`), the server and the Python package all
// go through these functions.
//
//   Embedder e = Embedder::load(model_dir);
//   IndexSpec spec = retrieval::spec_for(e, "BridgeTower/bridgetower-large-itm-mlm-itc", "main");
//   Index index = Index::create("pairs.index", spec);
//   retrieval::AddResult r = retrieval::add_items(index, e, items, {.work_dir = "pairs.build"});
//
//   retrieval::check_same_model(index.info(), e);                 // before embedding queries
//   Embeddings q = e.embed_texts(texts);
//   auto hits = index.search(InputKind::kImage, q.data.data(), q.rows, {.k = 20});
//   hits[0] = retrieval::rerank(e, texts[0], hits[0], {.keep = 10});  // ITM head
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mmembed/embedder.h"
#include "mmembed/index.h"

namespace mmembed::retrieval {

// The vector kinds an index of this model holds when the items have images and/or texts:
// BridgeTower with ITC heads: image, text, pair; CLIP: image, text; text models: text.
std::vector<InputKind> default_kinds(const ModelInfo& model, bool have_images, bool have_texts);

// An IndexSpec for vectors made by `embedder` (dim, kinds for items with images and texts,
// provenance: `model_name` as the user named it, `revision`, the family, model_digest()).
IndexSpec spec_for(const Embedder& embedder, const std::string& model_name,
                   const std::string& revision, bool have_images = true, bool have_texts = true);

// InvalidArgument when `embedder` is not the model the index was built with (another digest or
// dimension), naming both; also when a BridgeTower index used another pair output or image
// backend.
void check_same_model(const IndexInfo& index, const Embedder& embedder);

struct AddOptions {
  // Resumable work: each kind's embeddings go to WORK_DIR/<kind>/ (a batch job, see `embed
  // --input`), so that a killed build resumes; removed after a successful add.
  std::string work_dir;
  std::size_t chunk_size = 256;
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
  std::string version;  // recorded in the work folders' run.json
  // After each model batch: the kind being embedded, items done and failed so far, total.
  std::function<void(InputKind, std::size_t done, std::size_t failed, std::size_t total)>
      on_progress;
};

struct AddFailure {
  std::string id;
  std::string reason;  // "image: cannot decode ..." (the kind, then the batch job's error)
};

struct AddResult {
  std::size_t items = 0, added = 0;
  std::vector<AddFailure> failed;  // items not added (an item is added only with every kind)
  double seconds = 0;
};

// Embeds every kind the index holds for each item (images and texts read from the items' paths;
// URLs fail alone: download them first) and adds the items that succeeded in one update.
// check_same_model() first; an item whose id is already in the index fails alone.
AddResult add_items(Index& index, const Embedder& embedder, const std::vector<IndexItem>& items,
                    const AddOptions& options);

struct RerankOptions {
  std::int64_t keep = 0;  // results kept after re-ranking; 0 = all candidates
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
  // A folder keeping each candidate image's match features (Embedder::image_match_features),
  // keyed by the model and the image file's bytes, so that a candidate seen before skips its
  // image tower: for BridgeTower only the query's text tower and the cross-modal layers run.
  // About 11 MB per image for bridgetower-large (float32); empty = no cache.
  std::string feature_cache;
  // The least recently used files are removed past this size.
  std::uint64_t feature_cache_max_bytes = std::uint64_t{8} << 30;
};

struct RerankStats {
  std::size_t scored = 0;      // candidates scored by the head
  std::size_t cached = 0;      // of them, image features read from the cache
  std::size_t unreadable = 0;  // candidates without an image or whose image failed
  double seconds = 0;
};

// Re-scores candidates by how well each candidate's image matches `text` and sorts by that:
//  - BridgeTower: the image-text matching head's probability (SearchHit::score becomes it);
//  - CLIP: softmax over the candidates of cosine * exp(logit_scale).
// The work: per candidate its image tower (or its cached features), then per group of up to
// 16 candidates the text's side once and what joins the two (Embedder::match_text). Scores equal
// Embedder::match's. Candidates without an image, or whose image cannot be read, keep their
// place after the scored ones (their score becomes NaN); ranks are renumbered. Unsupported for
// text models; IoError when feature_cache names something that is not a folder.
std::vector<SearchHit> rerank(const Embedder& embedder, const std::string& text,
                              const std::vector<SearchHit>& candidates,
                              const RerankOptions& options = {}, RerankStats* stats = nullptr);

}  // namespace mmembed::retrieval
