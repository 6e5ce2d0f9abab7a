// Output files: what `-o PATH` means everywhere in mmembed, and the one writer behind it.
//
//   OutputFile out = OutputFile::open("emb.npy");
//   out.write(header);
//   out.write(rows.data(), rows.size() * sizeof(float));
//   out.commit();   // checked flush and close, then renamed over emb.npy
//
// What PATH is decides how it is written:
//  - a new name or a regular file (a symbolic link to one is followed; the link stays): the bytes
//    go to a temporary file created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW; mode 0666 less the
//    umask, or the replaced file's mode) in the target's own folder; commit() flushes it to the
//    disk and renames it over the target, so the target is whole or untouched, and a file that is
//    not committed (an error, an exception) is removed;
//  - "-": standard output (refused where `allow_stdout` is false);
//  - a FIFO or a character device (/dev/null, /dev/stdout, a terminal): opened and written in
//    place, never replaced or truncated;
//  - anything else (a folder, a block device, a socket, a link to nothing): IoError naming PATH
//    and what it is.
// Every write, the flush and the close are checked; a failure throws IoError naming PATH and the
// reason ("/dev/full: cannot write (No space left on device)").
//
// Not thread-safe; one writer per object. Movable, not copyable.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mmembed {

enum class OutputKind {
  kFile,    // a new or regular file: replaced atomically
  kStdout,  // "-"
  kStream,  // a FIFO or character device, written in place
};

// What writing `path` would do (see above); IoError for the kinds that are refused. Callers use
// it to decide about side files such as OUT.quality.json, which only make sense beside a kFile.
OutputKind output_kind(const std::string& path, bool allow_stdout = true);

// "standard output" for "-", else the path: how messages name an output.
std::string output_name(const std::string& path);

class OutputFile {
 public:
  static OutputFile open(const std::string& path, bool allow_stdout = true);

  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  // Without commit(): a temporary file is removed (the target keeps its old contents).
  ~OutputFile();

  void write(std::string_view bytes);
  void write(const void* data, std::size_t size);
  // Flushes and closes (and renames into place for kFile); throws IoError on any failure.
  void commit();

  OutputKind kind() const { return kind_; }
  const std::string& path() const { return path_; }

 private:
  OutputFile() = default;
  void discard() noexcept;

  std::string path_;    // as given, for messages
  std::string target_;  // kFile: what the rename replaces (links resolved)
  std::string temp_;    // kFile: the temporary file
  int fd_ = -1;
  OutputKind kind_ = OutputKind::kFile;
  bool done_ = false;
};

// The whole of `contents` through an OutputFile, committed.
void write_output_file(const std::string& path, std::string_view contents,
                       bool allow_stdout = true);

}  // namespace mmembed
