#include "hub/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <system_error>
#include <vector>

#include "core/file.h"
#include "core/output_file.h"
#include "mmembed/error.h"
#include "mmembed/hub.h"

namespace mmembed::hub {
namespace {

bool all_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string read_text(const fs::path& p) {
  return read_input_file(p.string(), kMaxConfigFileBytes);
}

}  // namespace

EnvFn process_env() {
  return [](const char* name) -> const char* { return std::getenv(name); };
}

bool env_true(const char* value) {
  if (!value) return false;
  std::string v(value);
  for (auto& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

std::string expand_path(const std::string& path, const EnvFn& env) {
  std::string s = path;
  if (!s.empty() && s[0] == '~' && (s.size() == 1 || s[1] == '/')) {
    const char* home = env("HOME");
    if (home) s = std::string(home) + s.substr(1);
  }
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '$' && i + 1 < s.size()) {
      std::size_t start = i + 1, end;
      bool braces = s[start] == '{';
      if (braces) {
        end = s.find('}', start);
        if (end == std::string::npos) {
          out += s.substr(i);
          break;
        }
        std::string name = s.substr(start + 1, end - start - 1);
        const char* v = env(name.c_str());
        out += v ? std::string(v) : s.substr(i, end + 1 - i);
        i = end + 1;
        continue;
      }
      end = start;
      while (end < s.size() && (std::isalnum(static_cast<unsigned char>(s[end])) || s[end] == '_'))
        ++end;
      if (end == start) {
        out += s[i++];
        continue;
      }
      std::string name = s.substr(start, end - start);
      const char* v = env(name.c_str());
      out += v ? std::string(v) : s.substr(i, end - i);
      i = end;
      continue;
    }
    out += s[i++];
  }
  return out;
}

HubConfig read_hub_config(const EnvFn& env) {
  HubConfig c;
  auto get = [&](const char* name) -> std::optional<std::string> {
    const char* v = env(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
  if (auto e = get("HF_ENDPOINT")) c.endpoint = *e;
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();

  std::string xdg = get("XDG_CACHE_HOME").value_or("~/.cache");
  std::string home = get("HF_HOME").value_or(xdg + "/huggingface");
  c.hf_home = expand_path(home, env);
  std::string legacy = get("HUGGINGFACE_HUB_CACHE").value_or((c.hf_home / "hub").string());
  c.cache_dir = expand_path(get("HF_HUB_CACHE").value_or(legacy), env);

  const char* off = env("HF_HUB_OFFLINE");
  if (!off || !*off) off = env("TRANSFORMERS_OFFLINE");
  c.offline = env_true(off);

  auto clean = [](std::string t) -> std::optional<std::string> {
    std::string out;
    for (char ch : t) {
      if (ch != '\r' && ch != '\n') out.push_back(ch);
    }
    std::size_t b = 0, e = out.size();
    while (b < e && std::isspace(static_cast<unsigned char>(out[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(out[e - 1]))) --e;
    out = out.substr(b, e - b);
    if (out.empty()) return std::nullopt;
    return out;
  };
  if (!env_true(env("HF_HUB_DISABLE_IMPLICIT_TOKEN"))) {
    auto t = get("HF_TOKEN");
    if (!t || t->empty()) t = get("HUGGING_FACE_HUB_TOKEN");
    if (t) c.token = clean(*t);
    if (!c.token) {
      fs::path token_path = expand_path(
          get("HF_TOKEN_PATH").value_or((c.hf_home / "token").string()), env);
      // As huggingface_hub, only a missing file means no token; anything else there is read,
      // so a FIFO or a folder is an error naming it (huggingface_hub blocks on the FIFO).
      std::error_code ec;
      if (fs::exists(token_path, ec)) c.token = clean(read_text(token_path));
    }
  }
  auto seconds = [&](const char* name, double fallback) {
    auto v = get(name);
    if (!v || v->empty()) return fallback;
    char* end = nullptr;
    double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || d <= 0) return fallback;
    return d;
  };
  c.etag_timeout_s = seconds("HF_HUB_ETAG_TIMEOUT", 10);
  c.download_timeout_s = seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
  c.disable_symlinks = env_true(env("HF_HUB_DISABLE_SYMLINKS"));
  return c;
}

std::string normalize_etag(std::string_view etag) {
  // huggingface_hub: etag.lstrip("W/").strip('"')
  while (!etag.empty() && (etag.front() == 'W' || etag.front() == '/')) etag.remove_prefix(1);
  while (!etag.empty() && etag.front() == '"') etag.remove_prefix(1);
  while (!etag.empty() && etag.back() == '"') etag.remove_suffix(1);
  return std::string(etag);
}

bool is_commit_hash(std::string_view s) { return s.size() == 40 && all_hex(s); }
bool is_sha256_hex(std::string_view s) { return s.size() == 64 && all_hex(s); }

bool valid_repo_id(std::string_view repo_id) {
  auto part_ok = [](std::string_view p) {
    if (p.empty() || p.size() > 96 || p == "." || p == "..") return false;
    if (p.front() == '-' || p.front() == '.' || p.back() == '.' || p.back() == '-') return false;
    if (p.find("--") != std::string_view::npos || p.find("..") != std::string_view::npos)
      return false;
    for (char c : p) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
        return false;
    }
    return true;
  };
  const auto slash = repo_id.find('/');
  if (slash == std::string_view::npos) return part_ok(repo_id);
  return part_ok(repo_id.substr(0, slash)) && part_ok(repo_id.substr(slash + 1));
}

std::string repo_folder_name(std::string_view repo_id, std::string_view repo_type) {
  std::string out = std::string(repo_type) + "s";
  std::size_t start = 0;
  while (true) {
    auto slash = repo_id.find('/', start);
    out += "--";
    out += repo_id.substr(start, slash - start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string url_quote(std::string_view s, std::string_view safe) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        safe.find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string resolve_url(std::string_view endpoint, std::string_view repo_id,
                        std::string_view revision, std::string_view filename) {
  return std::string(endpoint) + "/" + std::string(repo_id) + "/resolve/" +
         url_quote(revision, "") + "/" + url_quote(filename, "/");
}

void check_repo_filename(const std::string& filename) {
  bool bad = filename.empty() || filename.front() == '/' ||
             filename.find('\\') != std::string::npos;
  std::size_t start = 0;
  while (!bad) {
    auto slash = filename.find('/', start);
    std::string seg = filename.substr(start, slash - start);
    if (seg.empty() || seg == "." || seg == "..") bad = true;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (bad) throw InvalidArgument("invalid file name in repository: '" + filename + "'");
}

RepoCache::RepoCache(fs::path cache_dir, std::string repo_id)
    : cache_dir_(std::move(cache_dir)),
      repo_id_(std::move(repo_id)),
      storage_(cache_dir_ / repo_folder_name(repo_id_)) {}

fs::path RepoCache::blob_path(const std::string& etag) const { return storage_ / "blobs" / etag; }
fs::path RepoCache::incomplete_path(const std::string& etag) const {
  return storage_ / "blobs" / (etag + ".incomplete");
}
fs::path RepoCache::snapshot_dir(const std::string& commit) const {
  return storage_ / "snapshots" / commit;
}
fs::path RepoCache::pointer_path(const std::string& commit, const std::string& filename) const {
  return snapshot_dir(commit) / filename;
}
fs::path RepoCache::no_exist_path(const std::string& commit, const std::string& filename) const {
  return storage_ / ".no_exist" / commit / filename;
}
fs::path RepoCache::lock_path(const std::string& etag) const {
  return cache_dir_ / ".locks" / repo_folder_name(repo_id_) / (etag + ".lock");
}

std::optional<std::string> RepoCache::commit_for(const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  fs::path ref = storage_ / "refs" / revision;
  std::error_code ec;
  if (!fs::exists(ref, ec)) return std::nullopt;
  // A FIFO or folder there is an error naming it (read_text), not a missing ref: write_ref
  // would otherwise open the FIFO to write the commit and block without a reader.
  return read_text(ref);  // verbatim, as huggingface_hub reads it
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  fs::path ref = storage_ / "refs" / revision;
  if (auto cur = commit_for(revision); cur && *cur == commit) return;
  std::error_code ec;
  fs::create_directories(ref.parent_path(), ec);
  write_file_atomic(ref, commit);
}

bool RepoCache::known_absent(const std::string& commit, const std::string& filename) const {
  std::error_code ec;
  return fs::is_regular_file(no_exist_path(commit, filename), ec);
}

void RepoCache::mark_absent(const std::string& commit, const std::string& filename) const {
  fs::path p = no_exist_path(commit, filename);
  std::error_code ec;
  // Already marked, or something else is there (a FIFO would block the writer): left alone, as
  // huggingface_hub's touch() leaves it; known_absent reads regular markers only.
  if (fs::symlink_status(p, ec).type() != fs::file_type::not_found) return;
  fs::create_directories(p.parent_path(), ec);
  try {
    write_output_file(p.string(), "", /*allow_stdout=*/false);
  } catch (const Error&) {
    // Harmless: the marker is only a hint that saves a request.
  }
}

void RepoCache::link(const std::string& commit, const std::string& filename,
                     const std::string& etag, bool copy) const {
  fs::path dst = pointer_path(commit, filename);
  fs::path blob = blob_path(etag);
  std::error_code ec;
  fs::create_directories(dst.parent_path(), ec);
  if (ec) throw IoError(dst.parent_path().string() + ": cannot create folder: " + ec.message());
  fs::remove(dst, ec);
  if (!copy) {
    // Lexical, like os.path.relpath on absolute paths: symlinks in the cache path stay as they are.
    fs::path rel = fs::absolute(blob, ec).lexically_normal().lexically_relative(
        fs::absolute(dst.parent_path(), ec).lexically_normal());
    if (!ec && !rel.empty()) {
      fs::create_symlink(rel, dst, ec);
      if (!ec) return;
      if (fs::is_symlink(dst) && fs::equivalent(dst, blob, ec)) return;  // raced with another writer
    }
  }
  // A copy through the one output writer (core/output_file.h): its temporary is created
  // exclusively and never follows a link planted under its name, as fs::copy_file's would. The
  // blob is read as every input file is (core/file.h): a regular file only, in 1 MiB pieces.
  InputFile in = InputFile::open(blob.string());
  OutputFile out = OutputFile::open(dst.string(), /*allow_stdout=*/false);
  for (std::uint64_t at = 0;;) {
    const std::string piece = in.read_at(at, std::size_t{1} << 20);
    if (piece.empty()) break;
    out.write(piece);
    at += piece.size();
  }
  out.commit();
}

FileLock::FileLock(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path.string() + ": cannot open lock file: " + std::strerror(errno));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      throw IoError(path.string() + ": cannot lock: " + std::strerror(e));
    }
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  write_output_file(path.string(), content, /*allow_stdout=*/false);
}

}  // namespace mmembed::hub
