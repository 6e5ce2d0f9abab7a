// TensorInfo and TensorSource: what every checkpoint file reader (safetensors, PyTorch zip) offers
// to the Checkpoint layer (io/checkpoint.h), which is what callers normally use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace mmembed::io {

// One tensor as described by a checkpoint, before its data is touched.
struct TensorInfo {
  std::string name;
  // The stored element type in safetensors spelling ("F32", "BF16", "I64", "F8_E4M3", "C64"...),
  // for every format, so `inspect` can list tensors we cannot load.
  std::string dtype_name;
  // The loadable type; nullopt for stored types mmembed does not load (float8, complex, u16...):
  // loading such a tensor throws Unsupported naming the tensor and its dtype.
  std::optional<DType> dtype;
  Shape shape;
  std::int64_t numel = 0;
  std::uint64_t nbytes = 0;  // bytes of the tensor's own elements
  std::string file;          // path of the file holding the data
};

// A readable checkpoint file. Implementations are immutable after opening and safe to share
// between threads.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const std::string& path() const noexcept = 0;
  // "safetensors" or "pytorch-zip".
  virtual std::string_view format() const noexcept = 0;
  // Tensors in the file's order (safetensors: data order; PyTorch: state-dict order).
  virtual const std::vector<TensorInfo>& tensors() const noexcept = 0;
  // Tensor `index` of tensors(), in its stored dtype. Zero-copy (a read-only view of the file
  // mapping, which it keeps alive) when the stored bytes are contiguous, naturally aligned and
  // little-endian; otherwise an owned contiguous copy. Throws Unsupported for unloadable dtypes.
  virtual Tensor load(std::size_t index) const = 0;
  // The caller has copied tensor `index` and will not read it again: a mapped file gives its
  // pages back (MappedFile::release). A no-op where nothing is mapped.
  virtual void release(std::size_t index) const { (void)index; }
};

}  // namespace mmembed::io
