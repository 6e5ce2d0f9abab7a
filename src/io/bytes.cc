#include "io/bytes.h"

namespace mmembed::io {

std::string printable(std::string_view text, std::size_t max_len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::size_t shown = 0;
  for (char ch : text) {
    if (shown == max_len) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
    ++shown;
  }
  return out;
}

}  // namespace mmembed::io
