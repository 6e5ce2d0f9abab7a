// Fuzzes image decoding from memory (every format decode_image recognizes: JPEG, PNG, WebP and
// GIF, whose LZW decoder is ours). Any mmembed::Error is an accepted outcome; crashes, sanitizer
// reports, other exceptions and timeouts are bugs. The pixel limit is lowered so that a header
// claiming a large image is refused instead of making each run slow.
#include <cstddef>
#include <cstdint>

#include "mmembed/error.h"
#include "vision/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mmembed;
  vision::DecodeOptions options;
  options.max_pixels = 1 << 20;
  try {
    vision::DecodedImage image = vision::decode_image(data, size, "fuzz", options);
    if (image.rgb.numel() != image.rgb.dim(0) * image.rgb.dim(1) * 3) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
