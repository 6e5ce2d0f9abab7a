// PyTorch checkpoints written by torch.save (zip container, `.bin` / `.pt` / `.pth`).
//
//   auto file = io::TorchZipFile::open("pytorch_model.bin");
//   for (const io::TensorInfo& t : file->tensors()) ...;
//   Tensor w = file->load(0);  // zero-copy for contiguous little-endian tensors
//
// Opening checks the container kind first: the legacy pre-1.6 formats (magic-number pickle, tar,
// "PYTORCH1") and TorchScript archives are refused with Unsupported and a hint to re-save with
// torch.save or convert to safetensors. Then the zip directory is read (io/zip_reader.h), the
// archive folder is taken from the first entry name, `data.pkl` is interpreted by the restricted
// unpickler (io/torch_pickle.h; refused globals are named in the error) and every storage is
// matched to its `data/<key>` record, whose size must be numel x element size.
//
// Loading: tensors sharing a storage share the mapped bytes (a storage is never read twice).
// A contiguous, aligned, little-endian tensor is a read-only view of the mapping; a strided view
// (e.g. a saved transpose) is gathered into a contiguous copy; `byteorder` "big" archives are
// byteswapped on load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/bytes.h"
#include "io/mapped_file.h"
#include "io/tensor_source.h"
#include "io/torch_pickle.h"
#include "io/zip_reader.h"

namespace mmembed::io {

// Throws Unsupported for legacy torch formats and FormatError for anything else that is not a
// zip archive; returns when `bytes` starts with a zip local-file header.
void check_torch_container(ByteSpan bytes, const std::string& source);

// A parsed torch.save archive held in memory (no ownership of the bytes).
struct TorchArchive {
  ZipArchive zip;
  std::string prefix;       // archive folder name, without the slash
  bool big_endian = false;  // from the `byteorder` record (absent: little)
  TorchStateDict state;
  std::vector<ByteSpan> storage_bytes;  // per state.storages entry: its data/<key> record
};

// In-memory entry point (used by TorchZipFile and the fuzzers): validates everything above.
TorchArchive parse_torch_archive(ByteSpan bytes, const std::string& source);

// Tensor `index` of state.tensors. With a non-null `owner` (keeping the bytes alive) eligible
// tensors are zero-copy views; otherwise copies. Throws Unsupported for complex dtypes.
Tensor torch_archive_tensor(const TorchArchive& archive, std::size_t index,
                            const std::shared_ptr<const void>& owner, const std::string& source);

class TorchZipFile final : public TensorSource {
 public:
  static std::shared_ptr<const TorchZipFile> open(const std::string& path);

  const std::string& path() const noexcept override { return file_->path(); }
  std::string_view format() const noexcept override { return "pytorch-zip"; }
  const std::vector<TensorInfo>& tensors() const noexcept override { return infos_; }
  Tensor load(std::size_t index) const override;
  void release(std::size_t index) const override;

 private:
  TorchZipFile() = default;
  std::shared_ptr<const MappedFile> file_;
  std::unique_ptr<TorchArchive> archive_;
  std::vector<TensorInfo> infos_;
};

}  // namespace mmembed::io
