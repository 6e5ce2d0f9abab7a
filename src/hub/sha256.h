// SHA-256 (FIPS 180-4), used for LFS blob verification (the Hub's ETag of an LFS file is the
// SHA-256 of its content) and for naming cached downloads by URL.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mmembed::hub {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes the digest; the object must not be updated afterwards.
  std::array<std::uint8_t, 32> digest();
  // Lowercase hex of digest().
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

// Lowercase hex SHA-256 of a string.
std::string sha256_hex(std::string_view data);

// Lowercase hex SHA-256 of a file's content; throws IoError if it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace mmembed::hub
