// Reading input files: the one way every reader in mmembed opens a file it did not write.
//
//   std::string cfg = read_input_file(dir + "/config.json", kMaxConfigFileBytes);
//   InputFile f = InputFile::open(path);  // for readers that map or stream (safetensors, .npy)
//
// Only regular files are read. A FIFO, a character device (/dev/zero), a socket or a directory
// is refused with an IoError that names the path and the kind of file ("is a FIFO"); the check
// is fstat on the opened descriptor, so a symlink to a FIFO is refused too and nothing can swap
// the file between the check and the read. The file is opened with O_NONBLOCK so that opening a
// FIFO without a writer cannot block, then O_NONBLOCK is cleared for the reads.
//
// Every read is bounded: read_input_file refuses a file larger than `max_bytes` from its size
// before reading it, and stops at max_bytes + 1 bytes should the file grow while it is read.
// The limits below are the documented ones (docs/hostile-inputs.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mmembed {

inline constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// An image file (JPEG, PNG, WebP, GIF): the largest photos are tens of MiB.
inline constexpr std::uint64_t kMaxImageFileBytes = 256 * kMiB;
// config.json, preprocessor_config.json, tokenizer_config.json, modules.json, index files...
inline constexpr std::uint64_t kMaxConfigFileBytes = 64 * kMiB;
// tokenizer.json, vocab.json, merges.txt, vocab.txt (the largest real ones are ~ 20-35 MiB).
inline constexpr std::uint64_t kMaxTokenizerFileBytes = 512 * kMiB;
// Manifests, label lists, CSV/JSONL matrices and CSVs for plot: read whole into memory.
inline constexpr std::uint64_t kMaxTextDataFileBytes = 4096 * kMiB;
// Standard input as a dataset (`embed --input -`): its size cannot be checked before reading,
// so it is read at most this far (a larger dataset goes in a file).
inline constexpr std::uint64_t kMaxStandardInputBytes = 256 * kMiB;

// An open regular file. Move-only; closes its descriptor.
class InputFile {
 public:
  // Opens `path` for reading. Throws IoError naming the path when it is missing, unreadable or
  // not a regular file ("is a FIFO", "is a character device", "is a directory", ...).
  static InputFile open(const std::string& path);

  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  int fd() const noexcept { return fd_; }
  // The size fstat reported when the file was opened.
  std::uint64_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

  // Reads the whole file, at most `max_bytes`; throws IoError naming the path and the limit
  // when the file is larger (checked from its size first, so a huge sparse file is not read).
  std::string read_all(std::uint64_t max_bytes);
  // Reads up to `n` bytes from `offset` (fewer at the end of the file).
  std::string read_at(std::uint64_t offset, std::size_t n);

 private:
  InputFile(int fd, std::uint64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}

  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string path_;
};

// InputFile::open(path).read_all(max_bytes).
std::string read_input_file(const std::string& path, std::uint64_t max_bytes);

// Standard input to its end, at most `max_bytes` (IoError naming "standard input" and the limit
// beyond that: an endless pipe is cut off, not held in memory). A terminal is refused (nothing
// was piped in).
std::string read_standard_input(std::uint64_t max_bytes);
std::vector<std::uint8_t> read_input_file_bytes(const std::string& path, std::uint64_t max_bytes);

// What `path` is when it is not a regular file: "is a FIFO", "is a directory", ... or "" for a
// regular file or a path that cannot be stat'ed. Follows symlinks.
std::string special_file_kind(const std::string& path);

// A user-given string (path, manifest field, token) made safe to quote in an error message:
// control characters, DEL, backslash and bytes that are not valid UTF-8 are written as \xNN;
// valid UTF-8 text (accents, CJK) stays as it is. Cut at `max_chars` code points with "...".
std::string escape_for_message(std::string_view text, std::size_t max_chars = 200);

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;
// The offset of the first byte that does not start a well-formed UTF-8 sequence, or npos.
std::size_t invalid_utf8_at(std::string_view text) noexcept;

// A whole error message made safe to print on a terminal, whatever its parts quoted: as
// escape_for_message but newlines (between the lines of a multi-line message) and backslashes
// (already escaped parts) stay, and nothing is cut. The CLI prints every error through it.
std::string printable_message(std::string_view message);

}  // namespace mmembed
