// Fuzzes the zip central-directory reader and the torch archive layer on top of it (container
// detection, record lookup, storage checks, strided gathering, byteswapping).
#include <cstddef>
#include <cstdint>

#include "io/torch_zip.h"
#include "io/zip_reader.h"
#include "mmembed/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mmembed;
  io::ByteSpan bytes(data, size);
  try {
    io::ZipArchive zip = io::ZipArchive::parse(bytes, "fuzz");
    std::uint64_t sum = 0;
    for (const io::ZipEntry& e : zip.entries()) {
      try {
        io::ByteSpan d = zip.data(e);
        if (!d.empty()) sum += d.front() + d.back();  // touch both ends of the entry
      } catch (const FormatError&) {
      }
    }
    (void)sum;
  } catch (const Error&) {
  }
  try {
    io::TorchArchive a = io::parse_torch_archive(bytes, "fuzz");
    for (std::size_t i = 0; i < a.state.tensors.size(); ++i) {
      try {
        Tensor t = io::torch_archive_tensor(a, i, nullptr, "fuzz");
        if (t.numel() > 0) (void)t.to_f32();
      } catch (const Unsupported&) {
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
