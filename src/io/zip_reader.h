// A small read-only ZIP reader for PyTorch checkpoints (torch.save's zip container).
//
//   io::ZipArchive zip = io::ZipArchive::parse(file->bytes(), file->path());
//   if (const io::ZipEntry* e = zip.find("archive/data.pkl")) io::ByteSpan pkl = zip.data(*e);
//
// Reads the central directory (found through the end-of-central-directory record, searched
// backwards over at most 65535 + 22 bytes; ZIP64 locator, record and extra fields supported) and
// resolves every entry's data offset from its LOCAL header (local header offset + 30 + local name
// length + local extra length; the local extra field differs from the central one in torch files).
// Every offset and length is bounds-checked against the buffer. Only stored (method 0),
// unencrypted entries can be read: data() of a compressed entry throws FormatError naming it.
// Single-disk archives only. The archive does not own the bytes: keep them alive while using it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/bytes.h"

namespace mmembed::io {

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 = stored
  std::uint16_t flags = 0;   // bit 0 = encrypted
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;  // uncompressed
  std::uint64_t local_header_offset = 0;
  std::uint64_t data_offset = 0;  // first byte of the entry's data in the archive
};

class ZipArchive {
 public:
  // Parses and validates the archive in `bytes`; `source` names it in messages. Throws
  // FormatError on any malformed or out-of-bounds structure and on duplicate entry names.
  static ZipArchive parse(ByteSpan bytes, const std::string& source);

  const std::vector<ZipEntry>& entries() const noexcept { return entries_; }
  // The entry called exactly `name`, or nullptr.
  const ZipEntry* find(std::string_view name) const;
  // The bytes of a stored entry (a view into the archive's buffer).
  ByteSpan data(const ZipEntry& entry) const;
  const std::string& source() const noexcept { return source_; }

 private:
  ByteSpan bytes_;
  std::string source_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace mmembed::io
