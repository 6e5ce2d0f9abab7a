// Row normalizations on [rows, cols] row-major f32 arrays. y may equal x (in place). Each row is
// computed by one thread, so results do not depend on the thread count.
//
//   kernels::layer_norm(x, gamma, beta, y, rows, 768, 1e-12f);
//   kernels::l2_normalize(emb, emb, n, 512);
#pragma once

#include <cstdint>

namespace mmembed::kernels {

// torch.nn.functional.layer_norm over the last dimension:
//   y = (x - mean) / sqrt(var + eps) * gamma + beta, var biased (divided by cols).
// gamma and beta ([cols]) may each be null (weight 1, bias 0). cols >= 1.
// Mean and variance are accumulated in double (two passes), then applied in float: this keeps
// rows whose mean is large against their spread accurate, where a one-pass float variance
// cancels.
void layer_norm(const float* x, const float* gamma, const float* beta, float* y,
                std::int64_t rows, std::int64_t cols, float eps);

// layer_norm of h = (x + bias) + residual, row by row in one pass over the rows: h is written
// to y, then normalized there (the same code as layer_norm). bias ([cols]) may be null (h = x +
// residual). The same bits as bias_add, an element-wise add and layer_norm one after the other;
// y may equal x or residual. The post-LN residual blocks of BERT: LN(dense(h) + input).
void add_layer_norm(const float* x, const float* bias, const float* residual,
                    const float* gamma, const float* beta, float* y, std::int64_t rows,
                    std::int64_t cols, float eps);

// torch.nn.functional.normalize(x, p=2, dim=-1, eps): y = x / max(||x||_2, eps).
// An all-zero row stays zero. cols >= 1.
void l2_normalize(const float* x, float* y, std::int64_t rows, std::int64_t cols,
                  float eps = 1e-12f);

namespace ref {
// Straightforward double-precision versions.
void layer_norm(const float* x, const float* gamma, const float* beta, float* y,
                std::int64_t rows, std::int64_t cols, float eps);
void l2_normalize(const float* x, float* y, std::int64_t rows, std::int64_t cols,
                  float eps = 1e-12f);
}  // namespace ref

}  // namespace mmembed::kernels
