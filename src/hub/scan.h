// What a Hugging Face cache holds, read as huggingface_hub's scan_cache_dir reads it (version
// 0.36.2, utils/_cache_manager.py), for `mmembed models list`.
//
//   hub::CacheScan s = hub::scan_cache(hub::read_hub_config(hub::process_env()).cache_dir);
//   for (const auto& repo : s.repos) std::cout << repo.repo_id << " " << repo.size_on_disk << "\n";
//
// The same rules as Python, so that both report the same numbers:
//  - the cache folder's path is made absolute with its links resolved; every entry in it except
//    `.locks`, `CACHEDIR.TAG`, `.DS_Store`, `Thumbs.db` and `desktop.ini` is a repository folder
//    `<type>s--<org>--<name>`; one that is not (a file, no "--", a type other than model,
//    dataset or space, no snapshots/ folder, a ref naming a commit without a snapshot, a snapshot
//    file whose blob is missing) is left out with a warning naming it, and the others are read;
//  - a revision is a folder of snapshots/; its files are every non-folder below it; a file's
//    blob is the file with its links resolved (the blob for a symlink, the file itself for a
//    copy); sizes are st_size;
//  - a revision's size is the sum over its distinct blobs; a repository's size and file count
//    are over the distinct blobs of all its revisions (blobs no snapshot uses are not counted);
//  - last accessed / last modified: the newest atime / mtime of those blobs (of the repository
//    folder when it has none); a revision's last modified: its newest blob's mtime (the folder's
//    own when empty);
//  - refs/ is read recursively: each file is a ref ("main", "refs/pr/1") whose content, taken
//    verbatim, is the commit it names.
// Unlike Python, reading is bounded and never blocks: a ref that is not a regular file or is
// larger than 4 KiB, a symlink loop, or folders nested more than 64 deep make a warning.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mmembed::hub {

namespace fs = std::filesystem;

struct CachedFile {
  std::string name;    // path in the snapshot, "/"-separated ("1_Pooling/config.json")
  fs::path file_path;  // snapshots/<commit>/<name>
  fs::path blob_path;  // the file with links resolved
  std::uint64_t size_on_disk = 0;
  double last_accessed = 0;  // seconds since the epoch (the blob's atime)
  double last_modified = 0;  // (the blob's mtime)
};

struct CachedRevision {
  std::string commit_hash;
  std::vector<std::string> refs;  // sorted
  fs::path snapshot_path;
  std::uint64_t size_on_disk = 0;
  double last_modified = 0;
  std::vector<CachedFile> files;  // sorted by name
};

struct CachedRepo {
  std::string repo_id;
  std::string repo_type;  // "model", "dataset", "space"
  fs::path repo_path;
  std::uint64_t size_on_disk = 0;
  std::size_t nb_files = 0;  // distinct blobs
  double last_accessed = 0;
  double last_modified = 0;
  std::vector<std::string> refs;             // of all revisions, sorted
  std::vector<CachedRevision> revisions;     // sorted by commit hash
};

struct CacheScan {
  fs::path cache_dir;   // as scanned (absolute, links resolved)
  bool exists = false;  // false: there is no cache folder (nothing else is set)
  std::vector<CachedRepo> repos;  // sorted by repo_path, as huggingface-cli prints them
  std::uint64_t size_on_disk = 0;
  std::vector<std::string> warnings;
};

// IoError when cache_dir exists but is not a folder or cannot be listed.
CacheScan scan_cache(const fs::path& cache_dir);

// huggingface_hub's _format_size: "1.9G", "466.2K", "53.0" (powers of 1000).
std::string format_size(std::uint64_t bytes);
// huggingface_hub's _format_timesince relative to `now`: "a few seconds ago", "3 days ago".
std::string format_timesince(double timestamp, double now);

}  // namespace mmembed::hub
