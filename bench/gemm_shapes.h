// The GEMM shapes of the transformers mmembed runs, shared by bench_gemm and bench_linear.
//
// Every product is a linear layer y[M, N] = x[M, K] * W^T with W stored [N, K] (PyTorch
// layout), i.e. sgemm(No, Yes). M is tokens x batch: 77 (CLIP text context), 325 (ViT-B/16 at
// 288 px: 18*18 patches + CLS, BridgeTower's image side), 442; batches 1, 2, 4, 8.
#pragma once

#include <cstdint>
#include <vector>

namespace mmembed::bench {

struct LayerShape {
  std::int64_t K, N;  // in_features, out_features
  const char* layer;  // where it occurs
};

inline const std::vector<LayerShape>& layer_shapes() {
  static const std::vector<LayerShape> shapes = {
      {768, 768, "width 768 (BERT-base, ViT-B, BridgeTower-base): Q/K/V and attention output"},
      {768, 2304, "width 768: fused QKV in_proj (OpenAI CLIP ViT-B resblocks)"},
      {768, 3072, "width 768: MLP fc1 / intermediate.dense"},
      {3072, 768, "width 768: MLP fc2 / output.dense"},
      {512, 512, "width 512 (CLIP ViT-B text encoder): Q/K/V and out_proj"},
      {512, 2048, "width 512: text MLP fc1"},
      {2048, 512, "width 512: text MLP fc2"},
      {1024, 1024, "width 1024 (ViT-L, BridgeTower-large): Q/K/V and out_proj"},
      {1024, 4096, "width 1024: MLP fc1"},
      {4096, 1024, "width 1024: MLP fc2"},
  };
  return shapes;
}

inline const std::vector<std::int64_t>& token_counts() {
  static const std::vector<std::int64_t> tokens = {77, 325, 442};
  return tokens;
}

inline const std::vector<std::int64_t>& batch_sizes() {
  static const std::vector<std::int64_t> batches = {1, 2, 4, 8};
  return batches;
}

}  // namespace mmembed::bench
