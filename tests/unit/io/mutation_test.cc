// Robustness: every truncation and many single-byte corruptions of real fixtures must either
// load or throw an mmembed::Error; never crash, hang or read out of bounds (run under ASan/UBSan
// in the build-io-asan configuration).
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io/torch_zip.h"
#include "test_util.h"

namespace mmembed::io {
namespace {

using testing::data_path;
using testing::read_bytes;

// Parses and loads everything; returns true when the input was accepted.
bool try_safetensors(ByteSpan bytes) {
  try {
    SafetensorsHeader h = parse_safetensors(bytes, "m");
    for (std::size_t i = 0; i < h.entries.size(); ++i) {
      try {
        Tensor t = safetensors_tensor(bytes, h, i, nullptr, "m");
        if (t.numel() > 0) (void)t.to_f32();
      } catch (const Unsupported&) {
      }
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

bool try_torch(ByteSpan bytes) {
  try {
    TorchArchive a = parse_torch_archive(bytes, "m");
    for (std::size_t i = 0; i < a.state.tensors.size(); ++i) {
      try {
        Tensor t = torch_archive_tensor(a, i, nullptr, "m");
        if (t.numel() > 0) (void)t.to_f32();
      } catch (const Unsupported&) {
      }
    }
    return true;
  } catch (const Error&) {
    return false;
  }
}

TEST(Mutation, SafetensorsEveryTruncation) {
  auto bytes = read_bytes(data_path("single.safetensors"));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(try_safetensors(ByteSpan(bytes.data(), n))) << "accepted a " << n << "-byte prefix";
  }
  EXPECT_TRUE(try_safetensors(bytes));
}

TEST(Mutation, SafetensorsByteFlips) {
  auto bytes = read_bytes(data_path("single.safetensors"));
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (std::uint8_t x : {0x01, 0x80, 0xff}) {
      bytes[i] ^= x;
      try_safetensors(bytes);
      bytes[i] ^= x;
    }
  }
}

TEST(Mutation, TorchZipEveryTruncation) {
  auto bytes = read_bytes(data_path("torch_state.bin"));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(try_torch(ByteSpan(bytes.data(), n))) << "accepted a " << n << "-byte prefix";
  }
  EXPECT_TRUE(try_torch(bytes));
}

TEST(Mutation, TorchZipByteFlips) {
  for (const char* rel : {"torch_state.bin", "torch_bigendian.bin", "torch_proto4.bin"}) {
    auto bytes = read_bytes(data_path(rel));
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (std::uint8_t x : {0x01, 0x80, 0xff}) {
        bytes[i] ^= x;
        try_torch(bytes);
        bytes[i] ^= x;
      }
    }
  }
}

TEST(Mutation, PickleEveryTruncationAndFlip) {
  auto zip_bytes = read_bytes(data_path("torch_state.bin"));
  ZipArchive zip = ZipArchive::parse(zip_bytes, "m");
  ByteSpan pkl = zip.data(*zip.find("torch_state/data.pkl"));
  std::vector<std::uint8_t> p(pkl.begin(), pkl.end());
  for (std::size_t n = 0; n < p.size(); ++n) {
    EXPECT_THROW(unpickle_state_dict(ByteSpan(p.data(), n), "m"), Error);
  }
  for (std::size_t i = 0; i < p.size(); ++i) {
    for (std::uint8_t x : {0x01, 0x02, 0x10, 0x80, 0xff}) {
      p[i] ^= x;
      try {
        unpickle_state_dict(p, "m");
      } catch (const Error&) {
      }
      p[i] ^= x;
    }
  }
}

}  // namespace
}  // namespace mmembed::io
