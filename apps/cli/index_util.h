// Shared by the `index`, `search`, `recommend` and `dedupe` commands: loading the model an index
// was built with, and printing results as a table, JSON Lines or CSV.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmembed/embedder.h"
#include "mmembed/index.h"

namespace mmembed::cli {

// The index's own model (its recorded folder when it still holds the same model, else its repo
// id and revision through the Hub cache), or `model` when given, which must be the same model
// (retrieval::check_same_model). Loaded with the index's image backend and pair output.
Embedder load_index_model(const IndexInfo& info, const std::string& model,
                          const std::string& revision, int threads, std::size_t batch_size = 8);

// --kind: the named vector kind, or when `kind` is empty the first of `preferred` that the index
// holds. InvalidArgument for another name.
InputKind kind_option(const std::string& kind, const IndexInfo& info,
                      std::initializer_list<InputKind> preferred = {
                          InputKind::kImage, InputKind::kPair, InputKind::kText});

// One hit as a JSON object: rank, score, id, then label, text, image and metadata when set.
nlohmann::ordered_json hit_json(const SearchHit& hit);

enum class ResultFormat { kTable, kJson, kCsv };
ResultFormat result_format(bool json, bool csv);

// Prints the results of one query: a table (with a heading naming the query), one JSON object
// {"query": ..., "results": [...]} per line, or CSV rows (header printed by the caller once).
void print_hits(ResultFormat format, const nlohmann::ordered_json& query,
                const std::string& heading, const std::vector<SearchHit>& hits);
void print_csv_header();

}  // namespace mmembed::cli
