#include "io/mapped_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/check.h"
#include "core/file.h"

namespace mmembed::io {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  // The descriptor is closed when `in` goes out of scope: the mapping outlives it.
  InputFile in = InputFile::open(path);
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(in.size());
  if (file->size_ == 0) return file;  // mmap rejects length 0; an empty span is enough

  void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, in.fd(), 0);
  if (p == MAP_FAILED) {
    int err = errno;
    throw IoError(str_cat(escape_for_message(path), ": cannot map ", file->size_, " bytes (",
                          std::strerror(err), ")"));
  }
  file->map_ = p;
  file->data_ = static_cast<const std::uint8_t*>(p);
  return file;
}

MappedFile::~MappedFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

void MappedFile::release(const void* p, std::size_t n) const noexcept {
  const auto* b = static_cast<const std::uint8_t*>(p);
  if (map_ == nullptr || b < data_ || n > size_ || b > data_ + (size_ - n)) return;
  const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(b) + page - 1) / page * page;
  const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(b) + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace mmembed::io
