// Tensor operations: shape and dtype checked, f32, calling the kernels (src/kernels).
//
//   Tensor h = ops::linear(x, w_fc1, b_fc1);            // x [B,T,768], w [3072,768] -> [B,T,3072]
//   ops::gelu(h, h);                                     // in place
//   Tensor a = ops::multi_head_attention(q, k, v, 12, attention_mask);
//
// Every op has an allocating form and a form writing into a caller-provided `out` (which must
// already have the result's shape and dtype f32). Element-wise and row ops accept out == x (the
// same storage) for in-place use; linear and attention do not.
// A bad shape or dtype throws ShapeError naming the op and the shapes, e.g.
//   linear: input [2,7,64] does not match weight [128,32] (in_features 32)
// Thread count: kernels::set_num_threads (kernels/parallel.h). Ops are safe to call from several
// threads at once on distinct outputs.
#pragma once

#include <cstdint>
#include <optional>

#include "core/tensor.h"

namespace mmembed::ops {

// nn.Linear: y[..., out] = x[..., in] * weight^T + bias. weight [out, in] (PyTorch layout), bias
// [out] or none. x has rank >= 1.
Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias = {});
void linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, Tensor& out);

// linear followed by an activation, fused: out = act(x * weight^T + bias), within rounding of
// linear() then gelu() / quick_gelu() on out (the bias joins the activation's pass,
// kernels::linear); the activation runs on each tile of out right after its GEMM.
enum class LinearEpilogue { None, Gelu, QuickGelu };
void linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
            LinearEpilogue epilogue, Tensor& out);
// The weight may also be bf16 (kernels::linear_bf16), or int8 with one float scale per output
// row, weight_scales [out] (kernels::linear_int8); the overloads above refuse int8 weights.
void linear(const Tensor& x, const Tensor& weight, const Tensor& weight_scales,
            const std::optional<Tensor>& bias, LinearEpilogue epilogue, Tensor& out);

// nn.LayerNorm over the last dimension C: weight and bias are [C] or none; eps as in the
// checkpoint's config (1e-12 BERT, 1e-5 CLIP/BridgeTower).
Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight,
                  const std::optional<Tensor>& bias, float eps);
void layer_norm(const Tensor& x, const std::optional<Tensor>& weight,
                const std::optional<Tensor>& bias, float eps, Tensor& out);
// out = layer_norm((x + add_bias) + residual): a linear's bias (add_bias, [C] or none) and a
// residual (x's shape) added in the normalization's pass; the same values as the three steps
// one after the other. out may be x or residual.
void add_layer_norm(const Tensor& x, const std::optional<Tensor>& add_bias,
                    const Tensor& residual, const std::optional<Tensor>& weight,
                    const std::optional<Tensor>& bias, float eps, Tensor& out);

// GELU (erf form), QuickGELU x*sigmoid(1.702x), tanh: element-wise, any shape.
Tensor gelu(const Tensor& x);
void gelu(const Tensor& x, Tensor& out);
Tensor quick_gelu(const Tensor& x);
void quick_gelu(const Tensor& x, Tensor& out);
Tensor tanh(const Tensor& x);
void tanh(const Tensor& x, Tensor& out);

// Softmax over the last dimension C; mask: none or an additive [C] f32 added to every row.
Tensor softmax(const Tensor& x, const std::optional<Tensor>& mask = {});
void softmax(const Tensor& x, const std::optional<Tensor>& mask, Tensor& out);

// F.normalize(x, p=2, dim=-1, eps): x / max(||x||, eps) over the last dimension.
Tensor l2_normalize(const Tensor& x, float eps = 1e-12f);
void l2_normalize(const Tensor& x, float eps, Tensor& out);

struct AttentionOptions {
  // Key padding mask [B, Tk] in the Hugging Face attention_mask convention: nonzero keeps the
  // key, zero drops it. Any of f32, i64, i32, u8, bool. Dropped keys get the lowest float added
  // to their score, as Hugging Face does, so a row whose keys are all dropped is uniform.
  std::optional<Tensor> key_padding_mask;
  // Query t sees keys s <= t only (CLIP's text encoder). Requires Tq == Tk.
  bool causal = false;
  // Score scale; default 1/sqrt(head_dim).
  std::optional<float> scale;
};

// Multi-head scaled dot-product attention (no projections): q [B,Tq,H*D], k and v [B,Tk,H*D]
// -> [B,Tq,H*D]; per head softmax(Q K^T * scale + mask) V.
Tensor multi_head_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                            std::int64_t num_heads, const AttentionOptions& options = {});
void multi_head_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                          std::int64_t num_heads, const AttentionOptions& options, Tensor& out);

// The same on the output of a fused QKV projection, qkv [B,T,3*H*D] laid out as [q | k | v]
// along the last dimension (PyTorch nn.MultiheadAttention's in_proj), read in place.
Tensor multi_head_attention_packed(const Tensor& qkv, std::int64_t num_heads,
                                   const AttentionOptions& options = {});
void multi_head_attention_packed(const Tensor& qkv, std::int64_t num_heads,
                                 const AttentionOptions& options, Tensor& out);

}  // namespace mmembed::ops
