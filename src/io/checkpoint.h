// Checkpoint: one view over every weight format mmembed reads.
//
//   io::Checkpoint ckpt = io::open_checkpoint("path/to/model_dir");
//   std::cout << ckpt.format() << ": " << ckpt.parameter_count() << " parameters\n";
//   for (const io::TensorInfo& t : ckpt.tensors()) std::cout << t.name << " " << t.dtype_name
//                                                            << shape_str(t.shape) << "\n";
//   Tensor w = ckpt.get_f32("text_model.embeddings.token_embedding.weight");
//
// open_checkpoint(path) accepts
//  - a file: `*.safetensors`, `*.bin` / `*.pt` / `*.pth` (torch.save zip), or a shard index
//    `*.index.json` (model.safetensors.index.json / pytorch_model.bin.index.json); other names
//    are recognised by their first bytes;
//  - a folder: the first of model.safetensors, model.safetensors.index.json, pytorch_model.bin,
//    pytorch_model.bin.index.json that exists (transformers' preference order); a folder with
//    none of them is an IoError listing what was looked for.
// Everything is validated at open time (headers, pickles, shard maps); tensor data is only
// touched by get(). A Checkpoint is immutable and safe to share between threads; tensors it
// returns keep their file mapping alive on their own, so they may outlive the Checkpoint.
// Tensors that are zero-copy views of a mapping are read-only: clone() before writing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "io/tensor_source.h"

namespace mmembed::io {

class Checkpoint {
 public:
  // What was opened (the file or index, resolved inside a folder).
  const std::string& path() const noexcept { return path_; }
  // "safetensors", "safetensors-sharded", "pytorch-zip" or "pytorch-zip-sharded".
  const std::string& format() const noexcept { return format_; }
  // The data files, in order (one for an unsharded checkpoint).
  std::vector<std::string> files() const;
  // Every tensor, ordered by file then by position in the file.
  const std::vector<TensorInfo>& tensors() const noexcept { return infos_; }
  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  // The tensor in its stored dtype: zero-copy when the file allows it (see TensorSource::load).
  // Throws InvalidArgument naming the checkpoint for an unknown name, Unsupported for a dtype
  // mmembed cannot load.
  Tensor get(std::string_view name) const;
  // TensorSource::release for the tensor of that name.
  void release(std::string_view name) const;
  // The tensor converted to f32 (F16/BF16/F64 and integer types converted; F32 as stored).
  Tensor get_f32(std::string_view name) const;
  // Sum of all tensors' element counts.
  std::int64_t parameter_count() const noexcept { return parameter_count_; }
  // safetensors `__metadata__` of the (first) file; empty for other formats.
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  // Builds a checkpoint over already opened files. Throws FormatError naming both files when a
  // tensor name occurs in two of them. Used by open_checkpoint; handy in tests.
  static Checkpoint from_sources(std::string path, std::string format,
                                 std::vector<std::shared_ptr<const TensorSource>> sources);

 private:
  struct Slot {
    std::size_t source = 0;
    std::size_t index = 0;
  };
  std::string path_;
  std::string format_;
  std::vector<std::shared_ptr<const TensorSource>> sources_;
  std::vector<TensorInfo> infos_;
  std::vector<Slot> slots_;  // parallel to infos_
  std::unordered_map<std::string, std::size_t> by_name_;
  std::int64_t parameter_count_ = 0;
  std::map<std::string, std::string> metadata_;
};

// Opens a checkpoint file, shard index or model folder (see above). Throws IoError for missing or
// unreadable paths (naming them), FormatError for malformed content, Unsupported for legacy
// PyTorch formats and TorchScript archives.
Checkpoint open_checkpoint(const std::string& path);

// A parsed shard index: tensor name -> shard file, shard names relative to the index's folder.
struct ShardIndex {
  std::vector<std::pair<std::string, std::string>> weight_map;  // in index order
  std::vector<std::string> shards;                              // distinct, sorted
};

// Validates an index JSON text (spec E.2): an object with a "weight_map" object of string ->
// string, optional "metadata" object; shard names relative, without '..' components or
// backslashes. `source` names the index in messages. Throws FormatError.
ShardIndex parse_shard_index(std::string_view json_text, const std::string& source);

}  // namespace mmembed::io
