#include "io/zip_reader.h"

#include <algorithm>

#include "core/check.h"

namespace mmembed::io {

namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr std::uint32_t kEnd64Sig = 0x06064b50;
constexpr std::size_t kEndSize = 22;
constexpr std::size_t kEnd64LocatorSize = 20;
constexpr std::size_t kEnd64Size = 56;
constexpr std::size_t kCentralSize = 46;
constexpr std::size_t kLocalSize = 30;
constexpr std::uint32_t kMax32 = 0xffffffffu;
constexpr std::uint16_t kMax16 = 0xffffu;

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  throw FormatError(str_cat(source, ": zip: ", what));
}

std::uint16_t u16(ByteSpan b, std::uint64_t at) { return read_le<std::uint16_t>(b.data() + at); }
std::uint32_t u32(ByteSpan b, std::uint64_t at) { return read_le<std::uint32_t>(b.data() + at); }
std::uint64_t u64(ByteSpan b, std::uint64_t at) { return read_le<std::uint64_t>(b.data() + at); }

// Replaces the 0xffffffff placeholders of `e` with the values of the ZIP64 extra field (id 1),
// which lists, in this order and only for the placeholders, size, compressed size, offset.
void apply_zip64_extra(ByteSpan extra, ZipEntry& e, bool size_ph, bool csize_ph, bool offset_ph,
                       const std::string& source) {
  std::size_t pos = 0;
  while (pos + 4 <= extra.size()) {
    std::uint16_t id = u16(extra, pos);
    std::uint16_t len = u16(extra, pos + 2);
    pos += 4;
    if (len > extra.size() - pos) {
      bad(source, str_cat("entry '", printable(e.name), "': extra field runs past its end"));
    }
    if (id == 0x0001) {
      ByteSpan f = extra.subspan(pos, len);
      std::size_t at = 0;
      auto take = [&](std::uint64_t& out) {
        if (at + 8 > f.size()) {
          bad(source, str_cat("entry '", printable(e.name), "': ZIP64 extra field too short"));
        }
        out = u64(f, at);
        at += 8;
      };
      if (size_ph) take(e.size);
      if (csize_ph) take(e.compressed_size);
      if (offset_ph) take(e.local_header_offset);
      return;
    }
    pos += len;
  }
  if (size_ph || csize_ph || offset_ph) {
    bad(source, str_cat("entry '", printable(e.name),
                        "': sizes are 0xffffffff but there is no ZIP64 extra field"));
  }
}

}  // namespace

ZipArchive ZipArchive::parse(ByteSpan bytes, const std::string& source) {
  ZipArchive zip;
  zip.bytes_ = bytes;
  zip.source_ = source;
  const std::uint64_t size = bytes.size();
  if (size < kEndSize) {
    bad(source, str_cat("file too short for a zip archive (", size, " bytes)"));
  }

  // The end record sits at the very end, after a comment of up to 65535 bytes. Accept only a
  // signature whose comment length reaches exactly the end of the file, so that bytes inside an
  // entry that happen to look like a signature are not taken for it.
  std::uint64_t end_pos = 0;
  bool found = false;
  const std::uint64_t lowest = size > kEndSize + 0xffff ? size - kEndSize - 0xffff : 0;
  for (std::uint64_t pos = size - kEndSize + 1; pos-- > lowest;) {
    if (u32(bytes, pos) == kEndSig && pos + kEndSize + u16(bytes, pos + 20) == size) {
      end_pos = pos;
      found = true;
      break;
    }
  }
  if (!found) bad(source, "no end-of-central-directory record (not a zip file, or truncated)");

  std::uint64_t disk = u16(bytes, end_pos + 4);
  std::uint64_t cd_disk = u16(bytes, end_pos + 6);
  std::uint64_t count_disk = u16(bytes, end_pos + 8);
  std::uint64_t count = u16(bytes, end_pos + 10);
  std::uint64_t cd_size = u32(bytes, end_pos + 12);
  std::uint64_t cd_offset = u32(bytes, end_pos + 16);
  std::uint64_t cd_limit = end_pos;  // the central directory must end before this

  if (end_pos >= kEnd64LocatorSize && u32(bytes, end_pos - kEnd64LocatorSize) == kEnd64LocatorSig) {
    const std::uint64_t loc = end_pos - kEnd64LocatorSize;
    std::uint64_t rec = u64(bytes, loc + 8);
    if (u32(bytes, loc + 4) != 0 || u32(bytes, loc + 16) != 1) {
      bad(source, "multi-disk archives are not supported");
    }
    if (!range_ok(rec, kEnd64Size, loc) || u32(bytes, rec) != kEnd64Sig) {
      bad(source, str_cat("ZIP64 end record offset ", rec, " is invalid"));
    }
    disk = u32(bytes, rec + 16);
    cd_disk = u32(bytes, rec + 20);
    count_disk = u64(bytes, rec + 24);
    count = u64(bytes, rec + 32);
    cd_size = u64(bytes, rec + 40);
    cd_offset = u64(bytes, rec + 48);
    cd_limit = rec;
  }
  if (disk != 0 || cd_disk != 0 || count_disk != count) {
    bad(source, "multi-disk archives are not supported");
  }
  if (!range_ok(cd_offset, cd_size, cd_limit)) {
    bad(source, str_cat("central directory [", cd_offset, ", +", cd_size,
                        ") lies outside the archive (expected it to end by byte ", cd_limit, ")"));
  }
  if (count > cd_size / kCentralSize) {
    bad(source, str_cat(count, " entries cannot fit in a ", cd_size,
                        "-byte central directory"));
  }

  ByteSpan cd = bytes.subspan(cd_offset, cd_size);
  std::uint64_t pos = 0;
  zip.entries_.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!range_ok(pos, kCentralSize, cd.size()) || u32(cd, pos) != kCentralSig) {
      bad(source, str_cat("central directory entry ", i, " is missing or corrupt"));
    }
    ZipEntry e;
    e.flags = u16(cd, pos + 8);
    e.method = u16(cd, pos + 10);
    e.compressed_size = u32(cd, pos + 20);
    e.size = u32(cd, pos + 24);
    const std::uint64_t name_len = u16(cd, pos + 28);
    const std::uint64_t extra_len = u16(cd, pos + 30);
    const std::uint64_t comment_len = u16(cd, pos + 32);
    const std::uint16_t disk_start = u16(cd, pos + 34);
    e.local_header_offset = u32(cd, pos + 42);
    if (!range_ok(pos + kCentralSize, name_len + extra_len + comment_len, cd.size())) {
      bad(source, str_cat("central directory entry ", i, " runs past the directory"));
    }
    e.name.assign(as_chars(cd.subspan(pos + kCentralSize, name_len)));
    apply_zip64_extra(cd.subspan(pos + kCentralSize + name_len, extra_len), e,
                      e.size == kMax32, e.compressed_size == kMax32,
                      e.local_header_offset == kMax32, source);
    if (disk_start != 0 && disk_start != kMax16) {
      bad(source, "multi-disk archives are not supported");
    }
    pos += kCentralSize + name_len + extra_len + comment_len;

    const std::string what = str_cat("entry '", printable(e.name), "'");
    if (e.method == 0 && e.compressed_size != e.size) {
      bad(source, str_cat(what, " is stored but its sizes differ (", e.compressed_size, " vs ",
                          e.size, ")"));
    }
    const std::uint64_t lh = e.local_header_offset;
    if (!range_ok(lh, kLocalSize, cd_offset) || u32(bytes, lh) != kLocalSig) {
      bad(source, str_cat(what, ": local header at offset ", lh, " is missing or corrupt"));
    }
    const std::uint64_t local_name_len = u16(bytes, lh + 26);
    const std::uint64_t local_extra_len = u16(bytes, lh + 28);
    if (!range_ok(lh + kLocalSize, local_name_len + local_extra_len, cd_offset) ||
        as_chars(bytes.subspan(lh + kLocalSize, local_name_len)) != e.name) {
      bad(source, str_cat(what, ": local header does not match the central directory"));
    }
    e.data_offset = lh + kLocalSize + local_name_len + local_extra_len;
    if (!range_ok(e.data_offset, e.compressed_size, cd_offset)) {
      bad(source, str_cat(what, ": data [", e.data_offset, ", +", e.compressed_size,
                          ") runs past the entries area (which ends at ", cd_offset, ")"));
    }
    if (!zip.index_.emplace(e.name, zip.entries_.size()).second) {
      bad(source, str_cat("duplicate entry '", printable(e.name), "'"));
    }
    zip.entries_.push_back(std::move(e));
  }
  return zip;
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

ByteSpan ZipArchive::data(const ZipEntry& e) const {
  if (e.flags & 1u) bad(source_, str_cat("entry '", printable(e.name), "' is encrypted"));
  if (e.method != 0) {
    bad(source_, str_cat("entry '", printable(e.name), "' is compressed (method ", e.method,
                         "); only stored entries are supported, as torch.save writes them"));
  }
  MMEMBED_ASSERT(range_ok(e.data_offset, e.size, bytes_.size()));
  return bytes_.subspan(e.data_offset, e.size);
}

}  // namespace mmembed::io
