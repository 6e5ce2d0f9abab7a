#include "io/zip_reader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "io/torch_zip.h"
#include "test_util.h"

namespace mmembed::io {
namespace {

using namespace std::string_literals;

// A tiny zip writer for tests: stored or "deflated" (method 8, data left as is) entries, with
// optional ZIP64 records (0xffffffff placeholders + extra fields + ZIP64 end record/locator).
struct Entry {
  std::string name;
  std::string data;
  std::uint16_t method = 0;
};

void put16(std::string& s, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) s += static_cast<char>(v >> (8 * i));
}
void put32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>(v >> (8 * i));
}
void put64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>(v >> (8 * i));
}

std::string build_zip(const std::vector<Entry>& entries, bool zip64, const std::string& comment = "") {
  std::string out, cd;
  for (const Entry& e : entries) {
    const std::uint64_t offset = out.size();
    std::string local_extra;
    if (zip64) {
      put16(local_extra, 1);
      put16(local_extra, 16);
      put64(local_extra, e.data.size());
      put64(local_extra, e.data.size());
    }
    put32(out, 0x04034b50);
    put16(out, zip64 ? 45 : 20);
    put16(out, 0);
    put16(out, e.method);
    put32(out, 0);  // time, date
    put32(out, 0);  // crc (not checked)
    put32(out, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(e.data.size()));
    put32(out, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(e.data.size()));
    put16(out, static_cast<std::uint16_t>(e.name.size()));
    put16(out, static_cast<std::uint16_t>(local_extra.size()));
    out += e.name + local_extra + e.data;

    std::string extra;
    if (zip64) {
      put16(extra, 1);
      put16(extra, 24);
      put64(extra, e.data.size());
      put64(extra, e.data.size());
      put64(extra, offset);
    }
    put32(cd, 0x02014b50);
    put16(cd, 45);
    put16(cd, zip64 ? 45 : 20);
    put16(cd, 0);
    put16(cd, e.method);
    put32(cd, 0);
    put32(cd, 0);
    put32(cd, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(e.data.size()));
    put32(cd, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(e.data.size()));
    put16(cd, static_cast<std::uint16_t>(e.name.size()));
    put16(cd, static_cast<std::uint16_t>(extra.size()));
    put16(cd, 0);  // comment
    put16(cd, 0);  // disk
    put16(cd, 0);  // internal attributes
    put32(cd, 0);  // external attributes
    put32(cd, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(offset));
    cd += e.name + extra;
  }
  const std::uint64_t cd_offset = out.size();
  out += cd;
  if (zip64) {
    const std::uint64_t rec = out.size();
    put32(out, 0x06064b50);
    put64(out, 44);
    put16(out, 45);
    put16(out, 45);
    put32(out, 0);
    put32(out, 0);
    put64(out, entries.size());
    put64(out, entries.size());
    put64(out, cd.size());
    put64(out, cd_offset);
    put32(out, 0x07064b50);
    put32(out, 0);
    put64(out, rec);
    put32(out, 1);
  }
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, zip64 ? 0xffff : static_cast<std::uint16_t>(entries.size()));
  put16(out, zip64 ? 0xffff : static_cast<std::uint16_t>(entries.size()));
  put32(out, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(cd.size()));
  put32(out, zip64 ? 0xffffffffu : static_cast<std::uint32_t>(cd_offset));
  put16(out, static_cast<std::uint16_t>(comment.size()));
  return out + comment;
}

ByteSpan span_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string as_string(ByteSpan b) { return std::string(as_chars(b)); }

// A one-tensor state dict: "w" = 2x2 floats from storage "0" (protocol 2, as torch writes it).
std::string bu(const std::string& s) {
  std::string out = "X";
  put32(out, static_cast<std::uint32_t>(s.size()));
  return out + s;
}
const std::string kPickle =
    "\x80\x02}"s + bu("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" + bu("storage") +
    "ctorch\nFloatStorage\n" + bu("0") + bu("cpu") + "K\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86\x89"s +
    "ccollections\nOrderedDict\n)RtRs.";
std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

TEST(ZipReader, PlainAndZip64AndComment) {
  const std::vector<Entry> entries = {{"pkg/a.txt", "hello"}, {"pkg/b", ""}, {"pkg/c", "xyz"}};
  for (bool zip64 : {false, true}) {
    for (const std::string& comment : {""s, "a comment PK\x05\x06 with a fake signature"s}) {
      SCOPED_TRACE(zip64 ? "zip64" : "zip32");
      std::string bytes = build_zip(entries, zip64, comment);
      ZipArchive zip = ZipArchive::parse(span_of(bytes), "t.zip");
      ASSERT_EQ(zip.entries().size(), 3u);
      EXPECT_EQ(as_string(zip.data(*zip.find("pkg/a.txt"))), "hello");
      EXPECT_EQ(as_string(zip.data(*zip.find("pkg/b"))), "");
      EXPECT_EQ(as_string(zip.data(*zip.find("pkg/c"))), "xyz");
      EXPECT_EQ(zip.find("pkg/d"), nullptr);
    }
  }
}

TEST(ZipReader, Errors) {
  EXPECT_ERROR(FormatError, ZipArchive::parse(span_of("PK\x03\x04 this is long enough but has no end record"s), "t.zip"),
               "t.zip: zip:", "no end-of-central-directory record");
  std::string compressed = build_zip({{"p/data.pkl", "xx", 8}}, false);
  ZipArchive zip = ZipArchive::parse(span_of(compressed), "t.zip");
  EXPECT_ERROR(FormatError, zip.data(zip.entries()[0]), "t.zip: zip: entry 'p/data.pkl' is compressed (method 8)");
  EXPECT_ERROR(FormatError, ZipArchive::parse(span_of(build_zip({{"a", "1"}, {"a", "2"}}, false)), "t.zip"),
               "duplicate entry 'a'");
  std::string renamed = build_zip({{"p/abc", "1"}}, false);
  renamed[30] = 'q';  // the local header's name no longer matches the central directory
  EXPECT_ERROR(FormatError, ZipArchive::parse(span_of(renamed), "t.zip"),
               "entry 'p/abc': local header does not match");
}

TEST(ZipReader, EveryTruncationIsRejectedWithoutCrashing) {
  for (bool zip64 : {false, true}) {
    std::string bytes = build_zip({{"pkg/a", "hello"}, {"pkg/b", "world!"}}, zip64);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_THROW(ZipArchive::parse(span_of(bytes.substr(0, n)), "t.zip"), FormatError) << n;
    }
  }
}

TEST(TorchArchive, BuiltInMemoryWithAnyFolderNameAndZip64) {
  for (bool zip64 : {false, true}) {
    std::string bytes = build_zip({{"my.model/data.pkl", kPickle},
                                   {"my.model/data/0", floats({1, 2, 3, 4})},
                                   {"my.model/version", "3\n"}},
                                  zip64);
    TorchArchive a = parse_torch_archive(span_of(bytes), "m.bin");
    EXPECT_EQ(a.prefix, "my.model");
    ASSERT_EQ(a.state.tensors.size(), 1u);
    Tensor t = torch_archive_tensor(a, 0, nullptr, "m.bin");
    EXPECT_EQ(t.shape(), (Shape{2, 2}));
    EXPECT_EQ(t.data<float>()[3], 4.f);
  }
}

TEST(TorchArchive, StorageRecordChecks) {
  std::string short_record = build_zip({{"m/data.pkl", kPickle}, {"m/data/0", floats({1, 2, 3})}}, false);
  EXPECT_ERROR(FormatError, parse_torch_archive(span_of(short_record), "m.bin"),
               "m.bin: record 'm/data/0' holds 12 bytes (expected 4 F32 elements");
  std::string bad_order = build_zip({{"m/data.pkl", kPickle}, {"m/data/0", floats({1, 2, 3, 4})},
                                     {"m/byteorder", "middle"}}, false);
  EXPECT_ERROR(FormatError, parse_torch_archive(span_of(bad_order), "m.bin"),
               "byteorder record is 'middle'");
  std::string no_folder = build_zip({{"data.pkl", kPickle}}, false);
  EXPECT_ERROR(FormatError, parse_torch_archive(span_of(no_folder), "m.bin"),
               "first zip entry 'data.pkl' is not inside an archive folder");
  std::string no_pkl = build_zip({{"m/version", "3\n"}}, false);
  EXPECT_ERROR(FormatError, parse_torch_archive(span_of(no_pkl), "m.bin"), "no 'm/data.pkl' record");
  std::string scripted = build_zip({{"m/data.pkl", kPickle}, {"m/code/__torch__.py", "x"}}, false);
  EXPECT_ERROR(Unsupported, parse_torch_archive(span_of(scripted), "m.bin"), "TorchScript");
}

}  // namespace
}  // namespace mmembed::io
