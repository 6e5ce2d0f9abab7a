// mmembed search | recommend | dedupe: what an index is for (include/mmembed/index.h,
// include/mmembed/retrieval.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/check.h"
#include "core/file.h"
#include "core/log.h"
#include "core/output_file.h"
#include "data/points.h"
#include "index_util.h"
#include "io/matrix.h"
#include "mmembed/embedder.h"
#include "mmembed/index.h"
#include "mmembed/retrieval.h"
#include "text/unicode.h"

namespace fs = std::filesystem;

namespace mmembed::cli {
namespace {

struct SearchCliOptions {
  std::string index, model, revision = "main", kind, rerank = "none", queries_file, vectors_file;
  std::vector<std::string> texts, images, pairs, ids, filters, like, unlike;
  std::int64_t k = 10, rerank_k = 0, neighbours = 10, mmr_candidates = 0;
  std::string rerank_cache;
  std::uint64_t rerank_cache_mb = 8192;
  int ef_search = 0, nprobe = 0, rescore = 0;
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
  double weight = 1.0, mmr = 1.0, unlike_weight = 1.0, threshold = 0.95;
  bool json = false, csv = false, exact = false;
  std::string output, manifest_out;
};

// One query: what it is and how to show it.
struct Query {
  InputKind modality = InputKind::kText;  // text, image or pair; or an id (from_id)
  std::string text, image, id;
  bool from_id = false;
  std::int64_t vector_row = -1;  // a row of --vectors
  nlohmann::ordered_json describe() const {
    nlohmann::ordered_json j;
    if (vector_row >= 0) j["vector_row"] = vector_row;
    if (from_id) j["id"] = id;
    if (!image.empty()) j["image"] = image;
    if (!text.empty()) j["text"] = text;
    return j;
  }
  std::string heading(InputKind searched, std::size_t n) const {
    const char* what = vector_row >= 0 ? "vector" : from_id ? "item" : input_kind_name(modality);
    std::string q = vector_row >= 0                 ? str_cat("vector row ", vector_row)
                    : from_id                       ? "id " + id
                    : modality == InputKind::kText  ? "\"" + text + "\""
                    : modality == InputKind::kImage ? image
                                                    : image + " + \"" + text + "\"";
    return str_cat("query ", escape_for_message(q, 120), " (", what, " -> ",
                   input_kind_name(searched), ", ", n, " results)");
  }
};

std::vector<Query> collect_queries(const SearchCliOptions& opt) {
  std::vector<Query> qs;
  for (const std::string& t : opt.texts)
    qs.push_back({InputKind::kText, t, "", "", false});
  for (const std::string& i : opt.images)
    qs.push_back({InputKind::kImage, "", i, "", false});
  for (std::size_t i = 0; i + 1 < opt.pairs.size(); i += 2) {
    qs.push_back({InputKind::kPair, opt.pairs[i + 1], opt.pairs[i], "", false});
  }
  for (const std::string& id : opt.ids)
    qs.push_back({InputKind::kText, "", "", id, true});
  if (!opt.queries_file.empty()) {
    // .jsonl: objects with "text", "image" (both: a pair) or "id"; anything else: one text per
    // line.
    const std::string ext = fs::path(opt.queries_file).extension().string();
    if (ext == ".jsonl" || ext == ".ndjson") {
      const std::string all = read_input_file(opt.queries_file, kMaxTextDataFileBytes);
      data::for_each_json_object(
          all, opt.queries_file, [&](std::size_t line, const nlohmann::json& j) {
            Query q;
            auto str = [&](const char* key) {
              if (!j.contains(key)) return std::string();
              MMEMBED_CHECK(j[key].is_string(), FormatError, opt.queries_file, ":", line, ": '",
                            key, "' must be a string");
              return j[key].get<std::string>();
            };
            q.text = str("text");
            q.image = str("image");
            q.id = str("id");
            q.from_id = !q.id.empty() && q.text.empty() && q.image.empty();
            MMEMBED_CHECK(q.from_id || !q.text.empty() || !q.image.empty(), FormatError,
                          opt.queries_file, ":", line, ": no text, image or id");
            q.modality = !q.image.empty() && !q.text.empty() ? InputKind::kPair
                         : !q.image.empty()                  ? InputKind::kImage
                                                             : InputKind::kText;
            if (!q.from_id) q.id.clear();
            qs.push_back(q);
          });
    } else {
      for (std::string& l : read_lines(opt.queries_file)) {
        if (l.find_first_not_of(" \t") != std::string::npos)
          qs.push_back({InputKind::kText, l, "", "", false});
      }
    }
  }
  MMEMBED_CHECK(!qs.empty() || !opt.vectors_file.empty(), InvalidArgument,
                "no query: give --text, --image, --pair, --id, --queries FILE or --vectors FILE");
  for (std::size_t i = 0; i < qs.size(); ++i) {
    if (!qs[i].text.empty()) text::unicode::validate_utf8(qs[i].text, str_cat("query ", i + 1));
  }
  return qs;
}

bool has_kind(const IndexInfo& info, InputKind k) {
  for (InputKind h : info.spec.kinds) {
    if (h == k) return true;
  }
  return false;
}

// The stored vectors a query searches: --kind, else the query's own modality where the index
// has it (an image finds images, a pair pairs), a text finds images first (cross-modal
// retrieval), then pairs, then texts.
InputKind searched_kind(const SearchCliOptions& opt, const IndexInfo& info, const Query& q) {
  if (q.modality == InputKind::kPair && !q.from_id && q.vector_row < 0) {
    return kind_option(opt.kind, info, {InputKind::kPair, InputKind::kImage, InputKind::kText});
  }
  return kind_option(opt.kind, info);
}

std::vector<SearchFilter> parse_filters(const std::vector<std::string>& filters) {
  std::vector<SearchFilter> out;
  for (const std::string& f : filters)
    out.push_back(parse_search_filter(f));
  return out;
}

int run_search(const SearchCliOptions& opt, int threads) {
  const ResultFormat format = result_format(opt.json, opt.csv);
  const Index index = Index::open(opt.index);
  const IndexInfo& info = index.info();
  std::vector<Query> queries = collect_queries(opt);
  // Precomputed query vectors (e.g. `mmembed embed ... -o q.npy` with the index's model): each
  // row one query; they must have the index's dimension.
  io::Matrix vectors;
  if (!opt.vectors_file.empty()) {
    vectors = io::read_matrix(opt.vectors_file);
    MMEMBED_CHECK(vectors.cols == static_cast<std::int64_t>(info.spec.dim), InvalidArgument,
                  opt.vectors_file, ": vectors of ", vectors.cols, " dimensions; ", opt.index,
                  " holds ", info.spec.dim, "-dimensional vectors of '", info.spec.provenance.model,
                  "' (embed the queries with that model)");
    for (std::int64_t r = 0; r < vectors.rows; ++r) {
      Query q;
      q.vector_row = r;
      q.modality = InputKind::kImage;
      queries.push_back(q);
    }
  }
  const bool rerank = opt.rerank == "itm";
  MMEMBED_CHECK(rerank || opt.rerank_cache.empty(), InvalidArgument,
                "--rerank-cache keeps features for --rerank itm, which is not asked for");
  if (rerank) {
    for (const Query& q : queries) {
      MMEMBED_CHECK(
          !q.text.empty(), InvalidArgument,
          "--rerank itm scores the candidates against the query's text: a query without "
          "one (",
          q.describe().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
          ") cannot be re-ranked");
    }
  }
  // A --model given is checked against the index even when no query needs it.
  bool need_model = rerank || !opt.model.empty();
  for (const Query& q : queries)
    need_model |= !q.from_id && q.vector_row < 0;
  std::optional<Embedder> embedder;
  if (need_model) embedder.emplace(load_index_model(info, opt.model, opt.revision, threads));
  SearchOptions so;
  so.k = rerank
             ? std::max(opt.k, opt.rerank_k > 0 ? opt.rerank_k : std::max<std::int64_t>(20, opt.k))
             : opt.k;
  so.filters = parse_filters(opt.filters);
  so.exact = opt.exact;
  so.hnsw_ef_search = opt.ef_search;
  so.ivf_nprobe = opt.nprobe;
  so.rescore_factor = opt.rescore;
  if (format == ResultFormat::kCsv) print_csv_header();
  int status = 0;
  for (const Query& q : queries) {
    const InputKind kind = searched_kind(opt, info, q);
    MMEMBED_CHECK(has_kind(info, kind), InvalidArgument, opt.index, ": the index holds no ",
                  input_kind_name(kind), " vectors");
    std::vector<float> vec;
    SearchOptions o = so;
    try {
      if (q.vector_row >= 0) {
        const float* row = vectors.data.data() + q.vector_row * vectors.cols;
        vec.assign(row, row + vectors.cols);
      } else if (q.from_id) {
        vec = index.vector(q.id, kind);
        o.exclude_ids = {q.id};
      } else {
        std::vector<Image> images;
        if (!q.image.empty()) images.push_back(Image::read(q.image, opt.max_image_pixels));
        const std::vector<std::string> texts =
            q.text.empty() ? std::vector<std::string>{} : std::vector<std::string>{q.text};
        const Embeddings e = q.modality == InputKind::kText ? embedder->embed_texts(texts)
                             : q.modality == InputKind::kImage
                                 ? embedder->embed_images(images)
                                 : embedder->embed_pairs(images, texts);
        vec.assign(e.data.begin(), e.data.end());
      }
    } catch (const Error& e) {
      // A bad query (unreadable image, unknown id) fails alone; the others still run.
      std::fprintf(stderr, "mmembed: %s\n", printable_message(e.what()).c_str());
      status = 1;
      continue;
    }
    std::vector<SearchHit> hits = index.search(kind, vec.data(), 1, o)[0];
    if (rerank) {
      retrieval::RerankOptions ro;
      ro.keep = opt.k;
      ro.max_image_pixels = opt.max_image_pixels;
      ro.feature_cache = opt.rerank_cache;
      ro.feature_cache_max_bytes = opt.rerank_cache_mb << 20;
      retrieval::RerankStats st;
      hits = retrieval::rerank(*embedder, q.text, hits, ro, &st);
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.2f", st.seconds);
      core::detail(str_cat("re-ranked ", st.scored, " candidates (", st.cached,
                           " image features from the cache, ", st.unreadable,
                           " without a readable image) in ", secs, " s"));
    }
    print_hits(format, q.describe(), q.heading(kind, hits.size()), hits);
  }
  return status;
}

int run_recommend(const SearchCliOptions& opt, int threads) {
  const ResultFormat format = result_format(opt.json, opt.csv);
  const Index index = Index::open(opt.index);
  const IndexInfo& info = index.info();
  const InputKind kind = kind_option(opt.kind, info);
  std::vector<float> text_vec;
  MMEMBED_CHECK(opt.texts.size() <= 1, InvalidArgument, "recommend takes one --text");
  if (!opt.texts.empty()) {
    const Embedder e = load_index_model(info, opt.model, opt.revision, threads);
    text_vec = e.embed_texts(opt.texts).data;
  }
  RecommendOptions ro;
  ro.k = opt.k;
  ro.mmr_lambda = opt.mmr;
  ro.mmr_candidates = opt.mmr_candidates;
  ro.unlike_weight = opt.unlike_weight;
  ro.filters = parse_filters(opt.filters);
  const std::vector<SearchHit> hits =
      index.recommend(kind, opt.like, opt.unlike, text_vec, opt.weight, ro);
  nlohmann::ordered_json q;
  q["like"] = opt.like;
  if (!opt.unlike.empty()) q["unlike"] = opt.unlike;
  if (!opt.texts.empty()) q["text"] = opt.texts[0], q["weight"] = opt.weight;
  if (opt.mmr < 1) q["mmr"] = opt.mmr;
  if (format == ResultFormat::kCsv) print_csv_header();
  std::string heading = str_cat("more like ", opt.like.size(), " items");
  if (!opt.unlike.empty()) heading += str_cat(", less like ", opt.unlike.size());
  if (!opt.texts.empty()) heading += str_cat(", and \"", opt.texts[0], "\"");
  print_hits(format, q,
             str_cat(heading, " (", input_kind_name(kind), " vectors, ", hits.size(), " results)"),
             hits);
  return 0;
}

int run_dedupe(const SearchCliOptions& opt) {
  const Index index = Index::open(opt.index);
  const IndexInfo& info = index.info();
  const InputKind kind = kind_option(opt.kind, info);
  DedupeOptions d;
  d.threshold = opt.threshold;
  d.neighbours = opt.neighbours;
  d.exact = opt.exact;
  const std::vector<DuplicateGroup> groups = index.dedupe(kind, d);
  std::size_t dup_items = 0;
  for (const auto& g : groups)
    dup_items += g.items.size();
  const auto replace = nlohmann::ordered_json::error_handler_t::replace;
  // Groups as JSON Lines (.jsonl or standard output with --json) or CSV (group, id, ...).
  const std::string out = opt.output.empty() ? "-" : opt.output;
  const bool csv = opt.csv || fs::path(out).extension() == ".csv";
  std::string text;
  if (csv) text = "group,keep,id,label,text,image,min_score\n";
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const DuplicateGroup& g = groups[gi];
    if (csv) {
      for (std::size_t i = 0; i < g.items.size(); ++i) {
        const IndexItem& it = g.items[i];
        text += str_cat(gi + 1, ",", i == 0 ? "yes" : "no", ",", csv_field(it.id), ",",
                        csv_field(it.label), ",", csv_field(it.text), ",", csv_field(it.image), ",",
                        g.min_score, "\n");
      }
    } else if (opt.json || !opt.output.empty()) {
      nlohmann::ordered_json j{
          {"group", gi + 1}, {"size", g.items.size()}, {"min_score", g.min_score}};
      j["keep"] = g.items[0].id;
      j["items"] = nlohmann::ordered_json::array();
      for (const IndexItem& it : g.items) {
        nlohmann::ordered_json e{{"id", it.id}};
        if (!it.label.empty()) e["label"] = it.label;
        if (!it.text.empty()) e["text"] = it.text;
        if (!it.image.empty()) e["image"] = it.image;
        j["items"].push_back(e);
      }
      text += j.dump(-1, ' ', false, replace) + "\n";
    } else {
      text += str_cat("group ", gi + 1, " (", g.items.size(), " items, weakest link ", g.min_score,
                      "):\n");
      for (std::size_t i = 0; i < g.items.size(); ++i) {
        const IndexItem& it = g.items[i];
        text += str_cat("  ", i == 0 ? "keep " : "     ", escape_for_message(it.id, 40), "  ",
                        escape_for_message(!it.text.empty() ? it.text : it.image, 80), "\n");
      }
    }
  }
  write_output_file(out, text);
  core::info(str_cat(groups.size(), " groups of near-duplicates (", dup_items, " items; ",
                     input_kind_name(kind), " vectors, ", info.spec.metric, " ",
                     info.spec.metric == "euclidean" ? "<= " : ">= ", opt.threshold, ")"));
  if (!opt.manifest_out.empty()) {
    // Every item but the duplicates after the first of each group, as a JSONL manifest.
    std::unordered_set<std::string> dropped;
    for (const auto& g : groups) {
      for (std::size_t i = 1; i < g.items.size(); ++i)
        dropped.insert(g.items[i].id);
    }
    std::string m;
    std::size_t kept = 0;
    for (const IndexItem& it : index.items()) {
      if (dropped.count(it.id)) continue;
      nlohmann::ordered_json j{{"id", it.id}};
      if (!it.image.empty()) j["image"] = it.image;
      if (!it.text.empty()) j["text"] = it.text;
      if (!it.label.empty()) j["label"] = it.label;
      m += j.dump(-1, ' ', false, replace) + "\n";
      ++kept;
    }
    write_output_file(opt.manifest_out, m);
    core::info(str_cat(opt.manifest_out, ": ", kept, " items, one per group of duplicates"));
  }
  return 0;
}

void add_common(CLI::App* cmd, SearchCliOptions* opt) {
  cmd->add_option("index", opt->index, "The index folder")->required();
  bound<std::int64_t>(cmd->add_option("-k,--k", opt->k, "Results per query"), 1, 10000)
      ->capture_default_str();
  cmd->add_option("--kind", opt->kind,
                  "Stored vectors to search: image, text or pair (default: see below)");
  cmd->add_option("--filter", opt->filters,
                  "Only items with FIELD=VALUE (label, id, text, image, metadata.KEY);\n"
                  "repeatable, all must hold");
  cmd->add_flag("--json", opt->json, "One JSON object per query: {query, results: [...]}");
  cmd->add_flag("--csv", opt->csv, "CSV rows: query, rank, score, id, label, text, image");
  cmd->add_option("--model", opt->model,
                  "Model to embed queries with (default: the index's own; another is refused)");
  cmd->add_option("--revision", opt->revision, "Hub revision when --model is a repo id")
      ->capture_default_str();
}

}  // namespace

Runner add_search(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<SearchCliOptions>();
  CLI::App* cmd =
      app.add_subcommand("search", "Search an index by text, image, image+text pair or item id");
  add_common(cmd, opt.get());
  cmd->add_option("--text", opt->texts, "A text query (repeatable)");
  cmd->add_option("--image", opt->images, "An image query: a file (repeatable)");
  cmd->add_option("--pair", opt->pairs, "An image and a text queried together (BridgeTower)")
      ->expected(2)
      ->type_name("IMAGE TEXT");
  cmd->add_option("--id", opt->ids, "An item of the index as the query: more like it (repeatable)");
  cmd->add_option("--queries", opt->queries_file,
                  "Many queries: a .txt file (one text per line) or .jsonl (objects with text,\n"
                  "image, both, or id)");
  cmd->add_option("--vectors", opt->vectors_file,
                  "Query vectors made beforehand with the index's model: .npy, .csv/.tsv or\n"
                  ".jsonl, one query per row");
  cmd->add_flag("--exact", opt->exact, "Scan every vector instead of the approximate index");
  bound<int>(cmd->add_option("--ef-search", opt->ef_search,
                             "HNSW candidate list for this search (0: the index's saved value)"),
             0, 100000)
      ->capture_default_str();
  bound<int>(cmd->add_option("--nprobe", opt->nprobe,
                             "IVF lists visited for this search (0: the index's saved value)"),
             0, 1 << 24)
      ->capture_default_str();
  bound<int>(cmd->add_option("--rescore", opt->rescore,
                             "IVF-PQ: re-score k times this many candidates exactly (0: the\n"
                             "index's saved value, 50)"),
             0, 1000)
      ->capture_default_str();
  cmd->add_option("--rerank", opt->rerank,
                  "itm: re-score the top candidates by the model's image-text matching\n"
                  "(BridgeTower's ITM head; CLIP: softmax of its scaled logits)")
      ->check(CLI::IsMember({"none", "itm"}))
      ->capture_default_str();
  bound<std::int64_t>(
      cmd->add_option("--rerank-k", opt->rerank_k, "Candidates to re-rank (default: max(20, k))"),
      0, 10000);
  cmd->add_option("--rerank-cache", opt->rerank_cache,
                  "Folder keeping each candidate image's features for --rerank itm, so that\n"
                  "an image seen before skips its image tower (BridgeTower: about 11 MB per\n"
                  "image for bridgetower-large); made if missing")
      ->type_name("DIR");
  bound<std::uint64_t>(cmd->add_option("--rerank-cache-mb", opt->rerank_cache_mb,
                                       "Largest size of --rerank-cache in MiB; the least\n"
                                       "recently used features are removed past it"),
                       1, std::uint64_t{1} << 30)
      ->capture_default_str();
  bound<std::int64_t>(cmd->add_option("--max-image-pixels", opt->max_image_pixels,
                                      "Refuse images with more pixels than this; 0 = no limit"),
                      0, kMaxImagePixelsLimit)
      ->capture_default_str();
  cmd->footer(
      "Which vectors a query searches, unless --kind says: a text finds images (cross-modal\n"
      "retrieval), else pairs, else texts; an image finds images; a pair finds pairs; an --id\n"
      "finds its own kind's neighbours (itself excluded). The query is embedded with the index's\n"
      "model. Scores are the index's metric (cosine: higher is closer); with --rerank itm, the\n"
      "matching probability. A query that fails (unreadable image, unknown id) is reported and\n"
      "the others still run (exit status 1).");
  return [opt, &global] { return run_search(*opt, global.threads); };
}

Runner add_recommend(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<SearchCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "recommend", "More like these items (and less like those), optionally steered by a text");
  add_common(cmd, opt.get());
  cmd->add_option("--like", opt->like, "Ids of liked items (repeatable)");
  cmd->add_option("--unlike", opt->unlike, "Ids of disliked items (repeatable)");
  cmd->add_option("--text", opt->texts, "A text to steer by (embedded with the index's model)");
  bound<double>(cmd->add_option("--weight", opt->weight, "Weight of --text"), -100.0, 100.0)
      ->capture_default_str();
  bound<double>(
      cmd->add_option("--unlike-weight", opt->unlike_weight, "Weight of the disliked items' mean"),
      0.0, 100.0)
      ->capture_default_str();
  bound<double>(cmd->add_option("--mmr", opt->mmr,
                                "Maximal marginal relevance lambda: 1 = by relevance only, lower\n"
                                "values trade relevance for diversity"),
                0.0, 1.0)
      ->capture_default_str();
  bound<std::int64_t>(cmd->add_option("--mmr-candidates", opt->mmr_candidates,
                                      "Candidates MMR chooses from (0: max(50, 5 k))"),
                      0, 10000)
      ->capture_default_str();
  cmd->footer(
      "The query is normalise(mean(liked) - unlike-weight * mean(disliked) + weight * text); the\n"
      "liked and disliked items are never returned.");
  return [opt, &global] { return run_recommend(*opt, global.threads); };
}

Runner add_dedupe(CLI::App& app, const GlobalOptions& /*global*/) {
  auto opt = std::make_shared<SearchCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "dedupe", "Group near-duplicate items of an index (score past a threshold)");
  cmd->add_option("index", opt->index, "The index folder")->required();
  cmd->add_option("--kind", opt->kind, "Stored vectors to compare: image, text or pair");
  bound<double>(cmd->add_option("--threshold", opt->threshold,
                                "Join items at least this similar (cosine, dot) or at most this\n"
                                "far apart (euclidean); 'mmembed index stats' helps choose it"),
                -1e30, 1e30)
      ->capture_default_str();
  bound<std::int64_t>(
      cmd->add_option("--neighbours", opt->neighbours, "Nearest neighbours examined per item"), 1,
      1000)
      ->capture_default_str();
  cmd->add_flag("--exact", opt->exact, "Exact neighbours instead of the approximate index");
  cmd->add_option("-o,--output", opt->output,
                  "Write the groups here (.jsonl, or .csv) instead of standard output");
  cmd->add_flag("--json", opt->json, "Groups as JSON Lines on standard output");
  cmd->add_flag("--csv", opt->csv, "Groups as CSV");
  cmd->add_option("--manifest-out", opt->manifest_out,
                  "Also write a JSONL manifest of the index's items with one item per group\n"
                  "(the first), for building a deduplicated index");
  cmd->footer(
      "Groups are the connected components of the graph joining each item to its neighbours\n"
      "past the threshold; each lists its items in insertion order, the first one to keep.");
  return [opt] { return run_dedupe(*opt); };
}

}  // namespace mmembed::cli
