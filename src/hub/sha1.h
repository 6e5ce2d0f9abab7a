// SHA-1 (FIPS 180-4), for git object ids only: the Hub names the blob of a regular (non-LFS) file
// by its git blob id, and `mmembed models import` names a snapshot by the git tree id of its
// files. Not for anything that needs collision resistance.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mmembed::hub {

class Sha1 {
 public:
  Sha1();
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes the digest; the object must not be updated afterwards.
  std::array<std::uint8_t, 20> digest();
  // Lowercase hex of digest().
  std::string hex_digest();

 private:
  void block(const std::uint8_t* p);
  std::array<std::uint32_t, 5> h_;
  std::array<std::uint8_t, 64> buf_{};
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

// Lowercase hex SHA-1 of a string.
std::string sha1_hex(std::string_view data);

// Lowercase hex of 20 or 32 digest bytes.
std::string to_hex(const std::uint8_t* bytes, std::size_t n);

}  // namespace mmembed::hub
