// safetensors reading and writing (spec: docs of the format, our summary in clip-and-formats E.1).
//
//   auto file = io::SafetensorsFile::open("model.safetensors");   // validates the whole header
//   for (const io::TensorInfo& t : file->tensors()) std::cout << t.name << "\n";
//   Tensor w = file->load(0);                                      // zero-copy when aligned
//
//   io::write_safetensors("out.safetensors", {{"emb", t}}, {{"format", "pt"}});
//
// Reading validates everything before any tensor is handed out: header length (<= 100,000,000
// and inside the file), UTF-8, JSON syntax, duplicate keys, `__metadata__` (string -> string),
// dtype names, shapes (non-negative integers, overflow-checked products), byte lengths, and that
// the tensors tile the data buffer exactly (sorted by offset: no gap, no overlap, nothing left).
// Every failure is a FormatError "<file>: <problem>" (IoError when the file cannot be read).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/bytes.h"
#include "io/mapped_file.h"
#include "io/tensor_source.h"

namespace mmembed::io {

inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafetensorsEntry {
  TensorInfo info;
  std::uint64_t begin = 0;  // byte offsets relative to the start of the data buffer
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::uint64_t data_start = 0;  // 8 + header length: where the data buffer begins in the file
  std::vector<SafetensorsEntry> entries;  // sorted by `begin`, ties by name
  std::map<std::string, std::string> metadata;
};

// Bits per element of a safetensors dtype name ("F32" -> 32, "F4" -> 4); 0 for unknown names.
unsigned safetensors_dtype_bits(std::string_view name) noexcept;
// "F32", "BF16", "BOOL"... for a DType.
std::string_view safetensors_dtype_name(DType dtype) noexcept;

// Validates a complete safetensors file held in `bytes`; `source` names it in error messages.
// In-memory entry point used by SafetensorsFile and the fuzzer.
SafetensorsHeader parse_safetensors(ByteSpan bytes, const std::string& source);

// Tensor `index` of a parsed file. With a non-null `owner` (the object keeping `bytes` alive) an
// aligned tensor is a zero-copy view; otherwise, or when misaligned, an owned copy. BOOL data
// must hold only 0/1 bytes. Throws Unsupported for dtypes mmembed does not load.
Tensor safetensors_tensor(ByteSpan bytes, const SafetensorsHeader& header, std::size_t index,
                          const std::shared_ptr<const void>& owner, const std::string& source);

class SafetensorsFile final : public TensorSource {
 public:
  // Maps and validates `path`.
  static std::shared_ptr<const SafetensorsFile> open(const std::string& path);

  const std::string& path() const noexcept override { return file_->path(); }
  std::string_view format() const noexcept override { return "safetensors"; }
  const std::vector<TensorInfo>& tensors() const noexcept override { return infos_; }
  Tensor load(std::size_t index) const override;
  void release(std::size_t index) const override;

  // The `__metadata__` object (empty when absent).
  const std::map<std::string, std::string>& metadata() const noexcept { return header_.metadata; }

 private:
  SafetensorsFile() = default;
  std::shared_ptr<const MappedFile> file_;
  SafetensorsHeader header_;
  std::vector<TensorInfo> infos_;
};

// Writes `tensors` (name -> tensor, any loadable dtype) and optional `__metadata__` to `path`
// through core/output_file.h: a temporary file in the same folder is written, flushed and
// renamed over `path`, so a reader never sees a half-written file (a FIFO or character device
// is written in place). Layout follows the reference writer: tensors
// sorted by element size (largest first) then name, header padded with spaces to a multiple of
// 8 bytes so every tensor is naturally aligned. Throws InvalidArgument for a tensor named
// "__metadata__", IoError when the file cannot be written.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mmembed::io
