#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "hub/sha256.h"
#include "mmembed/embedder.h"

namespace fs = std::filesystem;

namespace mmembed {

namespace {

constexpr std::uintmax_t kMiB = 1 << 20;
constexpr std::uintmax_t kMaxWholeFile = 64 * kMiB;  // a .json or .txt larger than this is sampled
constexpr std::size_t kMaxFiles = 10000;

// Adds `size` bytes at `offset` of the open file to the digest.
void add_range(hub::Sha256& h, std::ifstream& in, const std::string& path, std::uintmax_t offset,
               std::uintmax_t size) {
  std::vector<char> buf(64 * 1024);
  in.seekg(static_cast<std::streamoff>(offset));
  while (size > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uintmax_t>(size, buf.size()));
    in.read(buf.data(), static_cast<std::streamsize>(n));
    MMEMBED_CHECK(in.gcount() == static_cast<std::streamsize>(n), IoError, path,
                  ": cannot read (the file changed while it was read?)");
    h.update(buf.data(), n);
    size -= n;
  }
}

}  // namespace

std::string model_digest(const std::string& model_dir) {
  std::error_code ec;
  const fs::path root(model_dir);
  MMEMBED_CHECK(fs::is_directory(root, ec), IoError, "model '", model_dir, "' is not a directory");
  std::vector<std::string> names;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    const std::string ext = it->path().extension().string();
    static const char* kCounted[] = {".json", ".txt", ".safetensors", ".bin", ".pt", ".model"};
    if (std::find(std::begin(kCounted), std::end(kCounted), ext) == std::end(kCounted)) continue;
    if (!it->is_regular_file(ec)) continue;  // follows links (the Hub cache's snapshots)
    names.push_back(it->path().lexically_relative(root).generic_string());
    MMEMBED_CHECK(names.size() <= kMaxFiles, IoError, "model '", model_dir, "' holds more than ",
                  kMaxFiles, " model files");
  }
  MMEMBED_CHECK(!ec, IoError, "model '", model_dir, "': cannot list its files (", ec.message(),
                ")");
  std::sort(names.begin(), names.end());
  hub::Sha256 h;
  for (const std::string& name : names) {
    const std::string path = (root / name).string();
    std::ifstream in(path, std::ios::binary);
    MMEMBED_CHECK(in.good(), IoError, path, ": cannot open");
    const std::uintmax_t size = fs::file_size(path, ec);
    MMEMBED_CHECK(!ec, IoError, path, ": cannot read its size (", ec.message(), ")");
    const std::string ext = fs::path(name).extension().string();
    const bool whole = (ext == ".json" || ext == ".txt") && size <= kMaxWholeFile;
    h.update(str_cat(name, '\0', size, '\0', whole ? "whole" : "ends", '\0'));
    if (whole || size <= 2 * kMiB) {
      add_range(h, in, path, 0, size);
    } else {
      add_range(h, in, path, 0, kMiB);
      add_range(h, in, path, size - kMiB, kMiB);
    }
  }
  return "sha256:" + h.hex_digest();
}

}  // namespace mmembed
