// mmembed similarity A [B] --metric M [--p P] [--top K] [-o OUT] [--field NAME]
#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/check.h"
#include "core/output_file.h"
#include "io/matrix.h"
#include "kernels/distance.h"
#include "search/flat_index.h"

namespace mmembed::cli {
namespace {

struct SimilarityOptions {
  std::string a, b, metric = "cosine", out, field = "embedding";
  double p = 2.0;
  bool p_given = false;
  std::int64_t top = 0;
  bool json = false;
};

std::string extension(const std::string& path) {
  return std::filesystem::path(path).extension().string();
}

// A JSON number: the shortest text that reads back as v; non-finite values (possible only for
// extreme inputs) as null, which JSON can hold.
std::string json_number(float v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string number(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// Writes to `out` (core/output_file.h) or stdout.
void emit(const std::string& out, const std::string& text) {
  write_output_file(out.empty() ? "-" : out, text);
}

int run_similarity(const SimilarityOptions& opt) {
  kernels::MetricSpec spec{kernels::parse_metric(opt.metric), opt.p};
  MMEMBED_CHECK(!opt.p_given || spec.metric == kernels::Metric::Minkowski, InvalidArgument,
                "--p applies to --metric minkowski only (got --metric ", opt.metric, ")");
  kernels::validate(spec);
  output_kind(opt.out.empty() ? "-" : opt.out);  // an unwritable -o fails before the work
  io::MatrixReadOptions read;
  read.field = opt.field;
  const io::Matrix a = io::read_matrix(opt.a, read);
  const bool self = opt.b.empty();
  const io::Matrix b_owned = self ? io::Matrix{} : io::read_matrix(opt.b, read);
  const io::Matrix& b = self ? a : b_owned;
  const std::string& b_name = self ? opt.a : opt.b;
  MMEMBED_CHECK(a.cols == b.cols, ShapeError, opt.a, " has ", a.cols, " columns but ", b_name,
                " has ", b.cols, ": the vectors must have the same dimension");
  MMEMBED_CHECK(a.rows >= 1 && b.rows >= 1, InvalidArgument, "no points to compare");
  search::check_rows(a.data.data(), a.rows, a.cols, spec, opt.a.c_str());
  if (!self) search::check_rows(b.data.data(), b.rows, b.cols, spec, opt.b.c_str());

  if (opt.top == 0) {  // the full matrix
    std::vector<float> out(a.rows * b.rows);
    kernels::pairwise(spec, a.data.data(), a.rows, b.data.data(), b.rows, a.cols, out.data(), b.rows);
    search::check_values(out.data(), a.rows, b.rows, b.rows, spec, opt.a.c_str(), 0,
                         b_name.c_str(), 0);
    const std::string ext = extension(opt.out);
    if (opt.json) {
      // {"metric", "rows", "cols", "values": [[...], ...]}
      std::string text = str_cat("{\"metric\": \"", kernels::metric_name(spec.metric),
                                 "\", \"rows\": ", a.rows, ", \"cols\": ", b.rows,
                                 ", \"values\": [");
      for (std::int64_t i = 0; i < a.rows; ++i) {
        text += i ? ",\n  [" : "\n  [";
        for (std::int64_t j = 0; j < b.rows; ++j) {
          if (j) text += ", ";
          text += json_number(out[i * b.rows + j]);
        }
        text += ']';
      }
      emit(opt.out, text + "\n]}\n");
      return 0;
    }
    if (ext == ".npy") {
      io::write_npy(opt.out, out.data(), a.rows, b.rows);
      return 0;
    }
    const char sep = ext == ".csv" ? ',' : '\t';
    std::string text;
    for (std::int64_t i = 0; i < a.rows; ++i) {
      for (std::int64_t j = 0; j < b.rows; ++j) {
        if (j) text += sep;
        text += number(out[i * b.rows + j]);
      }
      text += '\n';
    }
    emit(opt.out, text);
    return 0;
  }

  // Top-k: exact search; without B, each row's nearest other rows (itself excluded).
  const std::int64_t k = opt.top;
  const std::int64_t available = self ? b.rows - 1 : b.rows;
  MMEMBED_CHECK(k <= available, InvalidArgument, "--top ", k, " needs at least ", self ? k + 1 : k,
                " points in ", b_name, " (it has ", b.rows, ")");
  search::FlatIndex index(b.cols, spec);
  index.add(b.data.data(), b.rows);
  std::vector<std::int64_t> labels(a.rows * k);
  std::vector<float> values(a.rows * k);
  if (self) {
    search::KnnGraph g = index.graph(k);
    labels = std::move(g.indices);
    values = std::move(g.values);
  } else {
    index.search(a.data.data(), a.rows, k, labels.data(), values.data());
  }
  const std::string ext = extension(opt.out);
  MMEMBED_CHECK(ext != ".npy", InvalidArgument, "--top writes .tsv, .csv or .jsonl, not .npy (", opt.out, ")");
  std::string text;
  if (ext == ".jsonl" || opt.json) {
    for (std::int64_t i = 0; i < a.rows; ++i) {
      nlohmann::json j;
      j["query"] = i;
      j["neighbours"] = std::vector<std::int64_t>(labels.begin() + i * k, labels.begin() + (i + 1) * k);
      j["values"] = std::vector<float>(values.begin() + i * k, values.begin() + (i + 1) * k);
      text += j.dump() + "\n";
    }
  } else {
    const char sep = ext == ".csv" ? ',' : '\t';
    text = str_cat("query", sep, "rank", sep, "neighbour", sep, kernels::metric_name(spec.metric), "\n");
    for (std::int64_t i = 0; i < a.rows; ++i) {
      for (std::int64_t r = 0; r < k; ++r) {
        text += str_cat(i, sep, r + 1, sep, labels[i * k + r], sep, number(values[i * k + r]), "\n");
      }
    }
  }
  emit(opt.out, text);
  return 0;
}

}  // namespace

Runner add_similarity(CLI::App& app, const GlobalOptions&) {
  auto opt = std::make_shared<SimilarityOptions>();
  CLI::App* cmd = app.add_subcommand(
      "similarity",
      "Similarities or distances between the rows of A and B (or A and itself): the full matrix, "
      "or each row's --top K nearest. Inputs: .npy, .csv, .tsv, .jsonl");
  cmd->add_option("A", opt->a, "Embedding matrix (rows are points)")->required();
  cmd->add_option("B", opt->b, "Second matrix (default: A against itself)");
  cmd->add_option("--metric", opt->metric,
                  "cosine, cosine-distance, euclidean, sqeuclidean, dot, manhattan, minkowski, chebyshev")
      ->capture_default_str();
  bound(cmd->add_option_function<double>(
             "--p", [opt](double p) { opt->p = p, opt->p_given = true; },
             "Minkowski exponent (default 2)"),
        1.0, kMaxMinkowskiP);
  bound<std::int64_t>(cmd->add_option("--top", opt->top,
                                      "Only each row's K nearest (without B: other rows of A)"),
                      1, kMaxCount);
  cmd->add_option("-o,--output", opt->out,
                  "Write here instead of stdout: .npy (matrix), .csv, .tsv, .jsonl (--top); a "
                  "regular file is replaced atomically, a FIFO or device written in place");
  cmd->add_flag("--json", opt->json,
                "JSON out: the matrix as {\"metric\", \"rows\", \"cols\", \"values\"}; with --top, "
                "one JSON object per query and line (query, neighbours, values)");
  cmd->add_option("--field", opt->field, "JSONL inputs: the field holding the vector")
      ->capture_default_str();
  return [opt] { return run_similarity(*opt); };
}

}  // namespace mmembed::cli
