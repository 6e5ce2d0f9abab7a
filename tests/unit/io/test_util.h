// Helpers shared by the io tests: fixture paths, file bytes, expected values from torch, and
// assertions on exception type + message.
#pragma once

#include "test_support.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "mmembed/error.h"

namespace mmembed::io::testing {

inline std::string data_path(const std::string& rel) {
  return std::string(MMEMBED_TEST_DATA_DIR) + "/io/" + rel;
}

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// expected.json, written by scripts/fixtures/make_io_fixtures.py from torch's own view.
inline const nlohmann::json& expected() {
  static const nlohmann::json j = [] {
    std::ifstream in(data_path("expected.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}

using testing_support::error_of;

inline ::testing::AssertionResult has_all(const std::string& msg,
                                          std::initializer_list<std::string> parts) {
  for (const std::string& p : parts) {
    if (msg.find(p) == std::string::npos) {
      return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << p << "\"";
    }
  }
  return ::testing::AssertionSuccess();
}

// Throws E with a message containing every part.
#define EXPECT_ERROR(E, stmt, ...) \
  EXPECT_TRUE(::mmembed::io::testing::has_all(::mmembed::io::testing::error_of<E>([&] { stmt; }), {__VA_ARGS__}))

// Compares every tensor of `ckpt` with torch's record for fixture `rel`: same names (in any
// order, none extra), dtypes, shapes and exactly equal values.
inline void expect_matches_torch(const Checkpoint& ckpt, const std::string& rel) {
  const nlohmann::json& want = expected().at(rel);
  EXPECT_EQ(ckpt.tensors().size(), want.size()) << rel;
  for (auto it = want.begin(); it != want.end(); ++it) {
    SCOPED_TRACE(rel + ": " + it.key());
    const TensorInfo* info = ckpt.find(it.key());
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->dtype_name, (*it)["dtype"].get<std::string>());
    EXPECT_EQ(info->shape, (*it)["shape"].get<Shape>());
    Tensor t = ckpt.get(it.key());
    EXPECT_EQ(t.shape(), info->shape);
    const auto& values = (*it)["values"];
    ASSERT_EQ(static_cast<std::size_t>(t.numel()), values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      EXPECT_EQ(t.value_at(static_cast<std::int64_t>(i)), values[i].get<double>()) << "element " << i;
    }
    if (info->dtype && dtype_is_float(*info->dtype)) {
      Tensor f = ckpt.get_f32(it.key());
      EXPECT_EQ(f.dtype(), DType::F32);
      for (std::size_t i = 0; i < values.size(); ++i) {
        EXPECT_EQ(f.data<float>()[i], static_cast<float>(values[i].get<double>()));
      }
    }
  }
}

}  // namespace mmembed::io::testing
