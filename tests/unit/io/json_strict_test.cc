// parse_json_strict builds its document from SAX events (issue #18, item 9: nlohmann's callback
// parser was quadratic in the number of objects inside one object). These tests check that the
// new builder gives the same documents as nlohmann::json::parse and refuses what the old one
// refused; and that safetensors headers with many tensors still get every tiling check.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/json_internal.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace mmembed::io {
namespace {

using testing::error_of;

// A random document: nested objects and arrays of every scalar kind, unique keys per object.
nlohmann::json random_value(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth >= 6 ? 5 : 7);
  switch (kind(rng)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<std::int64_t>(rng()) - (1 << 30);
    case 3: return static_cast<std::uint64_t>(rng()) << 31;
    case 4: return static_cast<double>(rng()) / 7.0;
    case 5: return std::string("s\xc3\xa9") + std::to_string(rng() % 1000) + "\"\\\n";
    case 6: {
      nlohmann::json a = nlohmann::json::array();
      for (int i = 0, n = static_cast<int>(rng() % 5); i < n; ++i) {
        a.push_back(random_value(rng, depth + 1));
      }
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      for (int i = 0, n = static_cast<int>(rng() % 6); i < n; ++i) {
        o["k" + std::to_string(rng() % 50)] = random_value(rng, depth + 1);
      }
      return o;
    }
  }
}

TEST(JsonStrict, SameDocumentsAsNlohmannParse) {
  std::mt19937 rng(18);
  for (int round = 0; round < 500; ++round) {
    const nlohmann::json doc = random_value(rng, 0);
    for (int indent : {-1, 2}) {
      const std::string text = doc.dump(indent);
      EXPECT_EQ(parse_json_strict(text, "doc"), nlohmann::json::parse(text)) << text;
    }
  }
}

TEST(JsonStrict, RefusesDuplicateKeysAtEveryDepth) {
  EXPECT_NE(error_of<FormatError>([] { parse_json_strict(R"({"a":1,"a":2})", "d.json"); })
                .find("d.json: duplicate key 'a'"),
            std::string::npos);
  EXPECT_NE(error_of<FormatError>([] {
              parse_json_strict(R"({"x":[{"b":{},"c":1,"b":[]}]})", "d.json");
            }).find("duplicate key 'b'"),
            std::string::npos);
  // The same key in sibling objects is fine.
  EXPECT_NO_THROW(parse_json_strict(R"({"x":{"a":1},"y":{"a":2},"z":[{"a":1},{"a":2}]})", "d"));
  // A duplicate after many distinct keys (the one-object-many-members shape of safetensors).
  std::string many = "{";
  for (int i = 0; i < 3000; ++i) many += "\"t" + std::to_string(i) + "\":{\"v\":[1,2]},";
  many += "\"t1234\":{}}";
  EXPECT_NE(error_of<FormatError>([&] { parse_json_strict(many, "m"); })
                .find("duplicate key 't1234'"),
            std::string::npos);
}

TEST(JsonStrict, DepthLimitIsExact) {
  auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  EXPECT_NO_THROW(parse_json_strict(nested(8), "n", 8));
  EXPECT_NE(error_of<FormatError>([&] { parse_json_strict(nested(9), "n", 8); })
                .find("nested deeper than 8 levels"),
            std::string::npos);
  EXPECT_NE(error_of<FormatError>([&] { parse_json_strict(nested(100000), "n"); })
                .find("nested deeper than 64 levels"),
            std::string::npos);
}

TEST(JsonStrict, SyntaxErrorsAndTrailingGarbage) {
  for (const char* bad : {"{", "{\"a\":}", "[1,]", "{} x", "", "nul", "{\"a\":1}}"}) {
    EXPECT_NE(error_of<FormatError>([&] { parse_json_strict(bad, "b.json"); })
                  .find("b.json: invalid JSON"),
              std::string::npos)
        << bad;
  }
  EXPECT_NE(error_of<FormatError>([] { parse_json_strict("\"\xff\"", "u.json"); })
                .find("invalid UTF-8"),
            std::string::npos);
}

// A safetensors file image with one F32 element per tensor, listed in a shuffled order.
std::vector<std::uint8_t> tensors_file(std::vector<std::pair<std::uint64_t, std::uint64_t>> spans,
                                       std::uint64_t buffer) {
  std::string header = "{";
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) header += ',';
    const std::uint64_t n = (spans[i].second - spans[i].first) / 4;
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[" +
              std::to_string(n) + "],\"data_offsets\":[" + std::to_string(spans[i].first) + "," +
              std::to_string(spans[i].second) + "]}";
  }
  header += "}";
  std::vector<std::uint8_t> file(8 + header.size() + buffer, 0);
  for (int b = 0; b < 8; ++b) file[b] = static_cast<std::uint8_t>(header.size() >> (8 * b));
  std::copy(header.begin(), header.end(), file.begin() + 8);
  return file;
}

TEST(SafetensorsManyTensors, TilingChecksHoldWithThousandsOfTensors) {
  constexpr std::uint64_t kCount = 20000;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (std::uint64_t i = 0; i < kCount; ++i) spans.emplace_back(4 * i, 4 * i + 4);
  std::mt19937 rng(9);
  std::shuffle(spans.begin(), spans.end(), rng);

  const SafetensorsHeader ok = parse_safetensors(tensors_file(spans, 4 * kCount), "ok");
  ASSERT_EQ(ok.entries.size(), kCount);
  for (std::uint64_t i = 0; i < kCount; ++i) EXPECT_EQ(ok.entries[i].begin, 4 * i);

  // One tensor moved 4 bytes on: a gap before it and an overlap with the next.
  auto moved = spans;
  auto it = std::find(moved.begin(), moved.end(), std::make_pair<std::uint64_t, std::uint64_t>(
                                                      4 * 12345, 4 * 12345 + 4));
  ASSERT_NE(it, moved.end());
  it->first += 4;
  it->second += 4;
  EXPECT_NE(error_of<FormatError>([&] {
              parse_safetensors(tensors_file(moved, 4 * kCount), "m");
            })
                .find("starts at data offset 49384 (expected 49380"),
            std::string::npos);

  // One tensor missing: the buffer is not covered.
  auto missing = spans;
  missing.erase(std::find(missing.begin(), missing.end(),
                          std::make_pair<std::uint64_t, std::uint64_t>(0, 4)));
  EXPECT_NE(error_of<FormatError>([&] {
              parse_safetensors(tensors_file(missing, 4 * kCount), "g");
            })
                .find("gap"),
            std::string::npos);

  // Two tensors on the same bytes.
  auto twice = spans;
  twice.push_back({4 * 777, 4 * 778});
  EXPECT_NE(error_of<FormatError>([&] {
              parse_safetensors(tensors_file(twice, 4 * kCount), "o");
            })
                .find("overlap"),
            std::string::npos);
}

}  // namespace
}  // namespace mmembed::io
