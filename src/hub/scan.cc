#include "hub/scan.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <system_error>

#include "core/file.h"
#include "mmembed/error.h"

namespace mmembed::hub {
namespace {

constexpr int kMaxDepth = 64;
constexpr std::uint64_t kMaxRefBytes = 4096;

// huggingface_hub's FILES_TO_IGNORE, plus the two entries scan_cache_dir skips at the top.
bool os_helper_file(const std::string& name) {
  return name == ".DS_Store" || name == "Thumbs.db" || name == "desktop.ini";
}

double seconds(const struct timespec& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// A repository that cannot be reported, and why (huggingface_hub's CorruptedCacheException).
struct Corrupted {
  std::string what;
};

std::string str(const fs::path& p) { return p.string(); }

std::vector<fs::path> sorted_entries(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    out.push_back(it->path());
  if (ec) throw Corrupted{"Cannot list " + str(dir) + ": " + ec.message()};
  std::sort(out.begin(), out.end());
  return out;
}

// Every non-folder below `dir` (links to folders are not followed: no loops), as paths relative
// to `dir`.
void walk(const fs::path& dir, const std::string& prefix, int depth,
          std::vector<std::string>& out) {
  if (depth > kMaxDepth) throw Corrupted{"Folders nested more than 64 deep in " + str(dir)};
  for (const fs::path& entry : sorted_entries(dir)) {
    struct stat lst {};
    if (::lstat(entry.c_str(), &lst) != 0) continue;
    const std::string rel = prefix + entry.filename().string();
    if (S_ISDIR(lst.st_mode)) {
      walk(entry, rel + "/", depth + 1, out);
      continue;
    }
    struct stat st {};
    if (S_ISLNK(lst.st_mode) && ::stat(entry.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    out.push_back(rel);
  }
}

struct BlobStat {
  std::uint64_t size = 0;
  double atime = 0, mtime = 0;
};

CachedRepo scan_repo(const fs::path& repo_path) {
  std::error_code ec;
  if (!fs::is_directory(repo_path, ec))
    throw Corrupted{"Repo path is not a directory: " + str(repo_path)};
  const std::string name = repo_path.filename().string();
  const auto sep = name.find("--");
  if (sep == std::string::npos)
    throw Corrupted{"Repo path is not a valid HuggingFace cache directory: " + str(repo_path)};
  CachedRepo repo;
  repo.repo_path = repo_path;
  repo.repo_type = name.substr(0, sep);
  if (!repo.repo_type.empty()) repo.repo_type.pop_back();  // "models" -> "model"
  // str.replace("--", "/"): non-overlapping, left to right.
  const std::string rest = name.substr(sep + 2);
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest.compare(i, 2, "--") == 0) {
      repo.repo_id.push_back('/');
      ++i;
    } else {
      repo.repo_id.push_back(rest[i]);
    }
  }
  if (repo.repo_type != "model" && repo.repo_type != "dataset" && repo.repo_type != "space") {
    throw Corrupted{"Repo type must be `dataset`, `model` or `space`, found `" + repo.repo_type +
                    "` (" + str(repo_path) + ")."};
  }
  const fs::path snapshots = repo_path / "snapshots";
  const fs::path refs_dir = repo_path / "refs";
  if (!fs::is_directory(snapshots, ec))
    throw Corrupted{"Snapshots dir doesn't exist in cached repo: " + str(snapshots)};

  std::map<std::string, std::set<std::string>> refs_by_hash;
  if (fs::exists(refs_dir, ec)) {
    if (!fs::is_directory(refs_dir, ec))
      throw Corrupted{"Refs directory cannot be a file: " + str(refs_dir)};
    std::vector<std::string> refs;
    walk(refs_dir, "", 0, refs);
    for (const std::string& ref : refs) {
      const fs::path p = refs_dir / ref;
      if (os_helper_file(p.filename().string())) continue;
      std::string commit;
      try {
        commit = read_input_file(p.string(), kMaxRefBytes);
      } catch (const Error& e) {
        throw Corrupted{"Cannot read ref " + str(p) + ": " + e.what()};
      }
      refs_by_hash[commit].insert(ref);
    }
  }

  std::map<std::string, BlobStat> blobs;  // by blob path, over the whole repository
  for (const fs::path& revision_path : sorted_entries(snapshots)) {
    if (os_helper_file(revision_path.filename().string())) continue;
    if (!fs::is_directory(revision_path, ec))
      throw Corrupted{"Snapshots folder corrupted. Found a file: " + str(revision_path)};
    CachedRevision rev;
    rev.commit_hash = revision_path.filename().string();
    rev.snapshot_path = revision_path;
    std::vector<std::string> names;
    walk(revision_path, "", 0, names);
    std::set<std::string> rev_blobs;
    for (const std::string& n : names) {
      CachedFile f;
      f.name = n;
      f.file_path = revision_path / n;
      f.blob_path = fs::canonical(f.file_path, ec);
      if (ec) throw Corrupted{"Blob missing (broken symlink): " + str(f.file_path)};
      auto it = blobs.find(f.blob_path.string());
      if (it == blobs.end()) {
        struct stat st {};
        if (::stat(f.blob_path.c_str(), &st) != 0)
          throw Corrupted{"Blob missing (broken symlink): " + str(f.blob_path)};
        it = blobs.emplace(f.blob_path.string(),
                           BlobStat{static_cast<std::uint64_t>(st.st_size), seconds(st.st_atim),
                                    seconds(st.st_mtim)})
                 .first;
      }
      f.size_on_disk = it->second.size;
      f.last_accessed = it->second.atime;
      f.last_modified = it->second.mtime;
      if (rev_blobs.insert(f.blob_path.string()).second) rev.size_on_disk += f.size_on_disk;
      rev.last_modified = std::max(rev.last_modified, f.last_modified);
      rev.files.push_back(std::move(f));
    }
    if (rev.files.empty()) {
      struct stat st {};
      if (::stat(revision_path.c_str(), &st) == 0) rev.last_modified = seconds(st.st_mtim);
    }
    if (auto r = refs_by_hash.find(rev.commit_hash); r != refs_by_hash.end()) {
      rev.refs.assign(r->second.begin(), r->second.end());
      refs_by_hash.erase(r);
    }
    repo.revisions.push_back(std::move(rev));
  }
  if (!refs_by_hash.empty()) {
    std::string list;
    for (const auto& [commit, names] : refs_by_hash) {
      for (const auto& n : names)
        list += (list.empty() ? "" : ", ") + n + " -> '" + escape_for_message(commit, 60) + "'";
    }
    throw Corrupted{"Reference(s) refer to missing commit hashes: " + list + " (" +
                    str(repo_path) + ")."};
  }
  for (const auto& [path, st] : blobs) {
    repo.size_on_disk += st.size;
    repo.last_accessed = std::max(repo.last_accessed, st.atime);
    repo.last_modified = std::max(repo.last_modified, st.mtime);
  }
  repo.nb_files = blobs.size();
  if (blobs.empty()) {
    struct stat st {};
    if (::stat(repo_path.c_str(), &st) == 0) {
      repo.last_accessed = seconds(st.st_atim);
      repo.last_modified = seconds(st.st_mtim);
    }
  }
  std::set<std::string> all_refs;
  for (const auto& rev : repo.revisions) all_refs.insert(rev.refs.begin(), rev.refs.end());
  repo.refs.assign(all_refs.begin(), all_refs.end());
  return repo;
}

}  // namespace

CacheScan scan_cache(const fs::path& cache_dir) {
  CacheScan s;
  std::error_code ec;
  s.cache_dir = fs::absolute(cache_dir, ec);
  if (!fs::exists(s.cache_dir, ec)) return s;
  s.cache_dir = fs::canonical(cache_dir, ec);
  if (ec) throw IoError(escape_for_message(cache_dir.string()) + ": " + ec.message());
  if (!fs::is_directory(s.cache_dir, ec)) {
    const std::string kind = special_file_kind(s.cache_dir.string());
    throw IoError(escape_for_message(cache_dir.string()) + ": " +
                  (kind.empty() ? "is a file" : kind) +
                  "; the Hugging Face cache must be a folder");
  }
  s.exists = true;
  std::vector<fs::path> entries;
  try {
    entries = sorted_entries(s.cache_dir);
  } catch (const Corrupted& c) {
    throw IoError(c.what);
  }
  for (const fs::path& entry : entries) {
    const std::string name = entry.filename().string();
    if (name == ".locks" || name == "CACHEDIR.TAG" || os_helper_file(name)) continue;
    try {
      s.repos.push_back(scan_repo(entry));
      s.size_on_disk += s.repos.back().size_on_disk;
    } catch (const Corrupted& c) {
      s.warnings.push_back(c.what);
    }
  }
  return s;
}

std::string format_size(std::uint64_t bytes) {
  double v = static_cast<double>(bytes);
  for (const char* unit : {"", "K", "M", "G", "T", "P", "E", "Z"}) {
    if (std::fabs(v) < 1000.0) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%3.1f%s", v, unit);
      return buf;
    }
    v /= 1000.0;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1fY", v);
  return buf;
}

std::string format_timesince(double timestamp, double now) {
  const double delta = now - timestamp;
  if (delta < 20) return "a few seconds ago";
  struct Chunk {
    const char* label;
    double divider;
    long max_value;  // -1: none
  };
  static const Chunk kChunks[] = {
      {"second", 1, 60},         {"minute", 60, 60},          {"hour", 3600, 24},
      {"day", 86400, 6},         {"week", 86400.0 * 7, 6},    {"month", 86400.0 * 30, 11},
      {"year", 86400.0 * 365, -1},
  };
  long value = 0;
  const char* label = "";
  for (const Chunk& c : kChunks) {
    value = std::lrint(delta / c.divider);  // rounds half to even, as Python's round()
    label = c.label;
    if (c.max_value >= 0 && value <= c.max_value) break;
  }
  return std::to_string(value) + " " + label + (value > 1 ? "s" : "") + " ago";
}

}  // namespace mmembed::hub
