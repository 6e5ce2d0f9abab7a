// mmembed index build|add|rm|info|stats|compact: collections on disk (include/mmembed/index.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/check.h"
#include "core/file.h"
#include "core/log.h"
#include "core/output_file.h"
#include "data/manifest.h"
#include "hub/progress.h"
#include "index/ann_json.h"
#include "index_util.h"
#include "mmembed/embedder.h"
#include "mmembed/hub.h"
#include "mmembed/index.h"
#include "mmembed/retrieval.h"
#include "mmembed/version.h"
#include "model_spec.h"

namespace fs = std::filesystem;

namespace mmembed::cli {
namespace {

struct IndexOptions {
  std::string index, model, revision = "main", input, kinds, metric = "cosine", ann = "auto";
  std::string progress = "auto", image_backend = "pil", pair_output = "cross", ids_file,
              dtype = "fp32";
  std::vector<std::string> ids;
  std::size_t batch_size = 8, chunk_size = 256;
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
  std::int64_t sample = 1000, neighbours = 10, flat_max_rows = 50'000;
  int hnsw_m = 32, ef_construction = 80, ef_search = 128, nprobe = 32, pq_m = 0;
  std::int64_t nlist = 0;
  bool json = false, missing_ok = false;
  std::string kind;
};

std::vector<InputKind> parse_kinds(const std::string& text) {
  std::vector<InputKind> kinds;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    const std::string k = text.substr(pos, end - pos);
    try {
      kinds.push_back(parse_input_kind(k));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(str_cat("--kinds: ", e.what()));
    }
    pos = end + 1;
  }
  return kinds;
}

// The manifest's items as index items (label kept; ids numbered when it has none).
std::vector<IndexItem> read_items(const std::string& input) {
  data::ManifestOptions mo;
  mo.need_image = false;
  mo.need_text = false;
  mo.check_paths = false;  // a missing image fails alone
  const data::Manifest m = data::read_dataset(input, mo);
  if (m.ids_numbered) core::info(str_cat(input, ": no id column; the items are numbered from 1"));
  std::vector<IndexItem> items;
  for (const data::Item& it : m.items)
    items.push_back({it.id, it.text, it.image, it.label, ""});
  MMEMBED_CHECK(!items.empty(), InvalidArgument, input, ": no items");
  return items;
}

int report_add(const retrieval::AddResult& r, const std::string& index, bool json) {
  if (json) {
    nlohmann::ordered_json j{{"index", index},
                             {"items", r.items},
                             {"added", r.added},
                             {"failed", r.failed.size()},
                             {"seconds", r.seconds}};
    j["failures"] = nlohmann::ordered_json::array();
    for (const auto& f : r.failed)
      j["failures"].push_back({{"id", f.id}, {"error", f.reason}});
    std::printf("%s\n",
                j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  }
  core::info(str_cat("added ", r.added, " of ", r.items, " items to ", index, " (", r.failed.size(),
                     " failed)"));
  constexpr std::size_t kShown = 10;
  for (std::size_t i = 0; i < r.failed.size() && i < kShown; ++i) {
    std::fprintf(stderr, "mmembed: %s: %s\n", escape_for_message(r.failed[i].id).c_str(),
                 escape_for_message(r.failed[i].reason, 300).c_str());
  }
  if (r.failed.size() > kShown) {
    std::fprintf(stderr, "mmembed: ... and %zu more (--json lists them all)\n",
                 r.failed.size() - kShown);
  }
  return r.failed.empty() ? 0 : 1;
}

retrieval::AddOptions add_options(const IndexOptions& opt, const std::string& work_dir,
                                  hub::ProgressBar& bar) {
  retrieval::AddOptions a;
  a.work_dir = work_dir;
  a.chunk_size = opt.chunk_size;
  a.max_image_pixels = opt.max_image_pixels;
  a.version = MMEMBED_VERSION;
  a.on_progress = [&bar, last = InputKind::kText, first = true](InputKind kind, std::size_t done,
                                                                std::size_t failed,
                                                                std::size_t total) mutable {
    if (first || kind != last) {
      bar.set_stage(str_cat("embed ", input_kind_name(kind)), total, "items");
      first = false;
      last = kind;
    }
    bar.set_done(done);
    (void)failed;
  };
  return a;
}

int run_build(const IndexOptions& opt, int threads) {
  const std::vector<IndexItem> items = read_items(opt.input);
  bool images = false, texts = false;
  for (const IndexItem& it : items)
    images |= !it.image.empty(), texts |= !it.text.empty();
  EmbedderOptions eo;
  eo.threads = threads;
  eo.batch_size = opt.batch_size;
  eo.image_backend = parse_image_backend(opt.image_backend);
  eo.dtype = parse_model_dtype(opt.dtype);
  eo.pair_output = parse_pair_output(opt.pair_output);
  const hub::ResolvedModel resolved = resolve_model(opt.model, opt.revision);
  const Embedder embedder = Embedder::load(resolved.dir.string(), eo);
  const std::string name = resolved.local_dir ? opt.model : resolved.repo_id;
  const std::string revision =
      resolved.local_dir ? "" : (resolved.commit.empty() ? opt.revision : resolved.commit);
  IndexSpec spec = retrieval::spec_for(embedder, name, revision, images, texts);
  if (!opt.kinds.empty()) spec.kinds = parse_kinds(opt.kinds);
  for (InputKind k : spec.kinds) {
    MMEMBED_CHECK(embedder.info().supports(k), Unsupported, opt.model, ": this ",
                  embedder.info().family, " model does not embed ", input_kind_name(k),
                  embedder.info().unsupported_reason.empty() ? "" : ": ",
                  embedder.info().unsupported_reason);
  }
  spec.metric = opt.metric;
  spec.ann.kind = parse_ann_kind(opt.ann);
  spec.ann.flat_max_rows = opt.flat_max_rows;
  spec.ann.hnsw_m = opt.hnsw_m;
  spec.ann.hnsw_ef_construction = opt.ef_construction;
  spec.ann.hnsw_ef_search = opt.ef_search;
  spec.ann.ivf_nlist = opt.nlist;
  spec.ann.ivf_nprobe = opt.nprobe;
  spec.ann.pq_m = opt.pq_m;
  // The embeddings are made first, in a work folder beside the index (resumable: rerunning the
  // command after a kill goes on from the last committed chunk), then the index is written.
  const std::string work = opt.index + ".build";
  // An interrupted build left an empty index and its work folder: go on with them (the batch
  // jobs resume from their committed chunks) when it is the same model and kinds.
  std::error_code ec;
  const bool resume =
      fs::is_directory(work, ec) && fs::exists(fs::path(opt.index) / "index.sqlite", ec);
  Index index = resume ? Index::open(opt.index, true) : Index::create(opt.index, spec);
  if (resume) {
    const IndexInfo& old = index.info();
    MMEMBED_CHECK(old.items == 0 && old.segments.empty() &&
                      old.spec.provenance.model_digest == spec.provenance.model_digest &&
                      old.spec.kinds == spec.kinds && old.spec.metric == spec.metric,
                  InvalidArgument, opt.index,
                  ": already exists (an index with items, or an interrupted build of another "
                  "model or kinds); choose a new folder, or remove it and ",
                  work);
    core::info(str_cat("resuming the interrupted build of ", opt.index, " (", work, ")"));
  }
  hub::ProgressBar bar("embed", items.size(), hub::ProgressBar::Unit::kCount,
                       hub::progress_display(hub::parse_progress_mode(opt.progress)));
  const retrieval::AddResult r =
      retrieval::add_items(index, embedder, items, add_options(opt, work, bar));
  bar.finish();
  return report_add(r, opt.index, opt.json);
}

int run_add(const IndexOptions& opt, int threads) {
  Index index = Index::open(opt.index, true);
  const std::vector<IndexItem> items = read_items(opt.input);
  const Embedder embedder =
      load_index_model(index.info(), opt.model, opt.revision, threads, opt.batch_size);
  hub::ProgressBar bar("embed", items.size(), hub::ProgressBar::Unit::kCount,
                       hub::progress_display(hub::parse_progress_mode(opt.progress)));
  const retrieval::AddResult r =
      retrieval::add_items(index, embedder, items, add_options(opt, opt.index + ".build", bar));
  bar.finish();
  return report_add(r, opt.index, opt.json);
}

int run_rm(const IndexOptions& opt) {
  std::vector<std::string> ids = opt.ids;
  if (!opt.ids_file.empty()) {
    for (std::string& l : read_lines(opt.ids_file)) {
      if (!l.empty()) ids.push_back(std::move(l));
    }
  }
  MMEMBED_CHECK(!ids.empty(), InvalidArgument, "index rm: no ids given");
  Index index = Index::open(opt.index, true);
  const std::int64_t n = index.remove(ids, !opt.missing_ok);
  if (opt.json) {
    std::printf(
        "%s\n",
        nlohmann::ordered_json{{"index", opt.index}, {"removed", n}, {"items", index.info().items}}
            .dump()
            .c_str());
  }
  core::info(str_cat("removed ", n, " items from ", opt.index, " (", index.info().items, " left)"));
  return 0;
}

int run_info(const IndexOptions& opt) {
  const Index index = Index::open(opt.index);
  const IndexInfo& i = index.info();
  const IndexProvenance& p = i.spec.provenance;
  nlohmann::ordered_json j;
  j["index"] = i.path;
  j["items"] = i.items;
  j["rows"] = i.rows;
  j["dim"] = i.spec.dim;
  j["metric"] = i.spec.metric;
  j["kinds"] = nlohmann::ordered_json::array();
  for (InputKind k : i.spec.kinds)
    j["kinds"].push_back(input_kind_name(k));
  j["model"] = {{"name", p.model},
                {"path", p.model_path},
                {"revision", p.revision},
                {"family", p.family},
                {"digest", p.model_digest},
                {"image_backend", p.image_backend},
                {"pair_output", p.pair_output},
                {"dtype", p.dtype}};
  const AnnOptions& a = i.spec.ann;
  j["ann"] = index::ann_to_json(a);
  j["segments"] = nlohmann::ordered_json::array();
  for (const IndexSegmentInfo& s : i.segments) {
    nlohmann::ordered_json sj{{"segment", s.segment}, {"rows", s.rows}, {"live", s.live}};
    for (const auto& [k, ak] : s.ann)
      sj["ann"][input_kind_name(k)] = ann_kind_name(ak);
    j["segments"].push_back(sj);
  }
  j["disk_bytes"] = i.disk_bytes;
  j["created"] = i.created;
  j["mmembed_version"] = i.mmembed_version;
  const auto replace = nlohmann::ordered_json::error_handler_t::replace;
  if (opt.json) {
    std::printf("%s\n", j.dump(-1, ' ', false, replace).c_str());
    return 0;
  }
  std::string kinds;
  for (InputKind k : i.spec.kinds)
    kinds += (kinds.empty() ? "" : ", ") + std::string(input_kind_name(k));
  std::printf("index      %s\n", escape_for_message(i.path, 1000).c_str());
  std::printf("items      %lld (%lld rows on disk)\n", static_cast<long long>(i.items),
              static_cast<long long>(i.rows));
  std::printf("vectors    %s; %zu dimensions, %s, %s\n", kinds.c_str(), i.spec.dim,
              i.spec.metric.c_str(), p.dtype.c_str());
  std::printf("model      %s%s%s (%s)\n", escape_for_message(p.model, 1000).c_str(),
              p.revision.empty() ? "" : " @ ", p.revision.c_str(), p.family.c_str());
  std::printf("digest     %s\n", p.model_digest.c_str());
  std::printf("ann        %s (segments under %lld rows are searched exactly)\n",
              ann_kind_name(a.kind), static_cast<long long>(a.flat_max_rows));
  for (const IndexSegmentInfo& s : i.segments) {
    std::string ann;
    for (const auto& [k, ak] : s.ann) {
      ann += (ann.empty() ? "" : ", ") + std::string(input_kind_name(k)) + " " + ann_kind_name(ak);
    }
    std::printf("segment    %lld: %lld rows, %lld live; %s\n", static_cast<long long>(s.segment),
                static_cast<long long>(s.rows), static_cast<long long>(s.live), ann.c_str());
  }
  std::printf("disk       %s\n", hub::format_bytes(static_cast<double>(i.disk_bytes)).c_str());
  std::printf("created    %s by mmembed %s\n", i.created.c_str(), i.mmembed_version.c_str());
  return 0;
}

int run_stats(const IndexOptions& opt) {
  const Index index = Index::open(opt.index);
  const InputKind kind = kind_option(opt.kind, index.info());
  const NeighbourStats s = index.neighbour_stats(kind, opt.sample, opt.neighbours);
  if (opt.json) {
    nlohmann::ordered_json j{{"index", opt.index},
                             {"kind", input_kind_name(kind)},
                             {"metric", index.info().spec.metric},
                             {"sampled", s.sampled},
                             {"neighbours", s.neighbours},
                             {"percentiles", s.percentiles},
                             {"nearest", s.nearest},
                             {"kth", s.kth}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s neighbours of %lld sampled items (%s; %s vectors):\n",
              index.info().spec.metric.c_str(), static_cast<long long>(s.sampled),
              opt.index.c_str(), input_kind_name(kind));
  std::printf("  %10s  %10s  %10s\n", "percentile", "nearest", str_cat(s.neighbours, "th").c_str());
  for (std::size_t i = 0; i < s.nearest.size(); ++i) {
    std::printf("  %10g  %10.4f  %10.4f\n", s.percentiles[i], s.nearest[i], s.kth[i]);
  }
  if (s.sampled == 0) std::printf("  (fewer than two items)\n");
  return 0;
}

int run_compact(const IndexOptions& opt) {
  Index index = Index::open(opt.index, true);
  const std::int64_t before = index.info().disk_bytes;
  index.compact();
  core::info(str_cat("compacted ", opt.index, ": ", index.info().items, " items in one segment, ",
                     hub::format_bytes(static_cast<double>(before)), " -> ",
                     hub::format_bytes(static_cast<double>(index.info().disk_bytes))));
  return 0;
}

void add_model_options(CLI::App* cmd, IndexOptions* opt, bool required) {
  auto* m = cmd->add_option("--model", opt->model,
                            required ? "Model folder or Hugging Face repo id (org/name)"
                                     : "Model folder or repo id; default: the index's own (which\n"
                                       "this must be: another model is refused)");
  if (required) m->required();
  cmd->add_option("--revision", opt->revision, "Hub revision when --model is a repo id")
      ->capture_default_str();
}

void add_embed_options(CLI::App* cmd, IndexOptions* opt) {
  bound<std::size_t>(cmd->add_option("--batch-size", opt->batch_size, "Inputs per model call"), 1,
                     kMaxBatchSize)
      ->capture_default_str();
  bound<std::size_t>(cmd->add_option("--chunk-size", opt->chunk_size,
                                     "Items per committed chunk of the resumable embedding work"),
                     1, 1'000'000)
      ->capture_default_str();
  bound<std::int64_t>(cmd->add_option("--max-image-pixels", opt->max_image_pixels,
                                      "Refuse images with more pixels than this; 0 = no limit"),
                      0, kMaxImagePixelsLimit)
      ->capture_default_str();
  cmd->add_option("--progress", opt->progress, "Progress bar: auto, always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_flag("--json", opt->json, "Print the result (counts, failures) as one JSON object");
}

}  // namespace

Runner add_index(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<IndexOptions>();
  CLI::App* index = app.add_subcommand(
      "index", "Collections for search: build an index of images and texts, add, remove, inspect");
  index->require_subcommand(1);
  index->footer(
      "An index is a folder: index.sqlite (items, provenance), segments/ (vectors as .npy, FAISS\n"
      "HNSW or IVF-PQ indexes for large segments). Search it with 'mmembed search', 'recommend'\n"
      "and 'dedupe'. See docs/index.md.");

  CLI::App* build =
      index->add_subcommand("build", "Embed a manifest's items with a model and write a new index");
  build->footer(
      "The manifest (JSONL, CSV, TSV, a .txt of texts, or an image folder) gives id, image, text\n"
      "and label. Each vector kind is embedded as 'embed --input' does, into INDEX.build/\n"
      "(rerun the command to resume after an interruption); an item that fails (unreadable\n"
      "image, empty text) is left out alone and reported. Default kinds: BridgeTower image,\n"
      "text and pair (cross_embeds); CLIP image and text; text models text.");
  build->add_option("-o,--output", opt->index, "The new index folder (must not exist)")->required();
  build->add_option("--input", opt->input, "The manifest or image folder")->required();
  add_model_options(build, opt.get(), true);
  build->add_option("--kinds", opt->kinds,
                    "Vector kinds to store, e.g. image,text (default: all\n"
                    "the model makes for what the items have)");
  build->add_option("--metric", opt->metric, "cosine, dot or euclidean")
      ->check(CLI::IsMember({"cosine", "dot", "euclidean"}))
      ->capture_default_str();
  build
      ->add_option("--ann", opt->ann,
                   "Approximate index per segment: auto (exact below --flat-max-rows, HNSW\n"
                   "above), flat (always exact), hnsw, ivfpq")
      ->check(CLI::IsMember({"auto", "flat", "hnsw", "ivfpq"}))
      ->capture_default_str();
  bound<std::int64_t>(build->add_option("--flat-max-rows", opt->flat_max_rows,
                                        "auto: segments with fewer rows are searched exactly"),
                      0, kMaxCount)
      ->capture_default_str();
  bound<int>(build->add_option("--hnsw-m", opt->hnsw_m, "HNSW links per node"), 2, 256)
      ->capture_default_str();
  bound<int>(build->add_option("--ef-construction", opt->ef_construction,
                               "HNSW candidates while building"),
             1, 100000)
      ->capture_default_str();
  bound<int>(build->add_option("--ef-search", opt->ef_search, "HNSW candidates while searching"), 1,
             100000)
      ->capture_default_str();
  bound<std::int64_t>(build->add_option("--nlist", opt->nlist, "IVF lists (0: 4 sqrt(rows))"), 0,
                      1 << 24)
      ->capture_default_str();
  bound<int>(build->add_option("--nprobe", opt->nprobe, "IVF lists visited per query"), 1, 1 << 24)
      ->capture_default_str();
  bound<int>(build->add_option("--pq-m", opt->pq_m, "PQ bytes per vector (0: dim / 8)"), 0, 4096)
      ->capture_default_str();
  build
      ->add_option("--pair-output", opt->pair_output,
                   "BridgeTower pair vectors: cross, pooled, text-cls, image-cls")
      ->check(CLI::IsMember({"cross", "pooled", "text-cls", "image-cls"}))
      ->capture_default_str();
  add_image_backend_option(build, &opt->image_backend);
  add_dtype_option(build, &opt->dtype);
  add_embed_options(build, opt.get());

  CLI::App* add = index->add_subcommand(
      "add", "Embed more items with the index's model and add them (one update)");
  add->add_option("index", opt->index, "The index folder")->required();
  add->add_option("--input", opt->input, "The manifest or image folder")->required();
  add_model_options(add, opt.get(), false);
  add_embed_options(add, opt.get());
  add->footer(
      "Items whose id is already in the index fail alone (remove them first to replace them).\n"
      "The update is all or nothing: a process killed during it leaves the index as it was.");

  CLI::App* rm = index->add_subcommand("rm", "Remove items by id (one update)");
  rm->add_option("index", opt->index, "The index folder")->required();
  rm->add_option("ids", opt->ids, "Ids to remove");
  rm->add_option("--ids-file", opt->ids_file, "A file of ids, one per line");
  rm->add_flag("--missing-ok", opt->missing_ok,
               "Ignore ids the index does not hold (default: refuse, removing nothing)");
  rm->add_flag("--json", opt->json, "Print the counts as JSON");

  CLI::App* info = index->add_subcommand("info", "Describe an index: model, kinds, size, segments");
  info->add_option("index", opt->index, "The index folder")->required();
  info->add_flag("--json", opt->json, "As one JSON object");

  CLI::App* stats = index->add_subcommand(
      "stats", "Percentiles of the items' nearest-neighbour scores (to choose thresholds)");
  stats->add_option("index", opt->index, "The index folder")->required();
  stats->add_option("--kind", opt->kind,
                    "image, text or pair (default: image, else pair, else text)");
  bound<std::int64_t>(stats->add_option("--sample", opt->sample, "Items sampled (evenly)"), 1,
                      1'000'000)
      ->capture_default_str();
  bound<std::int64_t>(
      stats->add_option("--neighbours", opt->neighbours, "Also report the score of this neighbour"),
      1, 1000)
      ->capture_default_str();
  stats->add_flag("--json", opt->json, "As one JSON object");

  CLI::App* compact = index->add_subcommand(
      "compact", "Rewrite the index as one segment without the removed items");
  compact->add_option("index", opt->index, "The index folder")->required();

  return [opt, build, add, rm, info, stats, compact, &global] {
    if (build->parsed()) return run_build(*opt, global.threads);
    if (add->parsed()) return run_add(*opt, global.threads);
    if (rm->parsed()) return run_rm(*opt);
    if (info->parsed()) return run_info(*opt);
    if (stats->parsed()) return run_stats(*opt);
    if (compact->parsed()) return run_compact(*opt);
    return 2;
  };
}

}  // namespace mmembed::cli
