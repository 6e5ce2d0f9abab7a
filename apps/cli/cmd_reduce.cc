// mmembed reduce --method pca IN [--labels L.txt] -o OUT.csv [--components N] [--metric M]
// mmembed reduce OUTDIR ...   (an `embed --input` output folder: ids, labels, captions and image
//                              paths travel into the CSV; -o defaults to OUTDIR/<method>.csv)
// mmembed reduce --method umap IN ... [--n-neighbors K] [--min-dist D] [--spread S] [--epochs E]
//                [--init spectral|pca|random] [--seed N]
// mmembed reduce --method tsne IN ... [--perplexity P] [--iterations N] [--theta T] [--seed N]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/check.h"
#include "core/output_file.h"
#include "data/points.h"
#include "hub/progress.h"
#include "io/matrix.h"
#include "kernels/distance.h"
#include "kernels/gemm.h"
#include "mmembed/version.h"
#include "reduce/pca.h"
#include "reduce/quality.h"
#include "reduce/tsne.h"
#include "reduce/umap.h"
#include "search/knn.h"

namespace mmembed::cli {
namespace {

struct ReduceOptions {
  std::string method = "pca", input, labels, out, metric = "euclidean", field = "embedding";
  std::string label_field = "label";
  bool json = false;
  double p = 2.0;
  std::int64_t components = 2;
  std::int64_t quality_rows = 10000;
  std::uint64_t seed = 0;
  // umap
  std::int64_t n_neighbors = 15;
  double min_dist = 0.1, spread = 1.0;
  int epochs = 0;
  std::string init = "spectral";
  // tsne
  double perplexity = 30, theta = 0.5, learning_rate = 0;
  int iterations = 750;
};



std::string quality_path(const std::string& out) {
  std::filesystem::path p(out);
  p.replace_extension(".quality.json");
  return p.string();
}

// The fit's phases and epochs (iterations) on one progress display (hub/progress.h), with a
// timer that keeps a non-terminal log alive through phases that report nothing for minutes.
class FitProgress {
 public:
  explicit FitProgress(const std::string& method)
      : method_(method),
        bar_(method, 0, hub::ProgressBar::Unit::kCount, hub::progress_display(hub::ProgressMode::kAuto)),
        timer_([this](std::stop_token stop) {
          std::mutex mu;
          std::condition_variable_any cv;
          std::unique_lock<std::mutex> lock(mu);
          while (!stop.stop_requested()) {
            cv.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
            if (!stop.stop_requested()) bar_.tick();
          }
        }) {}
  ~FitProgress() {
    timer_.request_stop();
    timer_.join();
    bar_.finish();
  }

  reduce::ProgressFn callback() {
    return [this](std::string_view phase, std::int64_t done, std::int64_t total) {
      if (phase != phase_) {
        phase_ = std::string(phase);
        const bool counted = phase == "epochs" || phase == "iterations";
        bar_.set_stage(counted ? method_ : method_ + " " + phase_,
                       static_cast<std::uint64_t>(total), counted ? phase_ : std::string("items"));
      }
      bar_.set_done(static_cast<std::uint64_t>(done));
    };
  }

 private:
  std::string method_, phase_;
  hub::ProgressBar bar_;
  std::jthread timer_;
};

std::vector<float> run_umap(const ReduceOptions& opt, const kernels::MetricSpec& metric,
                            const io::Matrix& x, nlohmann::json* info, std::string* summary) {
  FitProgress progress("umap");
  reduce::UmapOptions u_opt;
  u_opt.progress = progress.callback();
  u_opt.n_components = opt.components;
  u_opt.n_neighbors = opt.n_neighbors;
  u_opt.min_dist = opt.min_dist;
  u_opt.spread = opt.spread;
  u_opt.metric = metric;
  u_opt.n_epochs = opt.epochs;
  u_opt.seed = opt.seed;
  u_opt.init = opt.init == "pca"      ? reduce::UmapOptions::Init::Pca
               : opt.init == "random" ? reduce::UmapOptions::Init::Random
                                      : reduce::UmapOptions::Init::Spectral;
  const reduce::Umap umap = reduce::Umap::fit(x.data.data(), x.rows, x.cols, u_opt);
  const std::string knn = umap.used_exact_knn() ? "exact" : "nn-descent";
  std::string init = opt.init;
  if (umap.spectral_fell_back()) init = "random (spectral failed)";
  *info = {{"n_neighbors", opt.n_neighbors}, {"min_dist", opt.min_dist}, {"spread", opt.spread},
           {"metric", kernels::metric_name(metric.metric)}, {"epochs", umap.n_epochs()},
           {"seed", opt.seed}, {"init", init}, {"knn", knn},
           {"graph_components", umap.n_graph_components()},
           {"a", umap.curve().a}, {"b", umap.curve().b},
           {"seconds", {{"knn", umap.timings().knn}, {"graph", umap.timings().graph},
                        {"init", umap.timings().init}, {"sgd", umap.timings().sgd}}}};
  *summary = str_cat("umap ", knn, " kNN, ", umap.n_epochs(), " epochs");
  return umap.embedding();
}

std::vector<float> run_tsne(const ReduceOptions& opt, const kernels::MetricSpec& metric,
                            const io::Matrix& x, nlohmann::json* info, std::string* summary) {
  FitProgress progress("tsne");
  reduce::TsneOptions t_opt;
  t_opt.progress = progress.callback();
  t_opt.n_components = opt.components;
  t_opt.perplexity = opt.perplexity;
  t_opt.metric = metric;
  t_opt.n_iter = opt.iterations;
  t_opt.theta = opt.theta;
  t_opt.learning_rate = opt.learning_rate;
  t_opt.seed = opt.seed;
  reduce::Tsne tsne(x.data.data(), x.rows, x.cols, t_opt);
  tsne.run();
  bool kl_exact = false;
  const double kl = tsne.kl_divergence(&kl_exact);
  const std::string knn = x.rows <= t_opt.exact_knn_max_points ? "exact" : "nn-descent";
  *info = {{"perplexity", opt.perplexity}, {"n_neighbors", tsne.n_neighbors()},
           {"metric", kernels::metric_name(metric.metric)}, {"knn", knn},
           {"early_exaggeration", t_opt.early_exaggeration},
           {"early_exaggeration_iterations", t_opt.early_exaggeration_iter},
           {"iterations", opt.iterations},
           {"learning_rate", {tsne.learning_rate(0), tsne.learning_rate(t_opt.early_exaggeration_iter)}},
           {"theta", opt.theta}, {"init", x.cols >= opt.components ? "pca" : "random"},
           {"seed", opt.seed}, {"kl_divergence", kl},
           {"kl_divergence_z", kl_exact ? "exact" : "barnes-hut"}};
  char kl_text[32];
  std::snprintf(kl_text, sizeof(kl_text), "%.4f", kl);
  *summary = str_cat("tsne ", knn, " kNN, ", t_opt.early_exaggeration_iter + opt.iterations,
                     " iterations, KL ", kl_text);
  std::vector<float> y(tsne.embedding().begin(), tsne.embedding().end());
  return y;
}

int run_reduce(const ReduceOptions& opt) {
  MMEMBED_CHECK(!opt.json || opt.out != "-", InvalidArgument,
                "--json prints the report on stdout: write the coordinates to a file (-o OUT.csv)");
  MMEMBED_CHECK(opt.method == "pca" || opt.method == "umap" || opt.method == "tsne", Unsupported,
                "--method ", opt.method, " is not available (this build has pca, umap, tsne)");
  // The GEMM backend's one-time setup runs on a spare thread while the input is read.
  const std::jthread gemm_setup([] { kernels::prepare_gemm(); });
  const kernels::MetricSpec metric{kernels::parse_metric(opt.metric), opt.p};
  kernels::validate(metric);
  // OUT.quality.json goes beside a file only: never beside a device, a FIFO or standard output
  // (a user writing to /dev/stdout or a pipe asked for the coordinates, not for a side file).
  const bool side_file = output_kind(opt.out) == OutputKind::kFile;
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  auto stamp = Clock::now();
  nlohmann::json seconds;  // wall time of each phase, in OUT.quality.json
  io::MatrixReadOptions read;
  read.field = opt.field;
  data::PointInfo points;
  io::Matrix x;
  if (std::filesystem::is_directory(opt.input)) {
    data::EmbeddingFolder folder = data::read_embedding_folder(opt.input, read);
    x = std::move(folder.matrix);
    points = std::move(folder.points);
  } else {
    x = io::read_matrix(opt.input, read);
  }
  if (opt.method == "umap") {
    MMEMBED_CHECK(x.rows > opt.n_neighbors, InvalidArgument, opt.input, ": ", x.rows,
                  " point(s); UMAP needs more points than --n-neighbors (", opt.n_neighbors, ")");
  } else if (opt.method == "tsne") {
    MMEMBED_CHECK(x.rows >= 4, InvalidArgument, opt.input, ": ", x.rows,
                  " point(s); t-SNE needs at least 4");
    MMEMBED_CHECK(opt.perplexity < x.rows - 1, InvalidArgument, opt.input, ": --perplexity ",
                  opt.perplexity, " is too large for ", x.rows, " points (needs perplexity < ",
                  x.rows - 1, ")");
    MMEMBED_CHECK(opt.components <= 3, InvalidArgument, "--components ", opt.components,
                  ": t-SNE makes 1, 2 or 3");
  } else {
    MMEMBED_CHECK(x.rows >= 2, InvalidArgument, opt.input, ": ", x.rows,
                  " point(s); PCA needs at least 2");
    MMEMBED_CHECK(opt.components <= std::min(x.rows, x.cols), InvalidArgument, opt.input,
                  ": --components ", opt.components,
                  " needs at least that many points and dimensions (", x.rows, " points, ", x.cols,
                  " dimensions)");
  }
  if (!opt.labels.empty()) points.labels = data::read_labels(opt.labels, x.rows, opt.label_field);
  search::check_rows(x.data.data(), x.rows, x.cols, metric, opt.input.c_str());
  seconds["read"] = seconds_since(stamp);
  stamp = Clock::now();

  const std::int64_t k = opt.components;
  std::vector<float> y(x.rows * k);
  nlohmann::json method_info;  // written under the method's name in OUT.quality.json
  std::string summary;         // for the one-line report
  if (opt.method == "pca") {
    reduce::PcaOptions pca_opt;
    pca_opt.n_components = opt.components;
    pca_opt.seed = opt.seed;
    const reduce::Pca pca =
        reduce::Pca::fit_transform(x.data.data(), x.rows, x.cols, pca_opt, y.data());
    const std::string solver = pca.solver() == reduce::PcaOptions::Solver::Full ? "full"
                               : pca.solver() == reduce::PcaOptions::Solver::Randomized
                                   ? "randomized"
                                   : "covariance";
    method_info = {{"solver", solver},
                   {"explained_variance_ratio", pca.explained_variance_ratio()},
                   {"explained_variance", pca.explained_variance()}};
    summary = "pca " + solver;
  } else if (opt.method == "umap") {
    y = run_umap(opt, metric, x, &method_info, &summary);
  } else if (opt.method == "tsne") {
    y = run_tsne(opt, metric, x, &method_info, &summary);
  }

  seconds["fit"] = seconds_since(stamp);
  stamp = Clock::now();

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

  seconds["quality"] = seconds_since(stamp);
  stamp = Clock::now();

  std::string csv;
  static const char* kAxes[] = {"x", "y", "z"};
  for (std::int64_t c = 0; c < k; ++c) {
    csv += (c ? "," : "") + (k <= 3 ? std::string(kAxes[c]) : str_cat("c", c + 1));
  }
  // What travels with the points, as columns after the coordinates.
  std::vector<std::pair<const char*, const std::vector<std::string>*>> extra;
  if (!points.labels.empty()) extra.emplace_back("label", &points.labels);
  if (!points.ids.empty()) extra.emplace_back("id", &points.ids);
  if (!points.texts.empty()) extra.emplace_back("text", &points.texts);
  if (!points.images.empty()) extra.emplace_back("image", &points.images);
  for (const auto& [name, values] : extra) csv += std::string(",") + name;
  csv += "\n";
  csv.reserve(csv.size() + x.rows * k * 16);
  for (std::int64_t i = 0; i < x.rows; ++i) {
    for (std::int64_t c = 0; c < k; ++c) {
      // The shortest text that reads back as the same float.
      char buf[32];
      char* end = buf;
      if (c) *end++ = ',';
      end = std::to_chars(end, buf + sizeof(buf), y[i * k + c]).ptr;
      csv.append(buf, end);
    }
    for (const auto& [name, values] : extra) csv += "," + csv_field((*values)[i]);
    csv += "\n";
  }
  write_output_file(opt.out, csv);
  seconds["write_csv"] = seconds_since(stamp);

  nlohmann::json j = {
      {"input", opt.input},
      {"output", opt.out},
      {"method", opt.method},
      {"points", x.rows},
      {"dimensions", x.cols},
      {"components", k},
      {opt.method, method_info},
      {"quality", {{"metric", kernels::metric_name(metric.metric)},
                   {"rows_evaluated", q_opt.max_rows > 0 ? q_opt.max_rows : x.rows},
                   {"by_k", quality}}},
      {"seconds", seconds},
      {"mmembed_version", MMEMBED_VERSION}};
  if (metric.metric == kernels::Metric::Minkowski) j["quality"]["p"] = metric.p;
  std::string report = str_cat("wrote ", output_name(opt.out), " (", x.rows, " points, ", k,
                               " components, ", summary, ")");
  if (side_file) {
    const std::string json_path = quality_path(opt.out);
    write_output_file(json_path, j.dump(2) + "\n", /*allow_stdout=*/false);
    report += " and " + json_path;
  } else {
    report += "; the quality metrics were not written (OUT.quality.json goes beside a regular "
              "file only, and " + output_name(opt.out) + " is not one)";
  }
  for (const auto& q : quality) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%s trustworthiness@%lld %.4f",
                  q == quality.front() ? ";" : ",",
                  static_cast<long long>(q["k"].get<std::int64_t>()),
                  q["trustworthiness"].get<double>());
    report += buf;
  }
  if (opt.json) {  // the OUT.quality.json object, on stdout (the coordinates are in OUT)
    write_output_file("-", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    return 0;
  }
  // The report goes to stderr when the coordinates themselves go to standard output.
  std::fprintf(opt.out == "-" ? stderr : stdout, "%s\n", report.c_str());
  return 0;
}

}  // namespace

Runner add_reduce(CLI::App& app, const GlobalOptions&) {
  auto opt = std::make_shared<ReduceOptions>();
  CLI::App* cmd = app.add_subcommand(
      "reduce",
      "Project an embedding matrix to a few dimensions; writes coordinates (+ labels) as CSV and "
      "the quality metrics (trustworthiness, continuity, kNN preservation) in OUT.quality.json");
  cmd->add_option("input", opt->input,
                  "Embedding matrix (.npy, .csv, .tsv, .jsonl), or an 'embed --input' output "
                  "folder, whose ids, labels, captions and image paths go into the CSV")
      ->required();
  cmd->add_option("--method", opt->method, "pca, umap or tsne")
      ->check(CLI::IsMember({"pca", "umap", "tsne"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", opt->out,
                  "Output CSV ('-': stdout); OUT.quality.json is written beside a regular file "
                  "only. Default for an input folder: INPUT/<method>.csv");
  cmd->add_option("--labels", opt->labels,
                  "Labels, one per point: a text file (one per line), .jsonl (--label-field of "
                  "each object) or .csv/.tsv (the --label-field column)");
  cmd->add_option("--label-field", opt->label_field,
                  "The field (.jsonl) or column (.csv/.tsv) of --labels")
      ->capture_default_str();
  bound<std::int64_t>(cmd->add_option("--components", opt->components, "Output dimensions"), 1,
                      kMaxComponents)
      ->capture_default_str();
  cmd->add_option("--metric", opt->metric,
                  "Input-space metric: UMAP's and t-SNE's neighbour graphs and the quality metrics")
      ->capture_default_str();
  bound(cmd->add_option("--p", opt->p, "Minkowski exponent"), 1.0, kMaxMinkowskiP);
  bound(cmd->add_option("--seed", opt->seed, "Seed (randomized PCA, UMAP, t-SNE)"),
        std::uint64_t{0}, std::numeric_limits<std::uint64_t>::max())
      ->capture_default_str();
  bound<std::int64_t>(cmd->add_option("--n-neighbors", opt->n_neighbors,
                                      "UMAP: neighbours per point, itself included"),
                      2, kMaxNeighbors)
      ->capture_default_str();
  bound(cmd->add_option("--min-dist", opt->min_dist,
                        "UMAP: minimum distance between embedded points (at most --spread)"),
        0.0, kMaxSpread)
      ->capture_default_str();
  bound(cmd->add_option("--spread", opt->spread, "UMAP: scale of the embedded points"), 1e-3,
        kMaxSpread)
      ->capture_default_str();
  bound(cmd->add_option("--epochs", opt->epochs,
                        "UMAP: SGD epochs; 0: 500 up to 10000 points, else 200"),
        0, kMaxIterations)
      ->capture_default_str();
  cmd->add_option("--init", opt->init, "UMAP: initial layout")
      ->check(CLI::IsMember({"spectral", "pca", "random"}))
      ->capture_default_str();
  bound(cmd->add_option("--perplexity", opt->perplexity,
                        "t-SNE: effective number of neighbours; 3 x perplexity neighbours are "
                        "used"),
        1.0, kMaxPerplexity)
      ->capture_default_str();
  bound(cmd->add_option("--iterations", opt->iterations,
                        "t-SNE: iterations after the 250 early-exaggeration ones"),
        0, kMaxIterations)
      ->capture_default_str();
  bound(cmd->add_option("--theta", opt->theta, "t-SNE: Barnes-Hut opening angle (0: exact sums)"),
        0.0, 10.0)
      ->capture_default_str();
  bound(cmd->add_option("--learning-rate", opt->learning_rate,
                        "t-SNE: step size; 0: auto, max(n / exaggeration / 4, 50) per phase"),
        0.0, 1e6)
      ->capture_default_str();
  bound<std::int64_t>(cmd->add_option("--quality-rows", opt->quality_rows,
                                      "Evaluate the quality sums over at most this many points "
                                      "(all if fewer)"),
                      1, kMaxCount)
      ->capture_default_str();
  cmd->add_flag("--json", opt->json,
                "Print the run's report (method settings, quality, timings: what OUT.quality.json "
                "holds) as JSON on stdout instead of the summary line; needs -o to a file");
  cmd->add_option("--field", opt->field, "JSONL input: the field holding the vector")
      ->capture_default_str();
  return [opt] {
    if (opt->out.empty()) {
      MMEMBED_CHECK(std::filesystem::is_directory(opt->input), InvalidArgument,
                    "-o OUT.csv is needed (only an input folder has a default: INPUT/",
                    opt->method, ".csv)");
      opt->out = (std::filesystem::path(opt->input) / (opt->method + ".csv")).string();
    }
    return run_reduce(*opt);
  };
}

}  // namespace mmembed::cli
