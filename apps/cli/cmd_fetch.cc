// mmembed fetch MANIFEST -o DIR [--jobs N] [--max-bytes B] [--timeout S] ...
//
// Downloads the images of a dataset (every http(s) URL of the `image` column) into DIR/images,
// and writes DIR/manifest.jsonl with local paths (usable by `embed --input`) and
// DIR/errors.jsonl with one line per item that could not be fetched.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <atomic>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/output_file.h"
#include "cli_util.h"
#include "commands.h"
#include "data/manifest.h"
#include "hub/fetch.h"
#include "hub/progress.h"
#include "io/matrix.h"
#include "mmembed/error.h"

namespace mmembed::cli {
namespace {

std::atomic<bool> g_cancel{false};
extern "C" void on_signal(int) { g_cancel.store(true); }

namespace fs = std::filesystem;

struct FetchCliOptions {
  std::string manifest, out;
  int jobs = 8;
  std::uint64_t max_bytes = 50'000'000;
  double connect_timeout = 10, timeout = 120, stall_timeout = 30, backoff = 0.5;
  int retries = 3, max_redirects = 5;
  std::string progress = "auto";
  bool json = false;
};

std::string dump_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

int run_fetch(const FetchCliOptions& opt) {
  data::ManifestOptions mo;
  mo.need_text = false;  // image-only datasets are fine; captions are carried along when present
  mo.need_image = true;
  data::Manifest m = data::read_dataset(opt.manifest, mo);

  const fs::path out = opt.out;
  const fs::path images = out / "images";
  std::error_code ec;
  fs::create_directories(images, ec);
  if (ec) throw IoError(out.string() + ": cannot create folder: " + ec.message());

  std::vector<std::string> urls;
  std::vector<std::size_t> url_of(m.items.size(), SIZE_MAX);
  for (std::size_t i = 0; i < m.items.size(); ++i) {
    if (data::is_url(m.items[i].image)) {
      url_of[i] = urls.size();
      urls.push_back(m.items[i].image);
    }
  }

  hub::FetchOptions fo;
  fo.jobs = opt.jobs;
  fo.http.max_bytes = opt.max_bytes;
  fo.http.connect_timeout_ms = std::lround(opt.connect_timeout * 1000);
  fo.http.timeout_ms = std::lround(opt.timeout * 1000);
  fo.http.low_speed_bytes = 1;
  fo.http.low_speed_time_s = std::max(1L, std::lround(opt.stall_timeout));
  fo.http.retries = opt.retries;
  fo.http.backoff_ms = std::lround(opt.backoff * 1000);
  fo.http.max_redirects = opt.max_redirects;
  fo.progress = hub::parse_progress_mode(opt.progress);
  // Ctrl-C (or SIGTERM) cancels the transfers in flight; what finished stays in DIR/images, so
  // a rerun downloads only the rest.
  g_cancel.store(false);
  fo.http.cancel = &g_cancel;
  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  std::vector<hub::FetchOutcome> got = hub::fetch_urls(urls, images, fo);
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (g_cancel.load()) {
    std::size_t done = 0;
    for (const auto& o : got) done += o.ok ? 1 : 0;
    std::fprintf(stderr, "fetch: interrupted; %zu of %zu images are stored in %s, rerun to get the "
                 "rest (manifest.jsonl not written)\n", done, urls.size(), images.string().c_str());
    return 130;
  }

  std::string manifest_text, errors_text;
  std::size_t downloaded = 0, cached = 0, local = 0, failed = 0;
  for (std::size_t i = 0; i < m.items.size(); ++i) {
    const data::Item& item = m.items[i];
    nlohmann::ordered_json j;
    j["id"] = item.id;
    if (url_of[i] == SIZE_MAX) {
      ++local;
      j["image"] = item.image;
    } else {
      const hub::FetchOutcome& o = got[url_of[i]];
      if (!o.ok) {
        ++failed;
        nlohmann::ordered_json e;
        e["id"] = item.id;
        e["url"] = item.image;
        e["reason"] = o.reason;
        if (o.status) e["status"] = o.status;
        if (item.line) e["line"] = item.line;
        errors_text += dump_line(e);
        continue;
      }
      (o.cached ? cached : downloaded) += 1;
      j["image"] = fs::relative(o.path, out, ec).generic_string();
      j["source"] = item.image;
    }
    j["text"] = item.text;
    if (m.has_label) j["label"] = item.label;
    manifest_text += dump_line(j);
  }
  io::write_file_atomic((out / "manifest.jsonl").string(), manifest_text);
  io::write_file_atomic((out / "errors.jsonl").string(), errors_text);

  if (opt.json) {
    const nlohmann::ordered_json summary = {
        {"items", m.items.size()}, {"downloaded", downloaded}, {"cached", cached},
        {"local", local},          {"failed", failed},
        {"manifest", (out / "manifest.jsonl").string()},
        {"errors", (out / "errors.jsonl").string()}};
    write_output_file("-", summary.dump(-1, ' ', false,
                                        nlohmann::ordered_json::error_handler_t::replace) + "\n");
  }
  if (core::log_level() != core::LogLevel::kQuiet) std::fprintf(stderr,
               "fetch: %zu items: %zu downloaded, %zu already cached, %zu local, %zu failed\n"
               "fetch: wrote %s%s\n",
               m.items.size(), downloaded, cached, local, failed,
               (out / "manifest.jsonl").string().c_str(),
               failed ? (" and " + (out / "errors.jsonl").string() + " (one line per failure)").c_str()
                      : "");
  return failed ? 1 : 0;
}

}  // namespace

Runner add_fetch(CLI::App& app, const GlobalOptions& /*global*/) {
  auto opt = std::make_shared<FetchCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "fetch",
      "Download the images of a dataset (JSONL/CSV/TSV manifest with id,image,text[,label])\n"
      "into DIR/images, in parallel, with timeouts, retries and a size limit. Writes\n"
      "DIR/manifest.jsonl (local image paths, for 'embed --input') and DIR/errors.jsonl.\n"
      "A rerun downloads only what is missing (files are named by the SHA-256 of the URL).\n"
      "Exit code: 0 when every item is available, 1 when some failed (see errors.jsonl)\n"
      "or the manifest is invalid.");
  cmd->add_option("manifest", opt->manifest, "Manifest (.jsonl, .csv, .tsv) or image folder")
      ->required();
  cmd->add_option("-o,--output", opt->out, "Output folder")->required();
  bound(cmd->add_option("-j,--jobs", opt->jobs, "Parallel downloads"), 1, hub::kMaxFetchJobs)
      ->capture_default_str();
  bound(cmd->add_option("--max-bytes", opt->max_bytes, "Largest accepted file, in bytes"),
        std::uint64_t{1}, std::uint64_t{1} << 40)
      ->capture_default_str();
  // Seconds become milliseconds in a long: a week keeps every product far from overflowing.
  constexpr double kWeek = 7 * 24 * 3600;
  bound(cmd->add_option("--connect-timeout", opt->connect_timeout, "Connect timeout, seconds"),
        0.001, kWeek)
      ->capture_default_str();
  bound(cmd->add_option("--timeout", opt->timeout, "Total time per attempt, seconds"), 0.001,
        kWeek)
      ->capture_default_str();
  bound(cmd->add_option("--stall-timeout", opt->stall_timeout,
                        "Abort an attempt that receives nothing for this many seconds"),
        1.0, kWeek)
      ->capture_default_str();
  bound(cmd->add_option("--retries", opt->retries,
                        "Retries on connect errors, timeouts, dropped connections, HTTP 5xx and "
                        "429"),
        0, 20)
      ->capture_default_str();
  bound(cmd->add_option("--backoff", opt->backoff,
                        "First retry delay in seconds (doubles each retry)"),
        0.0, 3600.0)
      ->capture_default_str();
  bound(cmd->add_option("--max-redirects", opt->max_redirects, "Redirects followed per URL"), 0,
        50)
      ->capture_default_str();
  cmd->add_flag("--json", opt->json,
                "The summary as one JSON object on stdout (items, downloaded, cached, local, "
                "failed, the files written)");
  cmd->add_option("--progress", opt->progress,
                  "Progress bar on stderr: auto (when stderr is a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  return [opt] { return run_fetch(*opt); };
}

}  // namespace mmembed::cli
