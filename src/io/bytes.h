// Byte spans and bounds-checked little-endian reads shared by the io parsers.
//
// Every parser in io works on a ByteSpan (a file mapping or a fuzzer's buffer) and must never
// read outside it: read_le() is only called after the caller checked the range, and it copies
// through memcpy so that unaligned fields never become misaligned loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace mmembed::io {

using ByteSpan = std::span<const std::uint8_t>;

// True when [offset, offset + length) lies inside a buffer of `size` bytes (no overflow).
inline bool range_ok(std::uint64_t offset, std::uint64_t length, std::uint64_t size) noexcept {
  return offset <= size && length <= size - offset;
}

// Little-endian unsigned integer of sizeof(T) bytes at `p` (caller checked the bounds).
template <typename T>
T read_le(const std::uint8_t* p) noexcept {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
  return v;
}

inline std::string_view as_chars(ByteSpan bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Printable rendering of untrusted text for error messages: escapes control and non-ASCII bytes
// and cuts it at `max_len` characters.
std::string printable(std::string_view text, std::size_t max_len = 80);

}  // namespace mmembed::io
