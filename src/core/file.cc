#include "core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace mmembed {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISFIFO(mode)) return "is a FIFO";
  if (S_ISCHR(mode)) return "is a character device";
  if (S_ISBLK(mode)) return "is a block device";
  if (S_ISSOCK(mode)) return "is a socket";
  return "is not a regular file";
}

std::string limit_text(std::uint64_t bytes) {
  if (bytes % kMiB == 0) return str_cat(bytes / kMiB, " MiB");
  return str_cat(bytes, " bytes");
}

// Length of the valid UTF-8 sequence at s[i..n) (its code point in *cp), or 0 when it is not
// one (overlong, surrogate, past U+10FFFF, cut short).
std::size_t utf8_sequence(const unsigned char* s, std::size_t i, std::size_t n,
                          std::uint32_t* code_point) {
  const unsigned char c = s[i];
  std::size_t len;
  std::uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i + k] & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *code_point = cp;
  return len;
}

// As utf8_sequence, but 0 for the C1 controls (U+0080..U+009F) too: what may be printed as is.
std::size_t utf8_length(const unsigned char* s, std::size_t i, std::size_t n) {
  std::uint32_t cp = 0;
  const std::size_t len = utf8_sequence(s, i, n, &cp);
  return len > 0 && cp >= 0xA0 ? len : 0;
}

}  // namespace

InputFile InputFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    throw IoError(str_cat(escape_for_message(path), ": cannot open (", std::strerror(err), ")"));
  }
  InputFile file(fd, 0, path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    throw IoError(str_cat(escape_for_message(path), ": cannot stat (", std::strerror(err), ")"));
  }
  if (!S_ISREG(st.st_mode)) {
    throw IoError(str_cat(escape_for_message(path), ": ", kind_of(st.st_mode),
                          ", expected a regular file"));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    const int err = errno;
    throw IoError(str_cat(escape_for_message(path), ": cannot set blocking mode (",
                          std::strerror(err), ")"));
  }
  file.size_ = static_cast<std::uint64_t>(st.st_size);
  return file;
}

InputFile::InputFile(InputFile&& other) noexcept
    : fd_(other.fd_), size_(other.size_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    size_ = other.size_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string InputFile::read_all(std::uint64_t max_bytes) {
  auto too_large = [&](const std::string& size) {
    return IoError(str_cat(escape_for_message(path_), ": file is ", size, ", more than the ",
                           limit_text(max_bytes), " limit for this kind of file"));
  };
  if (size_ > max_bytes) throw too_large(str_cat(size_, " bytes"));
  std::string out;
  out.resize(static_cast<std::size_t>(size_));
  std::size_t have = 0;
  // Reads until end of file: a file may be shorter or longer than fstat said (a file in /proc
  // reports 0 bytes; another process may append), so the bound is max_bytes, not the size.
  // Once the buffer is full a small probe read tells whether there is more, so that a file of
  // exactly the size fstat reported is read into one buffer of that size.
  for (;;) {
    char probe[4096];
    const bool full = have == out.size();
    char* dst = full ? probe : out.data() + have;
    const std::size_t room = full ? sizeof(probe) : out.size() - have;
    const ssize_t n = ::read(fd_, dst, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw IoError(str_cat(escape_for_message(path_), ": read failed (", std::strerror(err), ")"));
    }
    if (n == 0) break;
    if (full) {
      if (have + static_cast<std::size_t>(n) > max_bytes) {
        throw too_large(str_cat("more than ", max_bytes, " bytes"));
      }
      out.append(probe, static_cast<std::size_t>(n));
      out.resize(std::min<std::uint64_t>(max_bytes, std::max<std::size_t>(4096, 2 * out.size())));
    }
    have += static_cast<std::size_t>(n);
  }
  out.resize(have);
  return out;
}

std::string InputFile::read_at(std::uint64_t offset, std::size_t n) {
  std::string out(n, '\0');
  std::size_t have = 0;
  while (have < n) {
    const ssize_t r = ::pread(fd_, out.data() + have, n - have, static_cast<off_t>(offset + have));
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw IoError(str_cat(escape_for_message(path_), ": read failed (", std::strerror(err), ")"));
    }
    if (r == 0) break;
    have += static_cast<std::size_t>(r);
  }
  out.resize(have);
  return out;
}

std::string read_input_file(const std::string& path, std::uint64_t max_bytes) {
  return InputFile::open(path).read_all(max_bytes);
}

std::vector<std::uint8_t> read_input_file_bytes(const std::string& path, std::uint64_t max_bytes) {
  const std::string s = read_input_file(path, max_bytes);
  return std::vector<std::uint8_t>(s.begin(), s.end());
}

std::string special_file_kind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return kind_of(st.st_mode);
}

namespace {

std::string escape(std::string_view text, std::size_t max_chars, bool message) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::string out;
  out.reserve(std::min<std::size_t>(n, 4 * max_chars) + 3);
  std::size_t i = 0, shown = 0;
  while (i < n) {
    if (shown == max_chars) {
      out += "...";
      break;
    }
    const unsigned char c = s[i];
    std::size_t len = 0;
    if ((c >= 0x20 && c < 0x7f && (c != '\\' || message)) || (message && c == '\n')) {
      len = 1;
    } else if (c >= 0x80) {
      len = utf8_length(s, i, n);
    }
    if (len > 0) {
      out.append(text.data() + i, len);
      i += len;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    }
    ++shown;
  }
  return out;
}

}  // namespace

std::string escape_for_message(std::string_view text, std::size_t max_chars) {
  return escape(text, max_chars, /*message=*/false);
}

std::size_t invalid_utf8_at(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0;
  while (i < text.size()) {
    std::uint32_t cp = 0;
    const std::size_t len = s[i] < 0x80 ? 1 : utf8_sequence(s, i, text.size(), &cp);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

bool is_valid_utf8(std::string_view text) noexcept {
  return invalid_utf8_at(text) == std::string_view::npos;
}

std::string printable_message(std::string_view message) {
  return escape(message, std::string_view::npos, /*message=*/true);
}

std::string read_standard_input(std::uint64_t max_bytes) {
  MMEMBED_CHECK(::isatty(STDIN_FILENO) != 1, IoError,
                "standard input is a terminal: pipe the texts in (one per line), e.g. "
                "'cat texts.txt | mmembed ...', or name a file");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(str_cat("standard input: read failed (", std::strerror(errno), ")"));
    }
    if (n == 0) break;
    MMEMBED_CHECK(out.size() + static_cast<std::uint64_t>(n) <= max_bytes, IoError,
                  "standard input: more than ", max_bytes,
                  " bytes (the limit for standard input; put a larger input in a file)");
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace mmembed
