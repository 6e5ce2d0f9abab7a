// mmembed models import DIR --as ORG/NAME [--revision main] [--force] [--copy] [--cache-dir DIR]
//                       [--json]
// mmembed models list [--json] [--revisions] [--cache-dir DIR]
//
// The Hugging Face cache: put a local model folder into it as a snapshot (hub/import.h), and
// show what it holds as `huggingface-cli scan-cache` does (hub/scan.h).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "core/file.h"
#include "hub/cache.h"
#include "hub/import.h"
#include "hub/scan.h"

namespace mmembed::cli {
namespace {

namespace fs = std::filesystem;

struct ModelsOptions {
  std::string dir, repo_id, revision = "main", cache_dir;
  bool force = false, copy = false, json = false, revisions = false;
};

fs::path cache_dir_of(const ModelsOptions& opt) {
  const hub::EnvFn env = hub::process_env();
  if (!opt.cache_dir.empty()) return hub::expand_path(opt.cache_dir, env);
  return hub::read_hub_config(env).cache_dir;
}

std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

int run_import(const ModelsOptions& opt) {
  const hub::EnvFn env = hub::process_env();
  hub::ImportOptions io;
  io.cache_dir = cache_dir_of(opt);
  io.revision = opt.revision;
  io.force = opt.force;
  io.copy = opt.copy || hub::read_hub_config(env).disable_symlinks;
  const hub::ImportResult r = hub::import_model_folder(opt.dir, opt.repo_id, io);

  std::size_t new_blobs = 0;
  for (const auto& f : r.files) new_blobs += f.new_blob ? 1 : 0;
  std::error_code ec;
  if (!fs::exists(fs::path(opt.dir) / "config.json", ec)) {
    std::fprintf(stderr,
                 "models import: note: %s has no config.json; --model %s will not load it\n",
                 escape_for_message(opt.dir).c_str(), r.repo_id.c_str());
  }
  if (opt.json) {
    nlohmann::ordered_json j;
    j["repo_id"] = r.repo_id;
    j["revision"] = r.revision;
    j["commit"] = r.commit;
    j["repo_path"] = r.repo_path.string();
    j["snapshot_path"] = r.snapshot.string();
    j["created"] = r.created;
    j["replaced"] = r.replaced;
    j["ref_changed"] = r.ref_changed;
    j["previous_commit"] = r.previous_commit.empty() ? nlohmann::ordered_json()
                                                    : nlohmann::ordered_json(r.previous_commit);
    j["bytes"] = r.bytes;
    j["files"] = nlohmann::ordered_json::array();
    for (const auto& f : r.files) {
      j["files"].push_back({{"path", f.path}, {"blob", f.blob}, {"size", f.size}, {"lfs", f.lfs},
                            {"new_blob", f.new_blob}});
    }
    std::printf("%s\n", dump(j).c_str());
    return 0;
  }
  const char* state = r.replaced  ? "replaced a damaged snapshot of the same content"
                      : r.created ? "new snapshot"
                                  : "already in the cache, unchanged";
  std::printf("%s (revision %s) -> %s\n", r.repo_id.c_str(), r.revision.c_str(),
              r.snapshot.string().c_str());
  std::printf("commit %s (the git tree id of the files): %s\n", r.commit.c_str(), state);
  std::printf("%zu files, %s, %zu new blobs\n", r.files.size(), hub::format_size(r.bytes).c_str(),
              new_blobs);
  if (!r.previous_commit.empty()) {
    std::printf("refs/%s moved from %s (that snapshot stays in the cache)\n", r.revision.c_str(),
                escape_for_message(r.previous_commit, 60).c_str());
  } else if (r.ref_changed) {
    std::printf("refs/%s -> %s\n", r.revision.c_str(), r.commit.c_str());
  }
  std::printf("use it with --model %s%s\n", r.repo_id.c_str(),
              r.revision == "main" ? "" : (" --revision " + r.revision).c_str());
  return 0;
}

// Python's str.format "{:N}" (left-aligned) for the table columns; numbers right-aligned.
std::string table(const std::vector<std::vector<std::string>>& rows,
                  const std::vector<std::string>& headers, const std::vector<bool>& right) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t c = 0; c < headers.size(); ++c) {
    width[c] = headers[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string s;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(width[c] - cells[c].size(), ' ');
      s += (right[c] && !header) ? pad + cells[c] : cells[c] + pad;
      s += ' ';
    }
    return s;
  };
  std::string out = line(headers, true) + "\n";
  std::vector<std::string> dashes;
  for (std::size_t w : width) dashes.push_back(std::string(w, '-'));
  out += line(dashes, true) + "\n";
  for (const auto& row : rows) out += line(row, false) + "\n";
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string padded_size(std::uint64_t bytes) {
  std::string s = hub::format_size(bytes);
  return std::string(s.size() < 12 ? 12 - s.size() : 0, ' ') + s;
}

int run_list(const ModelsOptions& opt) {
  const fs::path dir = cache_dir_of(opt);
  const hub::CacheScan s = hub::scan_cache(dir);
  if (opt.json) {
    nlohmann::ordered_json j;
    j["cache_dir"] = s.cache_dir.string();
    j["exists"] = s.exists;
    j["size_on_disk"] = s.size_on_disk;
    j["repos"] = nlohmann::ordered_json::array();
    for (const auto& repo : s.repos) {
      nlohmann::ordered_json r;
      r["repo_id"] = repo.repo_id;
      r["repo_type"] = repo.repo_type;
      r["repo_path"] = repo.repo_path.string();
      r["size_on_disk"] = repo.size_on_disk;
      r["nb_files"] = repo.nb_files;
      r["last_accessed"] = repo.last_accessed;
      r["last_modified"] = repo.last_modified;
      r["refs"] = repo.refs;
      r["revisions"] = nlohmann::ordered_json::array();
      for (const auto& rev : repo.revisions) {
        nlohmann::ordered_json v;
        v["commit_hash"] = rev.commit_hash;
        v["refs"] = rev.refs;
        v["size_on_disk"] = rev.size_on_disk;
        v["nb_files"] = rev.files.size();
        v["last_modified"] = rev.last_modified;
        v["snapshot_path"] = rev.snapshot_path.string();
        v["files"] = nlohmann::ordered_json::array();
        for (const auto& f : rev.files) {
          v["files"].push_back({{"file_name", f.name},
                                {"size_on_disk", f.size_on_disk},
                                {"file_path", f.file_path.string()},
                                {"blob_path", f.blob_path.string()}});
        }
        r["revisions"].push_back(std::move(v));
      }
      j["repos"].push_back(std::move(r));
    }
    j["warnings"] = s.warnings;
    std::printf("%s\n", dump(j).c_str());
  } else if (!s.exists) {
    std::fprintf(stderr, "models list: there is no Hugging Face cache at %s (nothing downloaded "
                 "or imported there yet; see --cache-dir, HF_HUB_CACHE, HF_HOME)\n",
                 escape_for_message(s.cache_dir.string()).c_str());
  } else {
    const double now = std::chrono::duration<double>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    std::vector<std::vector<std::string>> rows;
    if (!opt.revisions) {
      for (const auto& repo : s.repos) {
        rows.push_back({repo.repo_id, repo.repo_type, padded_size(repo.size_on_disk),
                        std::to_string(repo.nb_files),
                        hub::format_timesince(repo.last_accessed, now),
                        hub::format_timesince(repo.last_modified, now), join(repo.refs),
                        repo.repo_path.string()});
      }
      std::fputs(table(rows,
                       {"REPO ID", "REPO TYPE", "SIZE ON DISK", "NB FILES", "LAST_ACCESSED",
                        "LAST_MODIFIED", "REFS", "LOCAL PATH"},
                       {false, false, false, true, false, false, false, false})
                     .c_str(),
                 stdout);
    } else {
      for (const auto& repo : s.repos) {
        for (const auto& rev : repo.revisions) {
          rows.push_back({repo.repo_id, repo.repo_type, rev.commit_hash,
                          padded_size(rev.size_on_disk), std::to_string(rev.files.size()),
                          hub::format_timesince(rev.last_modified, now), join(rev.refs),
                          rev.snapshot_path.string()});
        }
      }
      std::fputs(table(rows,
                       {"REPO ID", "REPO TYPE", "REVISION", "SIZE ON DISK", "NB FILES",
                        "LAST_MODIFIED", "REFS", "LOCAL PATH"},
                       {false, false, false, false, true, false, false, false})
                     .c_str(),
                 stdout);
    }
    std::printf("\nScanned %zu repo(s) in %s for a total of %s.\n", s.repos.size(),
                s.cache_dir.string().c_str(), hub::format_size(s.size_on_disk).c_str());
  }
  if (!s.warnings.empty()) {
    std::fprintf(stderr,
                 "models list: %zu entr%s of the cache left out (not a valid repository folder; "
                 "huggingface_hub's scan_cache_dir warns about the same):\n",
                 s.warnings.size(), s.warnings.size() == 1 ? "y" : "ies");
    for (const auto& w : s.warnings)
      std::fprintf(stderr, "  %s\n", escape_for_message(w, 1000).c_str());
  }
  return 0;
}

}  // namespace

Runner add_models(CLI::App& app, const GlobalOptions& /*global*/) {
  auto opt = std::make_shared<ModelsOptions>();
  CLI::App* models = app.add_subcommand(
      "models",
      "The Hugging Face cache that --model org/name reads (shared with Python):\n"
      "'models import' puts a local model folder into it, 'models list' shows what it holds.");
  models->require_subcommand(1);
  models->footer(
      "The cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub\n"
      "(--cache-dir overrides it). Run 'mmembed models COMMAND --help'. See docs/hub.md.");

  CLI::App* imp = models->add_subcommand(
      "import",
      "Put a local model folder into the Hugging Face cache as a snapshot of ORG/NAME,\n"
      "so that --model ORG/NAME (and Python, offline) load it.");
  imp->footer(
      "Writes <cache>/models--ORG--NAME/blobs/ (each file once, named as the Hub names it: the\n"
      "SHA-256 for LFS files such as *.safetensors, the git blob id otherwise),\n"
      "snapshots/<commit>/ (relative symlinks to the blobs) and refs/<revision>. <commit> is the\n"
      "git tree id of the files (what 'git add -A && git write-tree' prints), so the same files\n"
      "always give the same snapshot. huggingface_hub, transformers and sentence-transformers\n"
      "read it like a download.\n"
      "The snapshot appears complete or not at all. Refused before anything is written: FIFOs,\n"
      "devices, sockets, symlinks that leave DIR, dangle or lead to a folder; and, without\n"
      "--force, a revision that already names another snapshot. .git and .cache/huggingface\n"
      "are left out. Importing the same files again changes nothing.\n"
      "The cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.");
  imp->add_option("dir", opt->dir, "The model folder (config.json, weights, tokenizer files...)")
      ->required();
  imp->add_option("--as", opt->repo_id,
                  "Repository id ORG/NAME to file it under (a name without ORG/ only for the\n"
                  "original transformers checkpoints such as bert-base-uncased: any other short\n"
                  "name stands for sentence-transformers/NAME)")
      ->required();
  imp->add_option("--revision", opt->revision, "Branch or tag name written to refs/")
      ->capture_default_str();
  imp->add_flag("--force", opt->force,
                "Point the revision at this snapshot even if it names another one (which stays\n"
                "in the cache), and replace a damaged snapshot or blob of the same name");
  imp->add_flag("--copy", opt->copy,
                "Copies of the blobs in snapshots/ instead of symlinks (also when\n"
                "HF_HUB_DISABLE_SYMLINKS is set)");
  imp->add_option("--cache-dir", opt->cache_dir,
                  "The Hugging Face cache folder (default: see below)");
  imp->add_flag("--json", opt->json, "Print the result as JSON (commit, paths, files, blobs)");

  CLI::App* list = models->add_subcommand(
      "list", "Show what the Hugging Face cache holds, as 'huggingface-cli scan-cache' does.");
  list->footer(
      "Columns: repo id, type, size on disk, number of files, last accessed, last modified,\n"
      "refs and local path; with --revisions one row per snapshot. Sizes count each blob once,\n"
      "in powers of 1000 (K = 1000 bytes). Folders that are not valid cache entries are left out\n"
      "with a warning on stderr, as in Python.\n"
      "The cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.");
  list->add_flag("--json", opt->json,
                 "Machine-readable: every repo, revision and file, sizes in bytes, times in\n"
                 "seconds since the epoch");
  list->add_flag("--revisions", opt->revisions, "One row per revision (snapshot)");
  list->add_option("--cache-dir", opt->cache_dir,
                   "The Hugging Face cache folder (default: see below)");

  return [opt, imp, list] {
    if (imp->parsed()) return run_import(*opt);
    if (list->parsed()) return run_list(*opt);
    return 2;
  };
}

}  // namespace mmembed::cli
