// Image match features (Embedder::image_match_features) kept on disk, so that re-ranking a
// candidate seen before skips its image tower. One file per image and model:
//   DIR/<sha256 of (model digest, image backend, image file bytes)>.mmf
//   bytes 0-7 "MMEMBEDF", u32 version 1, u32 rank, rank x i64 dims, then the float32 values
//   (all little-endian).
// A file is written under a temporary name and renamed into place, so readers (other processes
// too) see it whole or not at all; a file that does not read back as the expected shape is a
// miss (and is rewritten). Past max_bytes the least recently used files are removed (a hit
// renews a file's time). The cache is an optimisation: a write that fails (disk full, no
// permission) is reported once on stderr and the features are simply not kept.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mmembed/embedder.h"

namespace mmembed::retrieval {

class FeatureCache {
 public:
  // Creates `dir` when missing; IoError when it exists and is not a folder. `model_key`
  // identifies the model and its image settings; `shape` is ModelInfo::match_features_shape.
  FeatureCache(std::string dir, std::string model_key, std::vector<std::int64_t> shape,
               std::uint64_t max_bytes);

  // The key of an image file's bytes under this model.
  std::string key(std::span<const std::uint8_t> image_bytes) const;
  std::optional<ImageMatchFeatures> load(const std::string& key) const;
  void store(const std::string& key, const ImageMatchFeatures& features);
  // Removes the least recently used files until the cache holds at most max_bytes.
  void trim() const;

  // Bytes of one file.
  std::uint64_t file_bytes() const;

 private:
  std::string path(const std::string& key) const;

  std::string dir_, model_key_;
  std::vector<std::int64_t> shape_;
  std::uint64_t max_bytes_ = 0;
  bool warned_ = false;
};

}  // namespace mmembed::retrieval
