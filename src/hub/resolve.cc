#include "hub/resolve.h"


#include <algorithm>
#include <cctype>
#include <cmath>
#include <system_error>

#include "hub/sha256.h"
#include "mmembed/hub.h"

namespace mmembed::hub {
namespace {

// The HEAD failed in a way a cached copy may stand in for (network, timeout, 5xx, 429).
class TransientHubError : public HubError {
 public:
  using HubError::HubError;
};
// 401/403/RepoNotFound/GatedRepo: a cached copy may stand in, otherwise this is the error.
class AccessHubError : public HubError {
 public:
  using HubError::HubError;
};

std::string http_error_text(const HttpResponse& r) {
  std::string s = "HTTP " + std::to_string(r.status);
  if (auto code = r.header("X-Error-Code")) s += " " + *code;
  if (auto msg = r.header("X-Error-Message")) s += ": " + *msg;
  return s;
}

std::string origin_of(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto slash = url.find('/', scheme + 3);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

long to_ms(double s) { return static_cast<long>(std::llround(s * 1000.0)); }

}  // namespace

HubRepo::HubRepo(HubConfig config, std::string repo_id, std::string revision, HttpOptions http,
                 ProgressMode progress)
    : config_(std::move(config)),
      repo_id_(std::move(repo_id)),
      revision_(std::move(revision)),
      http_(std::move(http)),
      progress_(progress),
      cache_(config_.cache_dir, repo_id_) {
  if (revision_.empty()) revision_ = "main";
}

std::vector<std::string> HubRepo::auth_headers(const std::string& url) const {
  std::vector<std::string> h = http_.headers;
  // The token goes to the endpoint only, never to a CDN on another host.
  if (config_.token && url_host(url) == url_host(config_.endpoint))
    h.push_back("Authorization: Bearer " + *config_.token);
  return h;
}

std::optional<std::string> HubRepo::commit() const {
  if (online_commit_) return online_commit_;
  return cache_.commit_for(revision_);
}

std::optional<FileMetadata> HubRepo::metadata(const std::string& filename) {
  std::string url = resolve_url(config_.endpoint, repo_id_, revision_, filename);
  HttpOptions o = http_;
  o.follow_redirects = false;
  o.timeout_ms = to_ms(config_.etag_timeout_s);
  o.headers = auth_headers(url);
  o.headers.push_back("Accept-Encoding: identity");
  const std::string what = repo_id_ + " (revision " + revision_ + "): " + filename;

  HttpResponse r;
  for (int hop = 0;; ++hop) {
    r = http_head(url, o);
    requests_ += r.attempts;
    if (r.failure != HttpFailure::kNone)
      throw TransientHubError(what + ": cannot reach " + url + ": " + r.describe());
    if (r.status < 300 || r.status > 399) break;
    auto loc = r.header("Location");
    if (!loc || loc->find("://") != std::string::npos || loc->rfind("//", 0) == 0) break;
    // A relative redirect (renamed repository): follow it on the same host, as huggingface_hub.
    if (hop >= o.max_redirects) throw HubError(what + ": too many redirects at " + url);
    std::string path = loc->substr(0, loc->find_first_of("?#"));
    if (path.empty() || path[0] != '/') throw HubError(what + ": unsupported redirect to '" + *loc + "'");
    url = origin_of(url) + path;
  }

  if (r.status == 404) {
    auto code = r.header("X-Error-Code").value_or("");
    if (code == "EntryNotFound") {
      if (auto commit = r.header("X-Repo-Commit"); commit && is_commit_hash(*commit)) {
        online_commit_ = *commit;
        cache_.mark_absent(*commit, filename);
        cache_.write_ref(revision_, *commit);
      }
      return std::nullopt;
    }
    if (code == "RevisionNotFound")
      throw HubError(what + ": revision '" + revision_ + "' not found (" + http_error_text(r) + ")");
    throw AccessHubError(what + ": repository not found or not accessible (" + http_error_text(r) +
                         "); if it is private or gated, set HF_TOKEN to a token with access");
  }
  if (r.status == 401 || r.status == 403) {
    throw AccessHubError(what + ": access denied (" + http_error_text(r) + "); " +
                         (config_.token ? "the token in use has no access to this repository"
                                        : "the repository is gated or private: set HF_TOKEN"));
  }
  if (r.status >= 500 || r.status == 429)
    throw TransientHubError(what + ": the Hub answered " + http_error_text(r) + " at " + url);
  if (r.status >= 400) throw HubError(what + ": " + http_error_text(r) + " at " + url);

  FileMetadata m;
  m.commit = r.header("X-Repo-Commit").value_or("");
  if (m.commit.empty())
    throw HubError(what + ": " + url +
                   " does not look like a Hugging Face Hub (no X-Repo-Commit header); check "
                   "HF_ENDPOINT and proxy settings");
  auto etag = r.header("X-Linked-Etag");
  if (!etag) etag = r.header("ETag");
  if (!etag || normalize_etag(*etag).empty())
    throw HubError(what + ": the Hub sent no ETag for " + url);
  m.etag = normalize_etag(*etag);
  if (m.etag.find('/') != std::string::npos || m.etag == "." || m.etag == "..")
    throw HubError(what + ": unusable ETag '" + m.etag + "'");
  auto size = r.header("X-Linked-Size");
  if (!size && (r.status < 300 || r.status > 399)) size = r.header("Content-Length");
  if (!size || size->empty() || !std::all_of(size->begin(), size->end(), ::isdigit))
    throw HubError(what + ": the Hub sent no file size for " + url);
  m.size = std::stoull(*size);
  auto loc = r.header("Location");
  m.location = (r.status >= 300 && r.status <= 399 && loc) ? *loc : url;
  return m;
}

FileResult HubRepo::from_cache(const std::string& filename, const std::string& why) const {
  FileResult res;
  res.reason = why;
  auto commit = cache_.commit_for(revision_);
  if (!commit) return res;
  if (cache_.known_absent(*commit, filename)) {
    res.status = FileResult::Status::kAbsent;
    return res;
  }
  std::error_code ec;
  fs::path p = cache_.pointer_path(*commit, filename);
  if (fs::exists(p, ec)) {
    res.status = FileResult::Status::kFound;
    res.path = p;
  }
  return res;
}

FileResult HubRepo::file(const std::string& filename) {
  check_repo_filename(filename);
  std::error_code ec;
  if (is_commit_hash(revision_)) {
    fs::path p = cache_.pointer_path(revision_, filename);
    if (fs::exists(p, ec)) return FileResult{FileResult::Status::kFound, p, false, ""};
  }
  if (config_.offline) return from_cache(filename, "offline mode (HF_HUB_OFFLINE=1)");
  if (unreachable_) return from_cache(filename, *unreachable_);

  std::optional<FileMetadata> meta;
  try {
    meta = metadata(filename);
  } catch (const TransientHubError& e) {
    unreachable_ = e.what();
    return from_cache(filename, e.what());
  } catch (const AccessHubError& e) {
    FileResult cached = from_cache(filename, e.what());
    if (cached.status != FileResult::Status::kNotCached) return cached;
    // A repository the Hub does not know or refuses (a name given to `models import`, a gated
    // or private one) whose revision has a snapshot in the cache: the snapshot stands in for it,
    // as when the Hub is unreachable, and a file it lacks is not cached rather than an error.
    // (huggingface_hub raises the Hub's error here.)
    std::error_code ec2;
    if (auto commit = cache_.commit_for(revision_);
        commit && fs::is_directory(cache_.snapshot_dir(*commit), ec2))
      return cached;
    throw;
  }
  if (!meta) {
    FileResult res;
    res.status = FileResult::Status::kAbsent;
    res.reason = "not in the repository (404 EntryNotFound)";
    return res;
  }
  online_commit_ = meta->commit;
  cache_.write_ref(revision_, meta->commit);
  fs::path pointer = cache_.pointer_path(meta->commit, filename);
  if (fs::exists(pointer, ec)) return FileResult{FileResult::Status::kFound, pointer, false, ""};

  bool downloaded = false;
  {
    FileLock lock(cache_.lock_path(meta->etag));
    if (!fs::exists(cache_.blob_path(meta->etag), ec)) {
      download_blob(*meta, filename);
      downloaded = true;
    }
    if (!fs::exists(pointer, ec))
      cache_.link(meta->commit, filename, meta->etag, config_.disable_symlinks);
  }
  return FileResult{FileResult::Status::kFound, pointer, downloaded, ""};
}

void HubRepo::download_blob(const FileMetadata& meta, const std::string& filename) {
  const std::string what = repo_id_ + " (revision " + revision_ + "): " + filename;
  fs::path blob = cache_.blob_path(meta.etag);
  fs::path part = cache_.incomplete_path(meta.etag);
  std::error_code ec;
  fs::create_directories(blob.parent_path(), ec);
  if (ec) throw HubError(what + ": cannot create " + blob.parent_path().string() + ": " + ec.message());

  std::uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
  if (have > meta.size) {
    fs::remove(part, ec);
    have = 0;
  }
  if (have < meta.size || meta.size == 0) {
    HttpOptions o = http_;
    o.follow_redirects = true;
    o.timeout_ms = 0;
    o.low_speed_bytes = 1;
    o.low_speed_time_s = std::max(1L, static_cast<long>(std::ceil(config_.download_timeout_s)));
    o.headers = auth_headers(meta.location);
    o.max_bytes = meta.size;
    ProgressBar bar(filename, meta.size, ProgressBar::Unit::kBytes, progress_display(progress_));
    HttpResponse r = http_download(
        meta.location, part, o, [&](std::uint64_t got, std::uint64_t) { bar.set_bytes(got); },
        /*resume=*/true);
    requests_ += r.attempts;
    bar.finish();
    if (!r.ok()) {
      throw HubError(what + ": download failed from " + meta.location + ": " +
                     (r.failure == HttpFailure::kNone ? http_error_text(r) : r.describe()) +
                     " (the partial file " + part.string() + " is kept; a rerun resumes it)");
    }
    have = r.bytes;
  }
  if (have != meta.size) {
    fs::remove(part, ec);
    throw HubError(what + ": size mismatch after download: got " + std::to_string(have) +
                   " bytes, the Hub announced " + std::to_string(meta.size));
  }
  if (is_sha256_hex(meta.etag)) {
    std::string digest = sha256_file_hex(part.string());
    if (digest != meta.etag) {
      fs::remove(part, ec);
      throw HubError(what + ": checksum mismatch: SHA-256 of the download is " + digest +
                     ", the Hub announced " + meta.etag);
    }
  }
  fs::rename(part, blob, ec);
  if (ec) throw HubError(what + ": cannot move " + part.string() + " to " + blob.string() + ": " + ec.message());
}

}  // namespace mmembed::hub
