// The re-ranking feature cache (src/retrieval/feature_cache.h): round trip, keys, misses on
// damaged files, and the size bound removing the least recently used files.
#include "retrieval/feature_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "mmembed/error.h"

namespace mmembed::retrieval {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("mmembed_feature_cache_" + name);
  fs::remove_all(d);
  return d;
}

ImageMatchFeatures features(float base) {
  ImageMatchFeatures f;
  f.shape = {2, 3, 4};
  for (int i = 0; i < 24; ++i) f.data.push_back(base + static_cast<float>(i) * 0.5f);
  return f;
}

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

TEST(FeatureCache, RoundTripAndKeys) {
  const fs::path dir = fresh_dir("round_trip");
  FeatureCache cache(dir.string(), "sha256:model pil", {2, 3, 4}, 1 << 20);
  EXPECT_TRUE(fs::is_directory(dir));
  const std::string k = cache.key(bytes("image one"));
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, cache.key(bytes("image one")));
  EXPECT_NE(k, cache.key(bytes("image two")));
  // Another model (or image backend) keys the same bytes apart.
  FeatureCache other(dir.string(), "sha256:other pil", {2, 3, 4}, 1 << 20);
  EXPECT_NE(k, other.key(bytes("image one")));

  EXPECT_FALSE(cache.load(k).has_value());
  cache.store(k, features(1.0f));
  const auto back = cache.load(k);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->shape, features(1.0f).shape);
  EXPECT_EQ(back->data, features(1.0f).data);
  EXPECT_EQ(fs::file_size(dir / (k + ".mmf")), cache.file_bytes());

  // Another shape reads the file as a miss.
  FeatureCache reshaped(dir.string(), "sha256:model pil", {4, 3, 2}, 1 << 20);
  EXPECT_FALSE(reshaped.load(k).has_value());
}

TEST(FeatureCache, DamagedFilesAreMisses) {
  const fs::path dir = fresh_dir("damaged");
  FeatureCache cache(dir.string(), "m", {2, 3, 4}, 1 << 20);
  const std::string k = cache.key(bytes("x"));
  cache.store(k, features(0.0f));
  const fs::path p = dir / (k + ".mmf");
  {  // same size, wrong magic
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.write("NOTMAGIC", 8);
  }
  EXPECT_FALSE(cache.load(k).has_value());
  cache.store(k, features(0.0f));  // rewritten
  EXPECT_TRUE(cache.load(k).has_value());
  fs::resize_file(p, cache.file_bytes() - 4);
  EXPECT_FALSE(cache.load(k).has_value());
  fs::remove(p);
  fs::create_directory(p);  // a folder in its place
  EXPECT_FALSE(cache.load(k).has_value());
  cache.store(k, features(0.0f));  // cannot be written: warned, not thrown
  EXPECT_FALSE(cache.load(k).has_value());
}

TEST(FeatureCache, SizeBoundRemovesTheLeastRecentlyUsed) {
  const fs::path dir = fresh_dir("bound");
  FeatureCache probe(dir.string(), "m", {2, 3, 4}, 0);
  FeatureCache cache(dir.string(), "m", {2, 3, 4}, 3 * probe.file_bytes());
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) {
    keys.push_back(cache.key(bytes("image " + std::to_string(i))));
    cache.store(keys.back(), features(static_cast<float>(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct file times
  }
  ASSERT_TRUE(cache.load(keys[0]).has_value());  // used again: now the most recent
  cache.trim();
  std::size_t left = 0;
  for (const auto& e : fs::directory_iterator(dir)) left += e.is_regular_file();
  EXPECT_EQ(left, 3u);
  EXPECT_TRUE(cache.load(keys[0]).has_value());
  EXPECT_TRUE(cache.load(keys[4]).has_value());
  EXPECT_FALSE(cache.load(keys[1]).has_value());
  EXPECT_FALSE(cache.load(keys[2]).has_value());
}

TEST(FeatureCache, APathThatIsNotAFolderIsRefused) {
  const fs::path dir = fresh_dir("file");
  fs::create_directories(dir);
  std::ofstream(dir / "f") << "x";
  try {
    FeatureCache cache((dir / "f").string(), "m", {1}, 1 << 20);
    ADD_FAILURE() << "accepted a file";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("must be a folder"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mmembed::retrieval
