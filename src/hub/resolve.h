// Resolving files of a Hub repository through the cache (huggingface_hub's hf_hub_download
// semantics, spec section F.5), one file at a time.
//
//   hub::HubRepo repo(hub::read_hub_config(hub::process_env()), "org/name", "main");
//   auto r = repo.file("config.json");      // Found (r.path), Absent (404) or NotCached
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hub/cache.h"
#include "hub/http.h"
#include "hub/progress.h"

namespace mmembed::hub {

// What the Hub says about one file (the HEAD of its resolve URL).
struct FileMetadata {
  std::string commit;    // X-Repo-Commit
  std::string etag;      // normalized X-Linked-Etag, else ETag
  std::uint64_t size = 0;  // X-Linked-Size, else Content-Length
  std::string location;  // Location of an absolute redirect (CDN), else the (final) resolve URL
};

struct FileResult {
  enum class Status { kFound, kAbsent, kNotCached };
  Status status = Status::kNotCached;
  fs::path path;        // kFound: snapshots/<commit>/<file>
  bool downloaded = false;
  std::string reason;   // kNotCached / kAbsent: why (offline, network error, 404 text)
};

class HubRepo {
 public:
  // `http` supplies connect timeout, retries and backoff; the HEAD and download timeouts come
  // from config (etag_timeout_s, download_timeout_s).
  HubRepo(HubConfig config, std::string repo_id, std::string revision, HttpOptions http = {},
          ProgressMode progress = ProgressMode::kAuto);

  // Resolves one file. Never touches the network in offline mode. Throws HubError for answers
  // that a cache cannot stand in for when the file is not cached (401/403, repo or revision not
  // found, a failed download) and InvalidArgument for a bad file name.
  FileResult file(const std::string& filename);

  // HEAD of the file's resolve URL, following relative redirects only. Throws HubError
  // (status, X-Error-Code and X-Error-Message in the text); a 404 EntryNotFound returns nullopt
  // (and records .no_exist when the answer carries X-Repo-Commit).
  std::optional<FileMetadata> metadata(const std::string& filename);

  // The commit that the last online call saw, else what refs/<revision> says.
  std::optional<std::string> commit() const;
  const RepoCache& cache() const { return cache_; }
  const HubConfig& config() const { return config_; }
  const std::string& revision() const { return revision_; }
  // Number of network requests made (HEAD + GET), for tests and reports.
  int requests() const { return requests_; }

 private:
  FileResult from_cache(const std::string& filename, const std::string& why) const;
  void download_blob(const FileMetadata& meta, const std::string& filename);
  std::vector<std::string> auth_headers(const std::string& url) const;

  HubConfig config_;
  std::string repo_id_;
  std::string revision_;
  HttpOptions http_;
  ProgressMode progress_;
  RepoCache cache_;
  std::optional<std::string> online_commit_;
  // Set after a metadata request failed for network reasons (or 5xx/429): the remaining files go
  // straight to the cache instead of waiting through the retries again.
  std::optional<std::string> unreachable_;
  int requests_ = 0;
};

}  // namespace mmembed::hub
