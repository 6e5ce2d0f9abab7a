#include "hub/import.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "core/file.h"
#include "core/output_file.h"
#include "hub/cache.h"
#include "hub/sha1.h"
#include "hub/sha256.h"
#include "mmembed/error.h"
#include "mmembed/hub.h"

namespace mmembed::hub {
namespace {

constexpr std::size_t kPiece = std::size_t{1} << 20;
constexpr std::uint64_t kLfsSize = 10 * kMiB;
constexpr int kMaxDepth = 64;

std::string q(const fs::path& p) { return escape_for_message(p.string()); }

std::string errno_text(int e) { return std::strerror(e); }

// The .gitattributes the Hub writes into a new model repository (LFS patterns), as of 2025.
const char* const kLfsExtensions[] = {
    "7z",  "arrow", "bin",     "bz2",  "ckpt", "ftz",    "gz",      "h5",  "joblib",
    "mlmodel", "model", "msgpack", "npy",  "npz",  "onnx",   "ot",      "parquet", "pb",
    "pickle", "pkl",  "pt",      "pth",  "rar",  "safetensors", "tar", "tflite", "tgz",
    "wasm", "xz",    "zip",     "zst",  "zstandard",
};

std::string kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISREG(mode)) return "a file";
  return "not a regular file";
}

// `inner` is `root` or lies below it (both canonical).
bool within(const fs::path& root, const fs::path& inner) {
  auto r = root.begin(), i = inner.begin();
  for (; r != root.end(); ++r, ++i) {
    if (i == inner.end() || *r != *i) return false;
  }
  return true;
}

// huggingface_hub's upload_folder leaves these out by default (DEFAULT_IGNORE_PATTERNS).
bool ignored(const std::string& rel) {
  const auto slash = rel.rfind('/');
  const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (name == ".git") return true;
  return rel == ".cache/huggingface" ||
         (rel.size() > 19 && rel.compare(rel.size() - 19, 19, "/.cache/huggingface") == 0);
}

struct SourceFile {
  std::string path;  // repository path
  fs::path source;   // what is read: the file, or a symlink's (canonical) target
  dev_t dev = 0;
  ino_t ino = 0;
  std::uint64_t size = 0;
  std::string sha256, git_sha1;
  bool lfs = false;
  const std::string& blob() const { return lfs ? sha256 : git_sha1; }
};

std::vector<SourceFile> list_source(const fs::path& dir, std::size_t max_files) {
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) throw IoError(q(dir) + ": cannot open the folder: " + ec.message());
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) throw IoError(q(dir) + ": " + errno_text(errno));
  if (!S_ISDIR(st.st_mode))
    throw InvalidArgument(q(dir) + ": is " + kind_of(st.st_mode) + ", not a model folder");

  std::vector<SourceFile> out;
  // (folder on disk, its repository path, depth)
  std::vector<std::tuple<fs::path, std::string, int>> todo{{root, "", 0}};
  while (!todo.empty()) {
    auto [folder, prefix, depth] = todo.back();
    todo.pop_back();
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
      entries.push_back(it->path());
    if (ec) throw IoError(q(folder) + ": cannot list the folder: " + ec.message());
    std::sort(entries.begin(), entries.end());
    for (const fs::path& entry : entries) {
      const std::string rel = prefix + entry.filename().string();
      if (ignored(rel)) continue;
      if (::lstat(entry.c_str(), &st) != 0)
        throw IoError(q(entry) + ": " + errno_text(errno));
      if (S_ISDIR(st.st_mode)) {
        if (depth + 1 > kMaxDepth)
          throw InvalidArgument(q(entry) + ": folders nested more than " +
                                std::to_string(kMaxDepth) + " deep");
        todo.emplace_back(entry, rel + "/", depth + 1);
        continue;
      }
      SourceFile f;
      f.path = rel;
      f.source = entry;
      if (S_ISLNK(st.st_mode)) {
        const fs::path target = fs::canonical(entry, ec);
        if (ec) {
          throw InvalidArgument(q(entry) + ": a symbolic link that cannot be followed (" +
                                ec.message() + "); refused");
        }
        if (!within(root, target)) {
          throw InvalidArgument(q(entry) + ": a symbolic link to " + q(target) + ", outside " +
                                q(root) + "; refused (copy the file into the folder, e.g. "
                                "cp -L, to import it)");
        }
        if (::stat(target.c_str(), &st) != 0)
          throw IoError(q(target) + ": " + errno_text(errno));
        if (S_ISDIR(st.st_mode)) {
          throw InvalidArgument(q(entry) + ": a symbolic link to the folder " + q(target) +
                                "; only links to regular files are followed");
        }
        f.source = target;
      }
      if (!S_ISREG(st.st_mode)) {
        throw InvalidArgument(q(entry) + ": is " + kind_of(st.st_mode) +
                              "; only regular files (and links to them) can be imported");
      }
      check_repo_filename(rel);
      f.dev = st.st_dev;
      f.ino = st.st_ino;
      out.push_back(std::move(f));
      if (out.size() > max_files) {
        throw InvalidArgument(q(dir) + ": more than " + std::to_string(max_files) +
                              " files; not a model folder?");
      }
    }
  }
  if (out.empty()) throw InvalidArgument(q(dir) + ": no files to import");
  std::sort(out.begin(), out.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return out;
}

// Opens a scanned file and checks it is still the one scanned.
InputFile open_scanned(const SourceFile& f) {
  InputFile in = InputFile::open(f.source.string());
  struct stat st {};
  if (::fstat(in.fd(), &st) != 0 || st.st_dev != f.dev || st.st_ino != f.ino)
    throw IoError(q(f.source) + ": was replaced while being imported");
  return in;
}

struct Hashes {
  std::string sha256, git_sha1, head;
};

// Reads `in` (its size at open) in pieces, hashing, and hands each piece to `sink`.
template <typename Sink>
Hashes read_hashing(InputFile& in, Sink&& sink) {
  Sha256 sha256;
  Sha1 sha1;
  const std::string header = "blob " + std::to_string(in.size()) + std::string(1, '\0');
  sha1.update(header);
  Hashes h;
  for (std::uint64_t at = 0; at < in.size();) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, in.size() - at));
    const std::string piece = in.read_at(at, want);
    if (piece.empty())
      throw IoError(q(in.path()) + ": shrank while being imported (" + std::to_string(at) +
                    " of " + std::to_string(in.size()) + " bytes read)");
    if (h.head.size() < 512) h.head += piece.substr(0, 512 - h.head.size());
    sha256.update(piece);
    sha1.update(piece);
    sink(piece);
    at += piece.size();
  }
  h.sha256 = sha256.hex_digest();
  h.git_sha1 = sha1.hex_digest();
  return h;
}

std::array<std::uint8_t, 20> hex_to_bytes20(const std::string& hex) {
  std::array<std::uint8_t, 20> out{};
  auto nibble = [](char c) -> std::uint8_t {
    return static_cast<std::uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  };
  for (std::size_t i = 0; i < 20; ++i)
    out[i] = static_cast<std::uint8_t>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
  return out;
}

std::array<std::uint8_t, 20> tree_of(const std::vector<TreeEntry>& files) {
  // Direct files and the entries of each subfolder, by name.
  struct Item {
    std::string key;  // a folder sorts as "name/" in git
    std::string mode, name;
    std::array<std::uint8_t, 20> id;
  };
  std::vector<Item> items;
  std::map<std::string, std::vector<TreeEntry>> folders;
  for (const TreeEntry& f : files) {
    const auto slash = f.path.find('/');
    if (slash == std::string::npos) {
      items.push_back({f.path, "100644", f.path, hex_to_bytes20(f.blob_id)});
    } else {
      folders[f.path.substr(0, slash)].push_back({f.path.substr(slash + 1), f.blob_id});
    }
  }
  for (const auto& [name, entries] : folders)
    items.push_back({name + "/", "40000", name, tree_of(entries)});
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  std::string body;
  for (const Item& it : items) {
    body += it.mode + " " + it.name + std::string(1, '\0');
    body.append(reinterpret_cast<const char*>(it.id.data()), it.id.size());
  }
  Sha1 h;
  h.update("tree " + std::to_string(body.size()) + std::string(1, '\0'));
  h.update(body);
  return h.digest();
}

void check_revision(const std::string& revision) {
  if (revision.empty()) throw InvalidArgument("--revision: empty");
  if (is_commit_hash(revision)) {
    throw InvalidArgument("--revision '" + revision +
                          "': a 40-hex commit hash is not a branch or tag name (the snapshot's "
                          "commit is derived from the files)");
  }
  if (revision.size() > 255) throw InvalidArgument("--revision: longer than 255 characters");
  try {
    check_repo_filename(revision);
  } catch (const InvalidArgument&) {
    throw InvalidArgument("--revision '" + escape_for_message(revision) +
                          "': not a valid branch or tag name");
  }
}

void check_import_repo_id(const std::string& repo_id) {
  if (!valid_repo_id(repo_id)) {
    throw InvalidArgument("'" + escape_for_message(repo_id) +
                          "' is not a Hugging Face repo id (org/name: letters, digits, '-', '_', "
                          "'.')");
  }
  if (sentence_transformers_repo_id(repo_id) != repo_id) {
    throw InvalidArgument("'" + repo_id + "' has no organization, and a name without one is read "
                          "as sentence-transformers/" + repo_id +
                          " (as sentence-transformers reads it), so --model " + repo_id +
                          " would not find it; give org/name, e.g. sentence-transformers/" +
                          repo_id);
  }
}

// The relative link from snapshots/<commit>/<path> to blobs/<blob>.
std::string link_text(const std::string& path, const std::string& blob) {
  std::string up = "../../";
  for (char c : path) up += c == '/' ? "../" : "";
  return up + "blobs/" + blob;
}

// "" when `snapshot` holds exactly `files` (same paths, same contents), else the first difference.
std::string compare_snapshot(const fs::path& snapshot, const std::vector<SourceFile>& files,
                             const fs::path& blobs) {
  std::error_code ec;
  std::set<std::string> present;
  for (fs::recursive_directory_iterator it(snapshot, ec), end; !ec && it != end; it.increment(ec)) {
    if (it.depth() > kMaxDepth) return "folders nested too deep";
    if (it->is_directory(ec) && !it->is_symlink(ec)) continue;
    present.insert(it->path().lexically_relative(snapshot).generic_string());
  }
  if (ec) return "cannot be listed (" + ec.message() + ")";
  for (const SourceFile& f : files) {
    if (!present.erase(f.path)) return f.path + " is missing";
    const fs::path p = snapshot / f.path;
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return f.path + " cannot be read (" + errno_text(errno) + ")";
    if (!S_ISREG(st.st_mode)) return f.path + " is " + kind_of(st.st_mode);
    if (static_cast<std::uint64_t>(st.st_size) != f.size)
      return f.path + " has " + std::to_string(st.st_size) + " bytes, not " +
             std::to_string(f.size);
    if (fs::is_symlink(p, ec)) {
      const fs::path target = fs::read_symlink(p, ec);
      if (!ec && target.filename() == f.blob() &&
          fs::equivalent(p, blobs / f.blob(), ec))
        continue;
    }
    try {
      if (sha256_file_hex(p.string()) != f.sha256) return f.path + " has other content";
    } catch (const Error& e) {
      return f.path + ": " + e.what();
    }
  }
  if (!present.empty()) return "it has " + *present.begin() + ", which the folder has not";
  return "";
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL && e != EROFS)
    throw IoError(q(dir) + ": cannot flush the folder to disk: " + errno_text(e));
}

void make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(q(dir) + ": cannot create the folder: " + ec.message());
}

// Writes one blob from its source file through a temporary file in blobs/; the content must
// still have the hashes of the first reading.
void write_blob(const SourceFile& f, const fs::path& blob) {
  InputFile in = open_scanned(f);
  if (in.size() != f.size) throw IoError(q(f.source) + ": changed size while being imported");
  OutputFile out = OutputFile::open(blob.string(), /*allow_stdout=*/false);
  const Hashes h = read_hashing(in, [&](const std::string& piece) { out.write(piece); });
  if (h.sha256 != f.sha256) throw IoError(q(f.source) + ": changed while being imported");
  out.commit();  // fsync, rename over blobs/<blob>; the temporary is removed on failure
}

// The snapshot entries, in `stage` (same depth below the repository folder as snapshots/<commit>,
// so the relative links are the same).
void build_snapshot(const fs::path& stage, const std::vector<SourceFile>& files,
                    const fs::path& blobs, bool copy) {
  make_dirs(stage);
  for (const SourceFile& f : files) {
    const fs::path dst = stage / f.path;
    make_dirs(dst.parent_path());
    if (!copy) {
      std::error_code ec;
      fs::create_symlink(link_text(f.path, f.blob()), dst, ec);
      if (!ec) continue;
      // As huggingface_hub: where symlinks cannot be made, the snapshot holds copies.
    }
    InputFile in = InputFile::open((blobs / f.blob()).string());
    OutputFile out = OutputFile::open(dst.string(), /*allow_stdout=*/false);
    for (std::uint64_t at = 0; at < in.size();) {
      const std::string piece = in.read_at(at, kPiece);
      if (piece.empty()) throw IoError(q(in.path()) + ": shrank while being copied");
      out.write(piece);
      at += piece.size();
    }
    out.commit();
  }
}

// Swaps two paths atomically where the kernel can (renameat2 RENAME_EXCHANGE), else moves `old`
// aside into `aside` and `fresh` into its place.
void replace_dir(const fs::path& fresh, const fs::path& old, const fs::path& aside) {
#ifdef RENAME_EXCHANGE
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, old.c_str(), RENAME_EXCHANGE) == 0) {
    std::error_code ec;
    fs::rename(fresh, aside, ec);  // `fresh` now holds the old snapshot
    return;
  }
#endif
  std::error_code ec;
  fs::rename(old, aside, ec);
  if (ec) throw IoError(q(old) + ": cannot move it aside: " + ec.message());
  fs::rename(fresh, old, ec);
  if (ec) throw IoError(q(old) + ": cannot put the new snapshot in place: " + ec.message());
}

}  // namespace

bool is_lfs_file(std::string_view path, std::uint64_t size, std::string_view head) {
  if (size >= kLfsSize) return true;
  if (head.substr(0, 512).find('\0') != std::string_view::npos) return true;
  if (path.rfind("saved_model/", 0) == 0) return true;
  const auto slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  for (std::string_view mid : {".bin.", ".tar.", ".lfs."}) {
    const auto at = name.find(mid);
    if (at != std::string_view::npos && at + mid.size() <= name.size()) return true;
  }
  if (name.find("tfevents") != std::string_view::npos) return true;
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view ext = name.substr(dot + 1);
  for (const char* e : kLfsExtensions) {
    if (ext == e) return true;
  }
  return false;
}

std::string git_blob_id(std::string_view content) {
  Sha1 h;
  h.update("blob " + std::to_string(content.size()) + std::string(1, '\0'));
  h.update(content);
  return h.hex_digest();
}

std::string git_tree_id(std::vector<TreeEntry> files) {
  for (const TreeEntry& f : files) {
    check_repo_filename(f.path);
    if (!is_commit_hash(f.blob_id))
      throw InvalidArgument("git_tree_id: '" + f.blob_id + "' is not a 40-hex blob id");
  }
  const auto id = tree_of(files);
  return to_hex(id.data(), id.size());
}

ImportResult import_model_folder(const fs::path& dir, const std::string& repo_id,
                                 const ImportOptions& options) {
  check_import_repo_id(repo_id);
  check_revision(options.revision);
  if (options.cache_dir.empty()) throw InvalidArgument("models import: no cache folder given");

  // 1. What is there, and its hashes: nothing is written before every file has been read.
  std::vector<SourceFile> files = list_source(dir, options.max_files);
  std::vector<TreeEntry> tree;
  for (SourceFile& f : files) {
    InputFile in = open_scanned(f);
    f.size = in.size();
    const Hashes h = read_hashing(in, [](const std::string&) {});
    f.sha256 = h.sha256;
    f.git_sha1 = h.git_sha1;
    f.lfs = is_lfs_file(f.path, f.size, h.head);
    tree.push_back({f.path, f.git_sha1});
  }

  ImportResult r;
  r.repo_id = repo_id;
  r.revision = options.revision;
  r.commit = git_tree_id(tree);
  const RepoCache cache(options.cache_dir, repo_id);
  r.repo_path = cache.storage();
  r.snapshot = cache.snapshot_dir(r.commit);
  const fs::path blobs = cache.storage() / "blobs";
  for (const SourceFile& f : files) {
    r.files.push_back({f.path, f.blob(), f.size, f.lfs, false});
    r.bytes += f.size;
  }

  // 2. Under the lock: what the cache holds already, and whether it may be changed.
  make_dirs(options.cache_dir);
  FileLock lock(options.cache_dir / ".locks" / repo_folder_name(repo_id) / "mmembed-import.lock");
  const std::string what = repo_id + " (revision " + options.revision + ")";
  const std::optional<std::string> previous = cache.commit_for(options.revision);
  if (previous && *previous != r.commit) r.previous_commit = *previous;
  if (!r.previous_commit.empty() && !options.force) {
    throw InvalidArgument(
        what + ": refs/" + options.revision + " in " + q(cache.storage()) +
        " names another snapshot (" + escape_for_message(r.previous_commit, 60) +
        ") than these files (" + r.commit + "); pass --force to point it at the imported "
        "snapshot (the other one stays in the cache), or import under another --revision");
  }
  std::error_code ec;
  const auto snapshot_type = fs::symlink_status(r.snapshot, ec).type();
  bool same = false;
  std::string difference;
  if (snapshot_type != fs::file_type::not_found) {
    difference = snapshot_type == fs::file_type::directory
                     ? compare_snapshot(r.snapshot, files, blobs)
                     : "it is not a folder";
    same = difference.empty();
    if (!same && !options.force) {
      throw InvalidArgument(what + ": " + q(r.snapshot) + " exists with other content (" +
                            escape_for_message(difference) + "); pass --force to replace it");
    }
  }
  // A blob of the right name with the wrong size is a damaged cache.
  for (const SourceFile& f : files) {
    const fs::path blob = blobs / f.blob();
    struct stat st {};
    if (::lstat(blob.c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode))
      throw IoError(q(blob) + ": is " + kind_of(st.st_mode) + ", not a blob; remove it");
    if (static_cast<std::uint64_t>(st.st_size) != f.size && !options.force) {
      throw InvalidArgument(what + ": " + q(blob) + " has " + std::to_string(st.st_size) +
                            " bytes, but " + f.path + " has " + std::to_string(f.size) +
                            " (a damaged cache?); pass --force to rewrite it");
    }
  }

  if (!same) {
    // 3. New blobs, the snapshot built aside and renamed into place.
    std::vector<fs::path> created_blobs;
    fs::path staging;
    bool installed_new = false;
    auto cleanup = [&] {
      std::error_code ignore;
      if (!staging.empty()) fs::remove_all(staging, ignore);
      if (installed_new) fs::remove_all(r.snapshot, ignore);
      if (!(r.replaced)) {
        for (const fs::path& b : created_blobs) fs::remove(b, ignore);
      }
    };
    try {
      make_dirs(blobs);
      for (std::size_t i = 0; i < files.size(); ++i) {
        const fs::path blob = blobs / files[i].blob();
        struct stat st {};
        const bool existed = ::lstat(blob.c_str(), &st) == 0;
        if (existed && static_cast<std::uint64_t>(st.st_size) == files[i].size) continue;
        write_blob(files[i], blob);
        if (!existed) created_blobs.push_back(blob);
        r.files[i].new_blob = true;
      }
      std::string tmpl = (cache.storage() / ".mmembed-import-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr)
        throw IoError(q(cache.storage()) + ": cannot create a temporary folder: " +
                      errno_text(errno));
      staging = tmpl;
      const fs::path stage = staging / r.commit;
      build_snapshot(stage, files, blobs, options.copy);
      make_dirs(cache.storage() / "snapshots");
      if (snapshot_type == fs::file_type::not_found) {
        fs::rename(stage, r.snapshot, ec);
        if (ec)
          throw IoError(q(r.snapshot) + ": cannot put the snapshot in place: " + ec.message());
        installed_new = true;
      } else {
        if (snapshot_type != fs::file_type::directory) {
          fs::remove(r.snapshot, ec);
          if (ec) throw IoError(q(r.snapshot) + ": cannot remove: " + ec.message());
          fs::rename(stage, r.snapshot, ec);
          if (ec)
            throw IoError(q(r.snapshot) + ": cannot put the snapshot in place: " + ec.message());
        } else {
          replace_dir(stage, r.snapshot, staging / "replaced");
        }
        r.replaced = true;
      }
      fsync_dir(cache.storage() / "snapshots");
      fs::remove_all(staging, ec);
      staging.clear();
      r.created = true;
      // 4. The ref last: until it moves, `--model org/name` sees the cache as it was.
      if (!previous || *previous != r.commit) {
        cache.write_ref(options.revision, r.commit);
        r.ref_changed = true;
      }
    } catch (...) {
      cleanup();
      throw;
    }
  } else if (!previous || *previous != r.commit) {
    cache.write_ref(options.revision, r.commit);
    r.ref_changed = true;
  }
  return r;
}

}  // namespace mmembed::hub
