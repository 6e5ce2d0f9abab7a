#include "index_util.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli_util.h"
#include "core/check.h"
#include "core/file.h"
#include "mmembed/retrieval.h"
#include "model_spec.h"

namespace mmembed::cli {

Embedder load_index_model(const IndexInfo& info, const std::string& model,
                          const std::string& revision, int threads, std::size_t batch_size) {
  const IndexProvenance& p = info.spec.provenance;
  EmbedderOptions o;
  o.threads = threads;
  o.batch_size = batch_size;
  if (!p.image_backend.empty()) o.image_backend = parse_image_backend(p.image_backend);
  if (!p.pair_output.empty()) o.pair_output = parse_pair_output(p.pair_output);
  // Queries and additions run in the precision the index was built with ("float32": fp32).
  o.dtype = parse_model_dtype(p.dtype.empty() ? "fp32" : p.dtype);
  std::string dir;
  if (!model.empty()) {
    dir = resolve_model_dir(model, revision);
  } else {
    // The folder it was built from, if it still holds that model; else the name it was given.
    std::error_code ec;
    if (!p.model_path.empty() && std::filesystem::is_directory(p.model_path, ec) &&
        model_digest(p.model_path) == p.model_digest) {
      dir = p.model_path;
    } else {
      MMEMBED_CHECK(!p.model.empty(), InvalidArgument, info.path,
                    ": records no model name; give --model");
      dir = resolve_model_dir(p.model, p.revision.empty() ? "main" : p.revision);
    }
  }
  Embedder e = Embedder::load(dir, o);
  retrieval::check_same_model(info, e);
  return e;
}

InputKind kind_option(const std::string& kind, const IndexInfo& info,
                      std::initializer_list<InputKind> preferred) {
  if (!kind.empty()) {
    try {
      return parse_input_kind(kind);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(str_cat("--kind ", e.what()));
    }
  }
  const std::vector<InputKind>& have = info.spec.kinds;
  for (InputKind k : preferred) {
    if (std::find(have.begin(), have.end(), k) != have.end()) return k;
  }
  return have.front();
}

nlohmann::ordered_json hit_json(const SearchHit& h) {
  nlohmann::ordered_json j;
  j["rank"] = h.rank;
  if (std::isnan(h.score)) {
    j["score"] = nullptr;
  } else {
    j["score"] = h.score;
  }
  j["id"] = h.item.id;
  if (!h.item.label.empty()) j["label"] = h.item.label;
  if (!h.item.text.empty()) j["text"] = h.item.text;
  if (!h.item.image.empty()) j["image"] = h.item.image;
  if (!h.item.metadata.empty()) {
    j["metadata"] = nlohmann::ordered_json::parse(h.item.metadata, nullptr, false);
  }
  return j;
}

ResultFormat result_format(bool json, bool csv) {
  MMEMBED_CHECK(!(json && csv), InvalidArgument, "--json and --csv: choose one");
  return json ? ResultFormat::kJson : csv ? ResultFormat::kCsv : ResultFormat::kTable;
}

void print_csv_header() {
  std::printf("query,rank,score,id,label,text,image\n");
}

void print_hits(ResultFormat format, const nlohmann::ordered_json& query,
                const std::string& heading, const std::vector<SearchHit>& hits) {
  const auto replace = nlohmann::ordered_json::error_handler_t::replace;
  if (format == ResultFormat::kJson) {
    nlohmann::ordered_json j;
    j["query"] = query;
    j["results"] = nlohmann::ordered_json::array();
    for (const SearchHit& h : hits)
      j["results"].push_back(hit_json(h));
    std::printf("%s\n", j.dump(-1, ' ', false, replace).c_str());
    return;
  }
  if (format == ResultFormat::kCsv) {
    const std::string q =
        query.is_string() ? query.get<std::string>() : query.dump(-1, ' ', false, replace);
    for (const SearchHit& h : hits) {
      char score[32] = "";
      if (!std::isnan(h.score)) std::snprintf(score, sizeof(score), "%.6g", h.score);
      std::printf("%s,%lld,%s,%s,%s,%s,%s\n", csv_field(q).c_str(), static_cast<long long>(h.rank),
                  score, csv_field(h.item.id).c_str(), csv_field(h.item.label).c_str(),
                  csv_field(h.item.text).c_str(), csv_field(h.item.image).c_str());
    }
    return;
  }
  std::printf("%s\n", printable_message(heading).c_str());
  if (hits.empty()) {
    std::printf("  (no results)\n");
    return;
  }
  std::printf("  %4s  %-8s  %-16s  %-24s  %s\n", "rank", "score", "id", "label", "text / image");
  for (const SearchHit& h : hits) {
    char score[32] = "-";
    if (!std::isnan(h.score)) std::snprintf(score, sizeof(score), "%.4f", h.score);
    std::string what = !h.item.text.empty() ? h.item.text : h.item.image;
    if (what.size() > 60) what = what.substr(0, 57) + "...";
    std::printf("  %4lld  %-8s  %-16s  %-24s  %s\n", static_cast<long long>(h.rank), score,
                escape_for_message(h.item.id, 16).c_str(),
                escape_for_message(h.item.label, 24).c_str(), escape_for_message(what, 60).c_str());
  }
}

}  // namespace mmembed::cli
