// The Hugging Face Hub cache layout and environment, as huggingface_hub (file_download.py,
// constants.py) defines them; see docs/hub.md and spec section F.
//
//   <cache>/models--<org>--<name>/blobs/<etag>                 file content
//   <cache>/models--<org>--<name>/blobs/<etag>.incomplete      download in progress (resumable)
//   <cache>/models--<org>--<name>/refs/<revision>              40-hex commit, no newline
//   <cache>/models--<org>--<name>/snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag>
//   <cache>/models--<org>--<name>/.no_exist/<commit>/<path>    empty: known not to exist
//   <cache>/.locks/models--<org>--<name>/<etag>.lock           flock while downloading
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mmembed::hub {

namespace fs = std::filesystem;

// Reads an environment variable; nullptr when unset. Injectable for tests.
using EnvFn = std::function<const char*(const char*)>;
EnvFn process_env();

struct HubConfig {
  std::string endpoint = "https://huggingface.co";  // no trailing "/"
  fs::path hf_home;
  fs::path cache_dir;
  std::optional<std::string> token;
  bool offline = false;
  double etag_timeout_s = 10;
  double download_timeout_s = 10;
  bool disable_symlinks = false;
};

// HF_ENDPOINT, HF_HOME (XDG_CACHE_HOME/huggingface, ~/.cache/huggingface), HF_HUB_CACHE
// (HUGGINGFACE_HUB_CACHE, $HF_HOME/hub), HF_HUB_OFFLINE (TRANSFORMERS_OFFLINE), HF_TOKEN
// (HUGGING_FACE_HUB_TOKEN, file $HF_TOKEN_PATH or $HF_HOME/token; trimmed; empty = none; not
// read from the file when HF_HUB_DISABLE_IMPLICIT_TOKEN is true; a token file that is there
// but not a regular file is an IoError naming it), HF_HUB_ETAG_TIMEOUT,
// HF_HUB_DOWNLOAD_TIMEOUT, HF_HUB_DISABLE_SYMLINKS. Paths get ~ and $VAR expansion.
HubConfig read_hub_config(const EnvFn& env);

// "1", "ON", "YES", "TRUE" (case-insensitive), as huggingface_hub's _is_true.
bool env_true(const char* value);

// ~ and $VAR / ${VAR} expansion (unknown variables are left as written, like os.path.expandvars).
std::string expand_path(const std::string& path, const EnvFn& env);

// `W/"abc"` -> `abc`.
std::string normalize_etag(std::string_view etag);
bool is_commit_hash(std::string_view s);  // ^[0-9a-f]{40}$
bool is_sha256_hex(std::string_view s);   // ^[0-9a-f]{64}$
// The form of a Hub repo id, nothing else: "name" or "org/name", each part 1 to 96 of letters,
// digits, "-", "_", "." (not starting or ending with "-" or ".", no "--" or ".."). Unlike
// is_repo_id (mmembed/hub.h) it does not look at the file system.
bool valid_repo_id(std::string_view repo_id);
// "models--org--name".
std::string repo_folder_name(std::string_view repo_id, std::string_view repo_type = "model");
// Percent-encoding as huggingface_hub's quote(): unreserved characters kept, plus `safe`.
std::string url_quote(std::string_view s, std::string_view safe);
// {endpoint}/{repo_id}/resolve/{quote(revision, "")}/{quote(filename, "/")}
std::string resolve_url(std::string_view endpoint, std::string_view repo_id,
                        std::string_view revision, std::string_view filename);
// Rejects absolute paths, "..", empty segments and backslashes in a repository file name.
void check_repo_filename(const std::string& filename);

// One repository's folder in the cache.
class RepoCache {
 public:
  RepoCache(fs::path cache_dir, std::string repo_id);

  const fs::path& cache_dir() const { return cache_dir_; }
  const fs::path& storage() const { return storage_; }
  const std::string& repo_id() const { return repo_id_; }
  fs::path blob_path(const std::string& etag) const;
  fs::path incomplete_path(const std::string& etag) const;
  fs::path snapshot_dir(const std::string& commit) const;
  fs::path pointer_path(const std::string& commit, const std::string& filename) const;
  fs::path no_exist_path(const std::string& commit, const std::string& filename) const;
  fs::path lock_path(const std::string& etag) const;

  // Commit for a revision: the revision itself if it is a commit hash, else refs/<revision>
  // (none when that is missing; IoError naming it when it is not a regular file).
  std::optional<std::string> commit_for(const std::string& revision) const;
  // Writes refs/<revision> (atomic, no newline) unless revision == commit or it already holds it.
  void write_ref(const std::string& revision, const std::string& commit) const;
  // .no_exist markers, a hint only: a regular file there marks the file absent; mark_absent
  // writes none where anything (a FIFO, a folder) is already there.
  bool known_absent(const std::string& commit, const std::string& filename) const;
  void mark_absent(const std::string& commit, const std::string& filename) const;
  // Creates snapshots/<commit>/<filename> pointing at blobs/<etag>: a relative symlink, or a copy
  // when symlinks are disabled or fail.
  void link(const std::string& commit, const std::string& filename, const std::string& etag,
            bool copy) const;

 private:
  fs::path cache_dir_;
  std::string repo_id_;
  fs::path storage_;
};

// An exclusive flock on a file, created if needed; released by the destructor.
class FileLock {
 public:
  explicit FileLock(const fs::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Writes `content` to `path` through core/output_file.h (temp file in the same folder created
// exclusively, fsync, rename).
void write_file_atomic(const fs::path& path, std::string_view content);

}  // namespace mmembed::hub
