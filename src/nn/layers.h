// Small immutable layers built from (bound weights, name prefix), shared by the model families.
//
//   std::vector<io::ExpectedTensor> want;
//   nn::BertLayer::expect(want, "encoder.layer.0", {768, 12, 3072});   // names and shapes
//   io::BoundWeights w = io::bind_weights(ckpt, want, names);           // all problems at once
//   nn::BertLayer layer(w, "encoder.layer.0", {768, 12, 3072}, nn::Activation::Gelu, 1e-5f);
//   nn::Scratch scratch;                                                // one per forward call
//   layer.forward(x, {attention_mask}, y, scratch);                     // y = layer(x)
//
// Contracts shared by every layer here:
//  - a layer is built once and never changes; forward() is const, writes into a caller-provided
//    `out` (f32, exactly the result's shape) and may run on several threads at once as long as
//    each call has its own outputs and its own Scratch;
//  - `out` must not share storage with the inputs (ShapeError from the ops otherwise);
//  - `expect(list, prefix, dims...)` appends the tensors a layer reads (names relative to the
//    internal naming after io::NameMap) with their shapes, so bind_weights can report every
//    missing / misshaped tensor of a model before anything is built;
//  - hyper-parameters that are not visible in the weights (activation, eps, number of heads) are
//    constructor arguments: nothing is hard-coded for one family.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/weight_map.h"
#include "ops/ops.h"

namespace mmembed::nn {

using WeightList = std::vector<io::ExpectedTensor>;

// "a.b" + "c" -> "a.b.c"; an empty prefix gives "c".
std::string join(std::string_view prefix, std::string_view name);

// ---- per-call scratch memory ----

// Reusable buffers for one forward call (not shared between threads). get(slot, shape) returns an
// f32 tensor of `shape` backed by the slot's storage, growing it when needed; its contents are
// undefined and are overwritten when the same slot is requested again (a tensor handed out keeps
// its storage alive, so a grown slot never leaves it dangling).
class Scratch {
 public:
  Tensor get(std::size_t slot, const Shape& shape);

 private:
  struct Buffer {
    std::shared_ptr<void> storage;
    std::size_t bytes = 0;
  };
  std::vector<Buffer> buffers_;
};

// ---- activations ----

enum class Activation { Gelu, QuickGelu, Tanh };

// Hugging Face ACT2FN names: "gelu" (erf form), "quick_gelu", "tanh". Throws Unsupported naming
// `what` (e.g. "config.json: text_config.hidden_act") for any other name.
Activation parse_activation(std::string_view name, std::string_view what);
// out = act(x), element-wise; out may be x.
void activate(Activation act, const Tensor& x, Tensor& out);

// ---- element-wise helpers on [..., C] tensors ----

// x[r, :] += row for every row r (row has C elements).
void add_row_inplace(Tensor& x, const float* row);
// x += y (same shape).
void add_inplace(Tensor& x, const Tensor& y);
// out[b, :] = x[b, index, :] for x [B, T, C] -> out [B, C].
void gather_token(const Tensor& x, std::int64_t index, Tensor& out);

// ---- batch parts: whole items per thread ----

// Inputs of at least this many rows (tokens) per thread run as one part per thread.
inline constexpr std::int64_t kMinRowsPerPart = 64;

// How many parts a batch of `batch` items of `rows_per_item` rows each runs as: one per kernel
// thread when every part gets at least kMinRowsPerPart rows (on 2 threads: 8 texts of 16 tokens,
// 2 parts of 64 rows; 8 of 77, 2 parts of 308), else 1. Each part then runs its layers on one
// thread, one product call each and no barrier between the layers' steps, instead of every
// step shared out over the threads (measured: docs/performance.md, "Batch parts"). Smaller
// inputs stay whole: at 16 rows a part, each thread reading all of W cost more than the
// barriers. 1 inside a task, on one thread, or with MMEMBED_BATCH_PARTS=0 in the environment
// (for side-by-side measurements).
std::int64_t batch_parts(std::int64_t batch, std::int64_t rows_per_item);

// Runs fn(begin, end) over `parts` contiguous ranges of items [0, batch), one kernel task each
// (parts <= 1: one call on this thread). Items are split as evenly as whole items allow.
void for_batch_parts(std::int64_t batch, std::int64_t parts,
                     const std::function<void(std::int64_t, std::int64_t)>& fn);

// `count` layers over the rows of X [batch, ...] in `parts` parts (for_batch_parts), each with its
// own scratch: step(l, b0, b1, x, y, scratch) runs layer l on items [b0, b1): it reads their
// rows x of the activations and writes their rows y of the other buffer. The two buffers
// alternate; on return X holds the last layer's output (X and Y swapped when `count` is odd).
// Y: same shape as X. `whole`, when given, is the scratch a batch run as one part uses (the
// caller's, so that its buffers serve the layers too); parts always get their own.
using LayerStep =
    std::function<void(std::size_t, std::int64_t, std::int64_t, const Tensor&, Tensor&, Scratch&)>;
void run_layers_in_parts(Tensor& X, Tensor& Y, std::int64_t parts, std::size_t count,
                         const LayerStep& step, Scratch* whole = nullptr);

// ---- Linear: y = x W^T + b (PyTorch layout W [out, in]) ----

class Linear {
 public:
  static void expect(WeightList& list, const std::string& prefix, std::int64_t in_features,
                     std::int64_t out_features, bool bias = true);
  Linear() = default;
  // Reads `prefix.weight` and, when bound, `prefix.bias`.
  Linear(const io::BoundWeights& w, const std::string& prefix);
  // From tensors directly (e.g. a reshaped conv weight); an int8 weight comes with its per-row
  // scales.
  Linear(Tensor weight, std::optional<Tensor> bias, std::optional<Tensor> weight_scales = {});

  std::int64_t in_features() const { return weight_.dim(1); }
  std::int64_t out_features() const { return weight_.dim(0); }
  const Tensor& weight() const { return weight_; }  // f32, bf16 or i8 (io::LoadOptions)
  const std::optional<Tensor>& weight_scales() const { return scales_; }
  const std::optional<Tensor>& bias() const { return bias_; }

  void forward(const Tensor& x, Tensor& out) const { apply(x, out, true); }
  Tensor forward(const Tensor& x) const;
  // out = epilogue(x * W^T (+ bias when with_bias)), whatever the weight's type.
  void apply(const Tensor& x, Tensor& out, bool with_bias,
             ops::LinearEpilogue epilogue = ops::LinearEpilogue::None) const;
  // Replaces the weight by its int8 quantization, one scale per row (kernels::quantize_rows_s8);
  // FormatError for a non-finite weight.
  void quantize_weight();

 private:
  Tensor weight_;
  std::optional<Tensor> bias_;
  std::optional<Tensor> scales_;
};

// ---- LayerNorm over the last dimension ----

class LayerNorm {
 public:
  static void expect(WeightList& list, const std::string& prefix, std::int64_t dim);
  LayerNorm() = default;
  LayerNorm(const io::BoundWeights& w, const std::string& prefix, float eps);

  std::int64_t dim() const { return weight_.dim(0); }
  float eps() const { return eps_; }
  // out may be x.
  void forward(const Tensor& x, Tensor& out) const {
    ops::layer_norm(x, weight_, bias_, eps_, out);
  }
  // out = LN((x + add_bias) + residual) in one pass (ops::add_layer_norm); out may be x.
  void forward_sum(const Tensor& x, const std::optional<Tensor>& add_bias, const Tensor& residual,
                   Tensor& out) const {
    ops::add_layer_norm(x, add_bias, residual, weight_, bias_, eps_, out);
  }

 private:
  Tensor weight_, bias_;
  float eps_ = 1e-5f;
};

// ---- Embedding table [num, dim] ----

class Embedding {
 public:
  static void expect(WeightList& list, const std::string& prefix, std::int64_t num,
                     std::int64_t dim);
  Embedding() = default;
  // Reads `prefix.weight` (use Embedding(tensor) for a bare parameter such as class_embedding).
  Embedding(const io::BoundWeights& w, const std::string& prefix);
  explicit Embedding(Tensor table);

  std::int64_t num() const { return table_.dim(0); }
  std::int64_t dim() const { return table_.dim(1); }
  // Row i; InvalidArgument naming `what` when i is out of range.
  const float* row(std::int64_t i, std::string_view what = "embedding index") const;
  const Tensor& table() const { return table_; }

 private:
  Tensor table_;
};

// ---- multi-head attention ----

struct AttentionDims {
  std::int64_t hidden = 0;     // model width (queries and keys/values are this wide)
  std::int64_t num_heads = 0;  // head_dim = hidden / num_heads; scores scaled by 1/sqrt(head_dim)
};

// Checkpoint names of the four projections of an attention with separate q/k/v.
struct AttentionNames {
  std::string query, key, value, output;
  static AttentionNames bert() {  // BERT/RoBERTa: "<p>.self.query" ... "<p>.output.dense"
    return {"self.query", "self.key", "self.value", "output.dense"};
  }
  static AttentionNames clip() {  // Hugging Face CLIP: q_proj/k_proj/v_proj/out_proj
    return {"q_proj", "k_proj", "v_proj", "out_proj"};
  }
};

// softmax(Q K^T / sqrt(d) + mask) V with separate q/k/v projections, followed by the output
// projection: out = W_o attn(W_q x, W_k c, W_v c) + b_o, where c is the context (c = x for
// self-attention). `attention.key_padding_mask` [B, Tc] (nonzero keeps the key) masks the
// context's keys; `attention.causal` for decoders.
class MultiHeadAttention {
 public:
  static void expect(WeightList& list, const std::string& prefix, const AttentionDims& dims,
                     const AttentionNames& names);
  MultiHeadAttention() = default;
  MultiHeadAttention(const io::BoundWeights& w, const std::string& prefix,
                     const AttentionDims& dims, const AttentionNames& names);

  // Scratch slots used: 0..3. With output_bias false, out lacks the output projection's bias
  // (output().bias()), for a caller that adds it in a later pass.
  void forward(const Tensor& x, const Tensor& context, const ops::AttentionOptions& attention,
               Tensor& out, Scratch& scratch, bool output_bias = true) const;
  const Linear& output() const { return output_; }

 private:
  Linear query_, key_, value_, output_;
  std::int64_t num_heads_ = 0;
};

// torch.nn.MultiheadAttention (CLIP ViT as in OpenAI CLIP / BridgeTower): packed
// `in_proj_weight` [3E, E] and `in_proj_bias` [3E] (rows q | k | v), `out_proj`. Self-attention.
class PackedSelfAttention {
 public:
  static void expect(WeightList& list, const std::string& prefix, const AttentionDims& dims);
  PackedSelfAttention() = default;
  PackedSelfAttention(const io::BoundWeights& w, const std::string& prefix,
                      const AttentionDims& dims);

  // Scratch slots used: 0..1.
  void forward(const Tensor& x, const ops::AttentionOptions& attention, Tensor& out,
               Scratch& scratch) const;
  // Row 0 of forward()'s output only (a class token): out [B, 1, D], the query from x[:, 0],
  // keys and values from every token; equal to forward()'s row 0 up to float rounding (the
  // projections run as three products instead of one). Not for causal attention.
  // Scratch slots used: 0..3, 9.
  void forward_first_token(const Tensor& x, const ops::AttentionOptions& attention, Tensor& out,
                           Scratch& scratch) const;

 private:
  Linear in_proj_, out_proj_;
  Linear q_proj_, k_proj_, v_proj_;  // row blocks of in_proj_ (views of its weights, no copies)
  std::int64_t num_heads_ = 0;
};

// ---- feed-forward: fc2(act(fc1(x))) ----

class Mlp {
 public:
  static void expect(WeightList& list, const std::string& fc1, const std::string& fc2,
                     std::int64_t dim, std::int64_t hidden);
  Mlp() = default;
  // fc1 and fc2 are full prefixes (e.g. "layer.0.intermediate.dense", "layer.0.output.dense").
  Mlp(const io::BoundWeights& w, const std::string& fc1, const std::string& fc2, Activation act);

  // Scratch slot used: 4. With fc2_bias false, out lacks fc2's bias (fc2().bias()), for a
  // caller that adds it in a later pass.
  void forward(const Tensor& x, Tensor& out, Scratch& scratch, bool fc2_bias = true) const;
  const Linear& fc2() const { return fc2_; }

 private:
  Linear fc1_, fc2_;
  Activation act_ = Activation::Gelu;
};

// ---- BERT/RoBERTa pieces (post-LN) ----

struct BertDims {
  std::int64_t hidden = 0;
  std::int64_t num_heads = 0;
  std::int64_t intermediate = 0;
};

// BertAttention: out = LayerNorm(x + output.dense(attn(x, context))), names
// "<p>.self.{query,key,value}", "<p>.output.dense", "<p>.output.LayerNorm".
class BertAttention {
 public:
  static void expect(WeightList& list, const std::string& prefix, const BertDims& dims);
  BertAttention() = default;
  BertAttention(const io::BoundWeights& w, const std::string& prefix, const BertDims& dims,
                float eps);

  // Scratch slots used: 0..5. out may not be x or context.
  void forward(const Tensor& x, const Tensor& context, const std::optional<Tensor>& key_mask,
               Tensor& out, Scratch& scratch) const;

 private:
  MultiHeadAttention attention_;
  LayerNorm norm_;
};

// BERT/RoBERTa encoder layer: a = BertAttention(x, x); y = LayerNorm(a + output.dense(act(
// intermediate.dense(a)))). Names under the layer prefix: attention.*, intermediate.dense,
// output.dense, output.LayerNorm.
class BertLayer {
 public:
  static void expect(WeightList& list, const std::string& prefix, const BertDims& dims);
  BertLayer() = default;
  BertLayer(const io::BoundWeights& w, const std::string& prefix, const BertDims& dims,
            Activation act, float eps);

  // key_mask [B, T] masks x's own keys. Scratch slots used: 0..7.
  void forward(const Tensor& x, const std::optional<Tensor>& key_mask, Tensor& out,
               Scratch& scratch) const;
  // Row 0 of forward()'s output only ([CLS]): out [B, 1, D]; the query is x[:, 0], keys and
  // values come from every token, everything after the attention runs on that row alone. Same
  // values as forward()'s row 0. Scratch slots used: 0..7, 10.
  void forward_first_token(const Tensor& x, const std::optional<Tensor>& key_mask, Tensor& out,
                           Scratch& scratch) const;

 private:
  BertAttention attention_;
  Mlp mlp_;
  LayerNorm output_norm_;
};

// BERT layer with cross-attention (BridgeTowerBertCrossLayer; a BERT decoder layer without the
// causal mask): a1 = BertAttention_self(x, x) masked by x_mask; a2 = BertAttention_cross(a1, c)
// masked by context_mask; y = LayerNorm(a2 + output.dense(act(intermediate.dense(a2)))).
// Names: attention.*, crossattention.*, intermediate.dense, output.dense, output.LayerNorm.
class BertCrossLayer {
 public:
  static void expect(WeightList& list, const std::string& prefix, const BertDims& dims);
  BertCrossLayer() = default;
  BertCrossLayer(const io::BoundWeights& w, const std::string& prefix, const BertDims& dims,
                 Activation act, float eps);

  // x [B, T, H], context [B, Tc, H]. Scratch slots used: 0..9.
  void forward(const Tensor& x, const Tensor& context, const std::optional<Tensor>& x_mask,
               const std::optional<Tensor>& context_mask, Tensor& out, Scratch& scratch) const;
  // Row 0 of forward()'s output only (the token a pooler reads): out [B, 1, H]; the
  // self-attention's query is x[:, 0] (keys and values from every token of x), the rest runs on
  // that row. Same values as forward()'s row 0. Scratch slots used: 0..10.
  void forward_first_token(const Tensor& x, const Tensor& context,
                           const std::optional<Tensor>& x_mask,
                           const std::optional<Tensor>& context_mask, Tensor& out,
                           Scratch& scratch) const;

 private:
  BertAttention self_attention_, cross_attention_;
  Mlp mlp_;
  LayerNorm output_norm_;
};

// ---- pre-LN transformer block (ViT / CLIP) ----

// Names of a pre-LN block: OpenAI CLIP / BridgeTower ("ln_1", packed "attn", "ln_2",
// "mlp.c_fc", "mlp.c_proj") or Hugging Face CLIP ("layer_norm1", "self_attn.{q,k,v,out}_proj",
// "layer_norm2", "mlp.fc1", "mlp.fc2").
struct PreLnBlockNames {
  std::string ln_1, attention, ln_2, fc1, fc2;
  bool packed_qkv = false;
  static PreLnBlockNames openai_clip() {
    return {"ln_1", "attn", "ln_2", "mlp.c_fc", "mlp.c_proj", true};
  }
  static PreLnBlockNames hf_clip() {
    return {"layer_norm1", "self_attn", "layer_norm2", "mlp.fc1", "mlp.fc2", false};
  }
};

struct PreLnBlockDims {
  std::int64_t hidden = 0;
  std::int64_t num_heads = 0;
  std::int64_t mlp_hidden = 0;
};

// x1 = x + attn(ln_1(x)); y = x1 + mlp(ln_2(x1)): the residual stream is not normalised.
class PreLnBlock {
 public:
  static void expect(WeightList& list, const std::string& prefix, const PreLnBlockDims& dims,
                     const PreLnBlockNames& names);
  PreLnBlock() = default;
  PreLnBlock(const io::BoundWeights& w, const std::string& prefix, const PreLnBlockDims& dims,
             const PreLnBlockNames& names, Activation act, float eps);

  // attention: nothing for ViTs; a [B, T] padding mask and `causal` for a CLIP text encoder.
  // Scratch slots used: 0..6.
  void forward(const Tensor& x, const ops::AttentionOptions& attention, Tensor& out,
               Scratch& scratch) const;
  // Row 0 of forward()'s output only (the class token a ViT pools): out [B, 1, D]; ln_1 and the
  // keys and values cover every token, the query, the attention output, ln_2, the MLP and the
  // residuals that row alone. Equal to forward()'s row 0 up to float rounding. Not for causal
  // attention. Scratch slots used: 0..6, 9, 10.
  void forward_first_token(const Tensor& x, const ops::AttentionOptions& attention, Tensor& out,
                           Scratch& scratch) const;

 private:
  LayerNorm ln_1_, ln_2_;
  std::optional<PackedSelfAttention> packed_;
  std::optional<MultiHeadAttention> separate_;
  Mlp mlp_;
};

}  // namespace mmembed::nn
