#include "core/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>

#include "core/check.h"
#include "core/file.h"
#include "mmembed/error.h"

namespace mmembed {

namespace {

// How an error message names an output: escaped as core/file.h's messages name inputs, so that
// a library caller that prints it puts no control byte of the path on a terminal either.
std::string quoted(const std::string& path) { return escape_for_message(output_name(path)); }

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw IoError(str_cat(quoted(path), ": ", what, " (", std::strerror(err), ")"));
}

const char* kind_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file, FIFO or character device";
}

struct Resolved {
  OutputKind kind = OutputKind::kFile;
  std::string target;  // kFile: the file to replace or create
  bool exists = false;
  mode_t mode = 0;
};

Resolved resolve(const std::string& path, bool allow_stdout) {
  Resolved r;
  if (path == "-") {
    MMEMBED_CHECK(allow_stdout, InvalidArgument,
                  "-: this output cannot go to standard output; give a file name");
    r.kind = OutputKind::kStdout;
    return r;
  }
  MMEMBED_CHECK(!path.empty(), InvalidArgument, "empty output path");
  r.target = path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) fail(path, "cannot write", errno);
    return r;  // a new file
  }
  if (S_ISLNK(st.st_mode)) {
    // Written through: the link keeps pointing at the file it names, which gets the contents.
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      MMEMBED_CHECK(err != ENOENT, IoError, quoted(path),
                    ": a symbolic link to a missing file; mmembed writes through links, so give "
                    "the file's own path or remove the link");
      fail(path, "cannot write", err);
    }
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) fail(path, "cannot resolve the symbolic link", errno);
    r.target = real;
    std::free(real);
  }
  if (S_ISREG(st.st_mode)) {
    r.exists = true;
    r.mode = st.st_mode & 07777;
    return r;
  }
  if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
    r.kind = OutputKind::kStream;
    return r;
  }
  throw IoError(
      str_cat(quoted(path), ": is ", kind_name(st.st_mode), "; give the name of a file to write"));
}

std::string parent_of(const std::string& target) {
  const std::size_t slash = target.rfind('/');
  if (slash == std::string::npos) return "";
  return target.substr(0, slash + 1);  // keeps "/" for files in the root
}

std::string base_of(const std::string& target) {
  const std::size_t slash = target.rfind('/');
  return slash == std::string::npos ? target : target.substr(slash + 1);
}

void write_all(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n > (std::size_t{1} << 30) ? (std::size_t{1} << 30) : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(path, "cannot write", errno);
    }
    MMEMBED_CHECK(w > 0, IoError, quoted(path), ": cannot write (no progress)");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

std::string output_name(const std::string& path) {
  return path == "-" ? std::string("standard output") : path;
}

OutputKind output_kind(const std::string& path, bool allow_stdout) {
  return resolve(path, allow_stdout).kind;
}

OutputFile OutputFile::open(const std::string& path, bool allow_stdout) {
  const Resolved r = resolve(path, allow_stdout);
  OutputFile f;
  f.path_ = path;
  f.kind_ = r.kind;
  if (r.kind == OutputKind::kStdout) {
    // Bytes already in stdio's buffer go first: the output keeps the order it was written in.
    if (std::fflush(stdout) != 0) fail(path, "cannot write", errno);
    f.fd_ = STDOUT_FILENO;
    return f;
  }
  if (r.kind == OutputKind::kStream) {
    // No O_CREAT or O_TRUNC: a FIFO or device is written, never made or cut. O_NONBLOCK is not
    // used, so a FIFO waits for its reader, as for any program writing to one.
    f.fd_ = ::open(path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (f.fd_ < 0) fail(path, "cannot open for writing", errno);
    struct stat st {};
    if (::fstat(f.fd_, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
      ::close(f.fd_);
      f.fd_ = -1;
      throw IoError(str_cat(quoted(path), ": changed while it was opened; not written"));
    }
    return f;
  }
  f.target_ = r.target;
  // The temporary file lives in the target's folder (rename is atomic within a file system) and
  // is made with O_EXCL|O_NOFOLLOW, so a name planted there (a link to another file) is never
  // followed or truncated. Its name is kept under NAME_MAX whatever the target's length.
  const std::string base = base_of(r.target).substr(0, 200);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  for (int attempt = 0; attempt < 100 && f.fd_ < 0; ++attempt) {
    char suffix[24];
    std::snprintf(suffix, sizeof(suffix), ".tmp-%012llx",
                  static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
    f.temp_ = parent_of(r.target) + "." + base + suffix;
    f.fd_ = ::open(f.temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (f.fd_ < 0 && errno != EEXIST) {
      const int err = errno;
      f.temp_.clear();
      fail(path, "cannot write: cannot create a temporary file in its folder", err);
    }
  }
  if (f.fd_ < 0) {
    f.temp_.clear();
    throw IoError(
        str_cat(quoted(path), ": cannot create a temporary file beside it (100 names taken)"));
  }
  // A replaced file keeps its permissions; a new one has 0666 less the umask, as with `>`.
  if (r.exists && ::fchmod(f.fd_, r.mode) != 0) {
    const int err = errno;
    f.discard();
    fail(path, "cannot set the permissions of the temporary file", err);
  }
  return f;
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : path_(std::move(o.path_)),
      target_(std::move(o.target_)),
      temp_(std::move(o.temp_)),
      fd_(std::exchange(o.fd_, -1)),
      kind_(o.kind_),
      done_(std::exchange(o.done_, true)) {
  o.temp_.clear();
}

OutputFile& OutputFile::operator=(OutputFile&& o) noexcept {
  if (this != &o) {
    discard();
    path_ = std::move(o.path_);
    target_ = std::move(o.target_);
    temp_ = std::move(o.temp_);
    o.temp_.clear();
    fd_ = std::exchange(o.fd_, -1);
    kind_ = o.kind_;
    done_ = std::exchange(o.done_, true);
  }
  return *this;
}

OutputFile::~OutputFile() { discard(); }

void OutputFile::discard() noexcept {
  if (fd_ >= 0 && kind_ != OutputKind::kStdout) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
  done_ = true;
}

void OutputFile::write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

void OutputFile::write(const void* data, std::size_t size) {
  MMEMBED_ASSERT(!done_ && fd_ >= 0);
  try {
    write_all(fd_, static_cast<const char*>(data), size, path_);
  } catch (...) {
    discard();
    throw;
  }
}

void OutputFile::commit() {
  MMEMBED_ASSERT(!done_ && fd_ >= 0);
  if (kind_ == OutputKind::kStdout) {
    done_ = true;
    fd_ = -1;
    return;
  }
  if (kind_ == OutputKind::kStream) {
    const int fd = std::exchange(fd_, -1);
    done_ = true;
    if (::close(fd) != 0) fail(path_, "cannot write", errno);
    return;
  }
  // Flushed to the disk before the rename: after a crash the target is whole, old or new.
  if (::fsync(fd_) != 0) {
    const int err = errno;
    discard();
    fail(path_, "cannot write", err);
  }
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const int err = errno;
    discard();
    fail(path_, "cannot write", err);
  }
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    const int err = errno;
    discard();
    fail(path_, "cannot rename the temporary file into place", err);
  }
  temp_.clear();
  done_ = true;
}

void write_output_file(const std::string& path, std::string_view contents, bool allow_stdout) {
  OutputFile f = OutputFile::open(path, allow_stdout);
  f.write(contents);
  f.commit();
}

}  // namespace mmembed
