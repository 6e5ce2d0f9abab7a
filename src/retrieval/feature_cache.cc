#include "retrieval/feature_cache.h"

#include <sys/stat.h>
#include <sys/time.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "core/file.h"
#include "core/output_file.h"
#include "hub/sha256.h"
#include "mmembed/error.h"

namespace fs = std::filesystem;

namespace mmembed::retrieval {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the cache files are little-endian, written as the host stores them");

constexpr char kMagic[8] = {'M', 'M', 'E', 'M', 'B', 'E', 'D', 'F'};
constexpr std::uint32_t kVersion = 1;
constexpr const char* kSuffix = ".mmf";

std::size_t numel(const std::vector<std::int64_t>& shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape)
    n *= static_cast<std::size_t>(d);
  return n;
}

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

template <typename T>
T get(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

FeatureCache::FeatureCache(std::string dir, std::string model_key, std::vector<std::int64_t> shape,
                           std::uint64_t max_bytes)
    : dir_(std::move(dir)),
      model_key_(std::move(model_key)),
      shape_(std::move(shape)),
      max_bytes_(max_bytes) {
  MMEMBED_CHECK(!shape_.empty(), InvalidArgument, "this model has no image features to cache");
  std::error_code ec;
  const fs::file_status st = fs::status(dir_, ec);
  if (st.type() == fs::file_type::not_found) {
    fs::create_directories(dir_, ec);
    MMEMBED_CHECK(!ec, IoError, dir_, ": cannot create the feature cache folder (", ec.message(),
                  ")");
  } else {
    MMEMBED_CHECK(fs::is_directory(st), IoError, dir_,
                  ": the feature cache must be a folder, and this is not one");
  }
}

std::uint64_t FeatureCache::file_bytes() const {
  return 16 + 8 * shape_.size() + 4 * numel(shape_);
}

std::string FeatureCache::key(std::span<const std::uint8_t> image_bytes) const {
  hub::Sha256 h;
  h.update(model_key_);
  h.update("\n", 1);
  h.update(image_bytes.data(), image_bytes.size());
  return h.hex_digest();
}

std::string FeatureCache::path(const std::string& key) const {
  return (fs::path(dir_) / (key + kSuffix)).string();
}

std::optional<ImageMatchFeatures> FeatureCache::load(const std::string& key) const {
  const std::string p = path(key);
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) != file_bytes()) {
    return std::nullopt;
  }
  std::vector<std::uint8_t> bytes;
  try {
    bytes = read_input_file_bytes(p, file_bytes());
  } catch (const Error&) {
    return std::nullopt;  // removed meanwhile, unreadable: recomputed
  }
  if (bytes.size() != file_bytes() || std::memcmp(bytes.data(), kMagic, 8) != 0 ||
      get<std::uint32_t>(bytes.data() + 8) != kVersion ||
      get<std::uint32_t>(bytes.data() + 12) != shape_.size()) {
    return std::nullopt;
  }
  ImageMatchFeatures f;
  for (std::size_t i = 0; i < shape_.size(); ++i) {
    f.shape.push_back(get<std::int64_t>(bytes.data() + 16 + 8 * i));
  }
  if (f.shape != shape_) return std::nullopt;
  const std::uint8_t* data = bytes.data() + 16 + 8 * shape_.size();
  f.data.resize(numel(shape_));
  std::memcpy(f.data.data(), data, f.data.size() * sizeof(float));
  ::utimes(p.c_str(), nullptr);  // recently used (best effort)
  return f;
}

void FeatureCache::store(const std::string& key, const ImageMatchFeatures& f) {
  MMEMBED_ASSERT(f.shape == shape_ && f.data.size() == numel(shape_));
  std::string header(kMagic, 8);
  put<std::uint32_t>(header, kVersion);
  put<std::uint32_t>(header, static_cast<std::uint32_t>(shape_.size()));
  for (std::int64_t d : shape_)
    put<std::int64_t>(header, d);
  try {
    OutputFile out = OutputFile::open(path(key), /*allow_stdout=*/false);
    out.write(header);
    out.write(f.data.data(), f.data.size() * sizeof(float));
    out.commit();
  } catch (const Error& e) {
    if (!warned_) {
      std::fprintf(stderr, "mmembed: warning: image features not kept in the cache: %s\n",
                   e.what());
      warned_ = true;
    }
  }
}

void FeatureCache::trim() const {
  struct Entry {
    fs::path path;
    std::uint64_t bytes;
    fs::file_time_type time;
  };
  std::vector<Entry> entries;
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != kSuffix || !it->is_regular_file(ec)) continue;
    Entry e{p, it->file_size(ec), it->last_write_time(ec)};
    if (ec) {
      ec.clear();
      continue;
    }
    total += e.bytes;
    entries.push_back(std::move(e));
  }
  if (total <= max_bytes_) return;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.time < b.time; });
  for (const Entry& e : entries) {
    if (total <= max_bytes_) break;
    if (fs::remove(e.path, ec)) total -= e.bytes;
  }
}

}  // namespace mmembed::retrieval
