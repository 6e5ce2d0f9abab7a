// Load-time name mapping and validation of a checkpoint against what a model expects.
//
//   io::NameMap names;
//   names.rename_prefix("model.", "")                 // strip a wrapper prefix
//        .rename("logit_scale", "clip.logit_scale")
//        .ignore("text_model.embeddings.position_ids"); // known leftovers: not reported unused
//   std::vector<io::ExpectedTensor> want = {
//       {"text_model.embeddings.token_embedding.weight", {49408, 512}},
//       {"text_projection.bias", {512}, /*required=*/false},
//   };
//   io::BoundWeights w = io::bind_weights(ckpt, want, names);   // throws listing ALL problems
//   for (const auto& n : w.unused()) log_warning("unused tensor ", n);
//   Tensor emb = w.get_f32("text_model.embeddings.token_embedding.weight");
//
// bind_weights checks everything before anything is loaded and reports every problem in one
// exception (one per line):
//   missing tensor 'vision_model.post_layernorm.weight'
//   vision.transformer.resblocks.3.attn.in_proj_weight: got [768,768] expected [2304,768]
//   'a.w' and 'model.a.w' both map to 'a.w'
// FormatError when anything is missing or ambiguous, ShapeError when only shapes are wrong.
// Checkpoint tensors that nothing expects are not an error: they are returned by unused().
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"

namespace mmembed::io {

// The one place where checkpoint names become internal names. Rules are tried in the order
// they were added; the first that matches decides. A name no rule matches keeps its spelling.
class NameMap {
 public:
  NameMap& rename(std::string checkpoint_name, std::string internal_name);
  // Replaces a leading `checkpoint_prefix` with `internal_prefix`.
  NameMap& rename_prefix(std::string checkpoint_prefix, std::string internal_prefix);
  // Drops a checkpoint name (or every name starting with `prefix` when it ends with '.' or
  // `prefix_match` is true): such tensors are neither bound nor reported as unused.
  NameMap& ignore(std::string name, bool prefix_match = false);

  // The internal name, or nullopt when the tensor is ignored.
  std::optional<std::string> to_internal(std::string_view checkpoint_name) const;

 private:
  enum class Kind { Exact, Prefix, Ignore, IgnorePrefix };
  struct Rule {
    Kind kind;
    std::string from;
    std::string to;
  };
  std::vector<Rule> rules_;
};

struct ExpectedTensor {
  std::string name;  // internal name
  Shape shape;       // -1 in a dimension accepts any size
  bool required = true;
};

// The result of bind_weights: the checkpoint plus the internal -> checkpoint name table.
class BoundWeights {
 public:
  // True when the (internal) tensor was found; false for a missing optional one.
  bool has(std::string_view internal_name) const;
  // The checkpoint's name for an internal name (InvalidArgument when not bound).
  const std::string& checkpoint_name(std::string_view internal_name) const;
  Tensor get(std::string_view internal_name) const;
  Tensor get_f32(std::string_view internal_name) const;
  // A weight matrix [out, in] for nn::Linear in matrix_dtype(): get_f32(); rounded to bf16 (a
  // bf16 checkpoint tensor as it is); for I8 the f32 matrix, which nn::Linear quantizes per row
  // (kernels::quantize_rows_s8). `scales` is for matrices stored already quantized.
  struct Matrix {
    Tensor weight;
    std::optional<Tensor> scales;  // with an int8 weight: f32 [out]
  };
  Matrix get_matrix(std::string_view internal_name) const;
  // F32 (the default), BF16 or I8: what get_matrix() gives (LoadOptions::matrix_dtype).
  DType matrix_dtype() const noexcept { return matrix_dtype_; }
  void set_matrix_dtype(DType dtype);

  // Checkpoint tensors nothing expected (not ignored), in checkpoint order: worth a warning.
  const std::vector<std::string>& unused() const noexcept { return unused_; }
  // Optional tensors the checkpoint lacks (internal names).
  const std::vector<std::string>& missing_optional() const noexcept { return missing_optional_; }
  const Checkpoint& checkpoint() const noexcept { return ckpt_; }

 private:
  friend BoundWeights bind_weights(const Checkpoint&, const std::vector<ExpectedTensor>&,
                                   const NameMap&);
  Checkpoint ckpt_;
  std::map<std::string, std::string, std::less<>> names_;  // internal -> checkpoint
  std::vector<std::string> unused_;
  std::vector<std::string> missing_optional_;
  DType matrix_dtype_ = DType::F32;
};

// How a model keeps its weights once loaded.
struct LoadOptions {
  // The linear layers' weight matrices: F32 as in the checkpoint, BF16 (half the memory,
  // products on the CPU's bf16 units) or I8 with per-row scales (a quarter; products in int8
  // on quantized inputs); embeddings, norms and biases stay F32.
  DType matrix_dtype = DType::F32;
};

BoundWeights bind_weights(const Checkpoint& ckpt, const std::vector<ExpectedTensor>& expected,
                          const NameMap& names = {});

// Refuses a layer count from config.json that `ckpt` cannot hold, before a model lists (and
// allocates) the tensors it expects for every layer: `layers` layers of `per_layer` required
// tensors need at least layers * per_layer tensors. Without it, num_hidden_layers = 10^6 built
// a list of 16 million expected names (23.9 GB) only to report them missing. `key` names the
// config entry ("text_config.num_hidden_layers"). Throws FormatError.
void check_layer_count(const Checkpoint& ckpt, const std::string& key, std::int64_t layers,
                       std::size_t per_layer);

// At most this many problems are listed in bind_weights's message; the rest are counted.
inline constexpr std::size_t kMaxListedWeightProblems = 20;

}  // namespace mmembed::io
