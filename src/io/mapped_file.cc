#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace mmembed::io {

namespace {

// Closes a file descriptor on every exit path of open().
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw IoError(str_cat(path, ": cannot open (", std::strerror(err), ")"));
  }
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    throw IoError(str_cat(path, ": cannot stat (", std::strerror(err), ")"));
  }
  if (S_ISDIR(st.st_mode)) throw IoError(str_cat(path, ": is a directory, expected a file"));
  if (!S_ISREG(st.st_mode)) throw IoError(str_cat(path, ": not a regular file"));

  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ == 0) return file;  // mmap rejects length 0; an empty span is enough

  void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    throw IoError(str_cat(path, ": cannot map ", file->size_, " bytes (", std::strerror(err), ")"));
  }
  file->map_ = p;
  file->data_ = static_cast<const std::uint8_t*>(p);
  return file;
}

MappedFile::~MappedFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

}  // namespace mmembed::io
