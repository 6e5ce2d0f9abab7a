// Shared by the per-format decoders (decode_*.cc). Not part of the vision API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/check.h"
#include "vision/decode.h"

namespace mmembed::vision::detail {

DecodedImage decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                         const DecodeOptions& options);
DecodedImage decode_png(const std::uint8_t* data, std::size_t size, const std::string& name,
                        const DecodeOptions& options);
DecodedImage decode_gif(const std::uint8_t* data, std::size_t size, const std::string& name,
                        const DecodeOptions& options);
DecodedImage decode_webp(const std::uint8_t* data, std::size_t size, const std::string& name,
                         const DecodeOptions& options);

// Throws when the header's dimensions are empty or over the pixel limit; called before any
// pixel memory is allocated.
void check_dimensions(std::int64_t width, std::int64_t height, const std::string& name,
                      const DecodeOptions& options);

// Pillow's MULDIV255: a * b / 255 rounded, in integers.
inline int muldiv255(int a, int b) {
  int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// Pillow's cmyk2rgb for one pixel (C, M, Y, K are Pillow's in-memory values).
inline void cmyk_to_rgb(const std::uint8_t* cmyk, std::uint8_t* rgb) {
  int nk = 255 - cmyk[3];
  for (int c = 0; c < 3; ++c) {
    int v = nk - muldiv255(cmyk[c], nk);
    rgb[c] = static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
  }
}

}  // namespace mmembed::vision::detail
