// mmembed reduce --method pca IN [--labels L.txt] -o OUT.csv [--components N] [--metric M]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "core/check.h"
#include "io/matrix.h"
#include "kernels/distance.h"
#include "mmembed/version.h"
#include "reduce/pca.h"
#include "reduce/quality.h"
#include "search/knn.h"

namespace mmembed::cli {
namespace {

struct ReduceOptions {
  std::string method = "pca", input, labels, out, metric = "euclidean", field = "embedding";
  double p = 2.0;
  std::int64_t components = 2;
  std::int64_t quality_rows = 10000;
  std::uint64_t seed = 0;
};

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  MMEMBED_CHECK(in.good(), IoError, path, ": cannot open");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string quality_path(const std::string& out) {
  std::filesystem::path p(out);
  p.replace_extension(".quality.json");
  return p.string();
}

int run_reduce(const ReduceOptions& opt) {
  MMEMBED_CHECK(opt.method == "pca", Unsupported, "--method ", opt.method,
                " is not available yet (this build has pca)");
  const kernels::MetricSpec metric{kernels::parse_metric(opt.metric), opt.p};
  kernels::validate(metric);
  io::MatrixReadOptions read;
  read.field = opt.field;
  const io::Matrix x = io::read_matrix(opt.input, read);
  MMEMBED_CHECK(x.rows >= 2, InvalidArgument, opt.input, ": ", x.rows,
                " point(s); PCA needs at least 2");
  MMEMBED_CHECK(opt.components <= std::min(x.rows, x.cols), InvalidArgument, opt.input,
                ": --components ", opt.components, " needs at least that many points and dimensions (",
                x.rows, " points, ", x.cols, " dimensions)");
  std::vector<std::string> labels;
  if (!opt.labels.empty()) {
    labels = read_labels(opt.labels);
    MMEMBED_CHECK(static_cast<std::int64_t>(labels.size()) == x.rows, InvalidArgument, opt.labels,
                  ": ", labels.size(), " labels for the ", x.rows, " points of ", opt.input);
  }
  search::check_rows(x.data.data(), x.rows, x.cols, metric, opt.input.c_str());

  reduce::PcaOptions pca_opt;
  pca_opt.n_components = opt.components;
  pca_opt.seed = opt.seed;
  const reduce::Pca pca = reduce::Pca::fit(x.data.data(), x.rows, x.cols, pca_opt);
  const std::int64_t k = opt.components;
  std::vector<float> y(x.rows * k);
  pca.transform(x.data.data(), x.rows, y.data());

  // Quality against the exact neighbours of the input, for each k in 5, 10, 15 with k < n/2.
  reduce::QualityOptions q_opt;
  q_opt.metric = metric;
  q_opt.ks.clear();
  for (std::int64_t kk : {5, 10, 15}) {
    if (2 * kk < x.rows) q_opt.ks.push_back(kk);
  }
  q_opt.max_rows = opt.quality_rows < x.rows ? opt.quality_rows : 0;
  nlohmann::json quality = nlohmann::json::array();
  if (!q_opt.ks.empty()) {
    for (const reduce::Quality& q :
         reduce::neighbourhood_quality(x.data.data(), x.rows, x.cols, y.data(), k, q_opt)) {
      quality.push_back({{"k", q.k}, {"trustworthiness", q.trustworthiness},
                         {"continuity", q.continuity}, {"knn_preservation", q.knn_preservation}});
    }
  }

  std::string csv;
  static const char* kAxes[] = {"x", "y", "z"};
  for (std::int64_t c = 0; c < k; ++c) {
    csv += (c ? "," : "") + (k <= 3 ? std::string(kAxes[c]) : str_cat("c", c + 1));
  }
  csv += labels.empty() ? "\n" : ",label\n";
  for (std::int64_t i = 0; i < x.rows; ++i) {
    for (std::int64_t c = 0; c < k; ++c) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%s%.9g", c ? "," : "", y[i * k + c]);
      csv += buf;
    }
    csv += labels.empty() ? "\n" : "," + csv_field(labels[i]) + "\n";
  }
  io::write_file_atomic(opt.out, csv);

  const std::string solver =
      pca.solver() == reduce::PcaOptions::Solver::Full ? "full" : "randomized";
  nlohmann::json j = {
      {"input", opt.input},
      {"output", opt.out},
      {"method", "pca"},
      {"points", x.rows},
      {"dimensions", x.cols},
      {"components", k},
      {"pca", {{"solver", solver}, {"explained_variance_ratio", pca.explained_variance_ratio()},
               {"explained_variance", pca.explained_variance()}}},
      {"quality", {{"metric", kernels::metric_name(metric.metric)},
                   {"rows_evaluated", q_opt.max_rows > 0 ? q_opt.max_rows : x.rows},
                   {"by_k", quality}}},
      {"mmembed_version", MMEMBED_VERSION}};
  if (metric.metric == kernels::Metric::Minkowski) j["quality"]["p"] = metric.p;
  const std::string json_path = quality_path(opt.out);
  io::write_file_atomic(json_path, j.dump(2) + "\n");

  std::printf("wrote %s (%lld points, %lld components, pca %s) and %s", opt.out.c_str(),
              static_cast<long long>(x.rows), static_cast<long long>(k), solver.c_str(),
              json_path.c_str());
  for (const auto& q : quality) {
    std::printf("%s trustworthiness@%lld %.4f", q == quality.front() ? ";" : ",",
                static_cast<long long>(q["k"].get<std::int64_t>()), q["trustworthiness"].get<double>());
  }
  std::printf("\n");
  return 0;
}

}  // namespace

Runner add_reduce(CLI::App& app, const GlobalOptions&) {
  auto opt = std::make_shared<ReduceOptions>();
  CLI::App* cmd = app.add_subcommand(
      "reduce",
      "Project an embedding matrix to a few dimensions; writes coordinates (+ labels) as CSV and "
      "the quality metrics (trustworthiness, continuity, kNN preservation) in OUT.quality.json");
  cmd->add_option("input", opt->input, "Embedding matrix: .npy, .csv, .tsv, .jsonl")->required();
  cmd->add_option("--method", opt->method, "pca (umap and tsne: not yet)")
      ->check(CLI::IsMember({"pca", "umap", "tsne"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", opt->out, "Output CSV")->required();
  cmd->add_option("--labels", opt->labels, "Text file, one label per line, one line per point");
  cmd->add_option("--components", opt->components, "Output dimensions")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--metric", opt->metric, "Input-space metric for the quality metrics")
      ->capture_default_str();
  cmd->add_option("--p", opt->p, "Minkowski exponent, >= 1");
  cmd->add_option("--seed", opt->seed, "Seed (randomized PCA)")->capture_default_str();
  cmd->add_option("--quality-rows", opt->quality_rows,
                  "Evaluate the quality sums over at most this many points (all if fewer)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--field", opt->field, "JSONL input: the field holding the vector")
      ->capture_default_str();
  return [opt] { return run_reduce(*opt); };
}

}  // namespace mmembed::cli
