// Fuzzes the restricted unpickler on raw data.pkl bytes.
#include <cstddef>
#include <cstdint>

#include "io/torch_pickle.h"
#include "mmembed/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mmembed;
  try {
    io::TorchStateDict sd = io::unpickle_state_dict(io::ByteSpan(data, size), "fuzz");
    for (const io::PickledTensor& t : sd.tensors) {
      (void)t.contiguous();
    }
  } catch (const Error&) {
  }
  return 0;
}
