// A restricted, non-executing unpickler for the `data.pkl` record of torch.save zip checkpoints
// (spec: clip-and-formats E.4.4).
//
//   io::TorchStateDict sd = io::unpickle_state_dict(pkl_bytes, "pytorch_model.bin: data.pkl");
//   for (const io::PickledTensor& t : sd.tensors) ... sd.storages[t.storage].key ...
//
// This is not a Python unpickler. It understands the opcodes torch.save emits for a state dict
// (protocol 2, plus the protocol 3-4 additions STACK_GLOBAL, FRAME, MEMOIZE, SHORT_BINUNICODE,
// BINUNICODE8) and builds plain data. Globals are looked up in a fixed table
// (collections.OrderedDict, torch._utils._rebuild_tensor[_v2], _rebuild_parameter[_with_state],
// torch.Size and the torch.*Storage types); every other global is refused with an error naming it,
// e.g. "model.bin: data.pkl: refused global 'os.system' (only torch state-dict globals are
// allowed)". Nothing is ever called or imported. The interpreter is iterative and bounded (memo,
// stack, marks, tensors, total work), rejects trailing bytes after STOP, and checks that every
// tensor's offset/size/stride stays inside its storage.
//
// The result must be a dict of name -> tensor, or a dict whose "state_dict" or "model" entry is
// one (common in training checkpoints). Storage records themselves (`data/<key>`) are checked by
// the zip layer (io/torch_zip.h), which knows the archive.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/bytes.h"

namespace mmembed::io {

struct PickledStorage {
  std::string key;         // record name under data/
  std::string dtype_name;  // safetensors spelling: "F32", "BF16", "C64", ...
  std::optional<DType> dtype;  // nullopt for storage types mmembed cannot load (complex)
  std::size_t elem_size = 0;
  std::int64_t numel = 0;  // elements, as declared in the persistent id
};

struct PickledTensor {
  std::string name;
  std::size_t storage = 0;  // index into TorchStateDict::storages
  std::int64_t offset = 0;  // in elements
  Shape shape;
  std::vector<std::int64_t> strides;  // in elements
  std::int64_t numel = 0;
  bool contiguous() const;  // row-major strides (ignoring size-1 dimensions)
};

struct TorchStateDict {
  std::vector<PickledStorage> storages;  // each key once, in order of first use
  std::vector<PickledTensor> tensors;    // in state-dict order
};

// Bounds on what one pickle may make the interpreter hold or do. The defaults are far above what
// torch writes for real models (about 30 values per tensor) and cap memory at a few hundred MB.
struct UnpickleLimits {
  std::size_t max_values = 1u << 23;  // objects created in total
  std::size_t max_memo = 1u << 22;
  std::size_t max_stack = 1u << 22;
  std::size_t max_marks = 1u << 16;
  std::size_t max_tensors = 1u << 20;
  std::uint64_t max_work = 1u << 27;  // elements copied by TUPLE/SETITEMS/... in total
};

// Interprets `pkl`; `source` prefixes messages ("<file>: data.pkl"). Throws FormatError for
// malformed or refused content, Unsupported for an unsupported pickle protocol.
TorchStateDict unpickle_state_dict(ByteSpan pkl, const std::string& source,
                                   const UnpickleLimits& limits = {});

}  // namespace mmembed::io
