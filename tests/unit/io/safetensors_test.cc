#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io/checkpoint.h"
#include "test_util.h"

namespace mmembed::io {
namespace {

using testing::data_path;
using testing::read_bytes;

TEST(Safetensors, SingleFileMatchesTorch) {
  Checkpoint ckpt = open_checkpoint(data_path("single.safetensors"));
  EXPECT_EQ(ckpt.format(), "safetensors");
  testing::expect_matches_torch(ckpt, "single.safetensors");
  EXPECT_EQ(ckpt.metadata().at("format"), "pt");
  // 12 + 6 + 5 + 4 + 1 + 0 + 3 + 2
  EXPECT_EQ(ckpt.parameter_count(), 33);
  const TensorInfo* scalar = ckpt.find("scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->numel, 1);
  EXPECT_EQ(ckpt.get("empty").numel(), 0);
  EXPECT_EQ(ckpt.get("empty").shape(), (Shape{0, 3}));
}

TEST(Safetensors, AlignedTensorsAreZeroCopy) {
  auto file = SafetensorsFile::open(data_path("single.safetensors"));
  for (std::size_t i = 0; i < file->tensors().size(); ++i) {
    if (file->tensors()[i].nbytes == 0) continue;
    Tensor a = file->load(i);
    Tensor b = file->load(i);
    EXPECT_EQ(a.raw(), b.raw()) << file->tensors()[i].name << " should share the mapping";
  }
}

TEST(Safetensors, MisalignedDataIsCopiedNotReinterpreted) {
  auto file = SafetensorsFile::open(data_path("unaligned.safetensors"));
  Tensor w = file->load(0);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w.raw()) % alignof(float), 0u);
  EXPECT_EQ(w.data<float>()[0], 1.5f);
  EXPECT_EQ(w.data<float>()[1], -2.25f);
  testing::expect_matches_torch(open_checkpoint(data_path("unaligned.safetensors")),
                                "unaligned.safetensors");
}

TEST(Safetensors, Float8IsListedButRefusedForLoading) {
  Checkpoint ckpt = open_checkpoint(data_path("float8.safetensors"));
  const TensorInfo* q = ckpt.find("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype_name, "F8_E4M3");
  EXPECT_FALSE(q->dtype.has_value());
  EXPECT_ERROR(Unsupported, ckpt.get("q"), "float8.safetensors", "'q'", "F8_E4M3");
}

TEST(Safetensors, CorruptFilesGiveFormatErrorsNamingTheProblem) {
  struct Case {
    const char* file;
    std::vector<std::string> parts;
  };
  const Case cases[] = {
      {"bad/truncated.safetensors", {"header length 512", "runs past the end"}},
      {"bad/header_too_long.safetensors", {"header length 1048576", "past the end"}},
      {"bad/offsets_past_end.safetensors", {"tensor 'b'", "past the data buffer"}},
      {"bad/overlap.safetensors", {"tensor 'b'", "starts at data offset 4", "overlap"}},
      {"bad/gap.safetensors", {"tensor 'a'", "expected 0", "gap"}},
      {"bad/nan_shape.safetensors", {"invalid JSON"}},
      {"bad/float_shape.safetensors", {"tensor 'a'", "non-negative integers", "number 2.0"}},
      {"bad/negative_shape.safetensors", {"tensor 'a'", "non-negative integers", "-2"}},
      {"bad/duplicate_key.safetensors", {"duplicate key 'a'"}},
      {"bad/bad_metadata.safetensors", {"__metadata__", "'format'", "must be a string"}},
      {"bad/unknown_dtype.safetensors", {"tensor 'a'", "unknown dtype 'F31'"}},
      {"bad/size_mismatch.safetensors", {"tensor 'a'", "F32[3] needs 12"}},
      {"bad/invalid_utf8.safetensors", {"invalid UTF-8"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    std::string msg = testing::error_of<FormatError>([&] { open_checkpoint(data_path(c.file)); });
    EXPECT_TRUE(testing::has_all(msg, {c.file}));
    for (const std::string& p : c.parts) EXPECT_TRUE(testing::has_all(msg, {p}));
  }
}

TEST(Safetensors, ZeroByteFile) {
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad/zero.safetensors")),
               "zero.safetensors", "expected at least 8 bytes, got 0");
}

TEST(Safetensors, HeaderLengthLimit) {
  std::vector<std::uint8_t> bytes(16, 0);
  std::uint64_t n = kSafetensorsMaxHeader + 1;
  std::memcpy(bytes.data(), &n, 8);
  EXPECT_ERROR(FormatError, parse_safetensors(bytes, "mem"), "mem:", "too large",
               "expected <= 100000000");
}

TEST(Safetensors, HeaderMustBeAnObjectStartingWithBrace) {
  auto make = [](std::string text) {
    std::vector<std::uint8_t> b(8 + text.size());
    std::uint64_t n = text.size();
    std::memcpy(b.data(), &n, 8);
    std::memcpy(b.data() + 8, text.data(), text.size());
    return b;
  };
  EXPECT_ERROR(FormatError, parse_safetensors(make(" {}"), "m"), "does not start with '{'");
  EXPECT_ERROR(FormatError, parse_safetensors(make("{} x"), "m"), "invalid JSON");
  EXPECT_ERROR(FormatError, parse_safetensors(make("{\"a\":1}"), "m"), "tensor 'a'",
               "expected an object");
  EXPECT_ERROR(FormatError, parse_safetensors(make("{\"a\":{\"dtype\":\"F32\",\"shape\":[]}}"), "m"),
               "missing field 'data_offsets'");
  EXPECT_ERROR(FormatError,
               parse_safetensors(make(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}})"), "m"),
               "overflow");
  // Padding with spaces is allowed; an empty header has no tensors.
  SafetensorsHeader h = parse_safetensors(make("{}      "), "m");
  EXPECT_TRUE(h.entries.empty());
}

TEST(SafetensorsWriter, RoundTripsEveryDtypeAndAligns) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "mmembed_io_writer_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string out = (dir / "out.safetensors").string();

  std::map<std::string, Tensor> tensors;
  tensors["f32"] = Tensor::from<float>({2, 2}, {1.f, -2.f, 3.5f, 0.f});
  tensors["i8"] = Tensor::from<std::int8_t>({3}, {-1, 0, 1});
  tensors["f16"] = Tensor::from<f16>({1}, {f16{0x3c00}});
  tensors["bf16"] = Tensor::from<bf16>({1}, {bf16{0x4040}});
  tensors["i64"] = Tensor::from<std::int64_t>({2}, {-5, 1ll << 50});
  tensors["f64"] = Tensor::from<double>({}, {0.125});
  tensors["bool"] = Tensor::from<bool>({2}, {true, false});
  tensors["empty"] = Tensor::empty(DType::F32, {0, 7});
  write_safetensors(out, tensors, {{"format", "pt"}});

  auto bytes = read_bytes(out);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);

  auto file = SafetensorsFile::open(out);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  ASSERT_EQ(file->tensors().size(), tensors.size());
  // Largest elements first, so each tensor is naturally aligned.
  EXPECT_EQ(file->tensors().front().dtype_name, "F64");
  for (std::size_t i = 0; i < file->tensors().size(); ++i) {
    const TensorInfo& info = file->tensors()[i];
    Tensor got = file->load(i);
    const Tensor& want = tensors.at(info.name);
    EXPECT_EQ(got.dtype(), want.dtype()) << info.name;
    EXPECT_EQ(got.shape(), want.shape()) << info.name;
    ASSERT_EQ(got.nbytes(), want.nbytes());
    if (got.nbytes()) {
      EXPECT_EQ(std::memcmp(got.raw(), want.raw(), got.nbytes()), 0) << info.name;
    }
  }
  // Atomic write: nothing but the result is left in the folder.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
  // Overwriting an existing file works too.
  write_safetensors(out, {{"x", Tensor::from<float>({1}, {4.f})}});
  EXPECT_EQ(SafetensorsFile::open(out)->tensors().size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(SafetensorsWriter, Errors) {
  EXPECT_ERROR(InvalidArgument,
               write_safetensors("/tmp/x.safetensors", {{"__metadata__", Tensor::from<float>({1}, {1.f})}}),
               "__metadata__");
  EXPECT_ERROR(IoError, write_safetensors("/nonexistent-dir/x.safetensors", {}),
               "/nonexistent-dir/x.safetensors", "temporary file");
}

TEST(MappedFile, Errors) {
  EXPECT_ERROR(IoError, MappedFile::open(data_path("does_not_exist.safetensors")),
               "does_not_exist.safetensors", "cannot open");
  EXPECT_ERROR(IoError, MappedFile::open(data_path("sharded")), "sharded", "is a directory");
  auto empty = MappedFile::open(data_path("bad/zero.safetensors"));
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_TRUE(empty->bytes().empty());
}

}  // namespace
}  // namespace mmembed::io
