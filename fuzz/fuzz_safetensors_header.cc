// Fuzzes safetensors parsing and tensor extraction from memory. Any mmembed::Error is an
// accepted outcome; crashes, sanitizer reports, other exceptions and timeouts are bugs.
#include <cstddef>
#include <cstdint>

#include "io/safetensors.h"
#include "mmembed/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mmembed;
  io::ByteSpan bytes(data, size);
  try {
    io::SafetensorsHeader h = io::parse_safetensors(bytes, "fuzz");
    for (std::size_t i = 0; i < h.entries.size(); ++i) {
      try {
        Tensor t = io::safetensors_tensor(bytes, h, i, nullptr, "fuzz");
        if (t.numel() > 0) (void)t.to_f32();
      } catch (const Unsupported&) {
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
