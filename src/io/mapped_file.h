// MappedFile: a whole file mapped read-only into memory.
//
//   std::shared_ptr<const MappedFile> f = MappedFile::open("model.safetensors");
//   io::ByteSpan bytes = f->bytes();
//   Tensor t = Tensor::wrap(ptr_inside_bytes, DType::F32, shape, f);  // keeps the mapping alive
//
// The mapping lives as long as the last shared_ptr to it, so tensors wrapping mapped memory hold
// the MappedFile as their owner. The memory is mapped PROT_READ: tensors that wrap it are
// read-only views (writing through them faults); clone() a tensor before modifying it.
// A zero-byte file is valid and yields an empty span (mmap of 0 bytes is not allowed, so no
// mapping is made). Thread-safe: the object is immutable after open().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "io/bytes.h"

namespace mmembed::io {

class MappedFile {
 public:
  // Maps `path`. Throws IoError naming the path when it is missing, a directory, not a regular
  // file, unreadable or cannot be mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const noexcept { return path_; }
  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  ByteSpan bytes() const noexcept { return {data_, size_}; }
  // Gives back the memory of the whole pages inside [p, p + n) (madvise MADV_DONTNEED): after a
  // caller has copied or converted a tensor it will not read again, so that the process does
  // not keep both. The bytes stay readable (a later read faults them in again from the file).
  // Ranges outside the mapping are ignored.
  void release(const void* p, std::size_t n) const noexcept;

 private:
  MappedFile() = default;

  std::string path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  void* map_ = nullptr;  // nullptr for an empty file
};

}  // namespace mmembed::io
