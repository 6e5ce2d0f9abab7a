#include "core/check.h"
#include "kernels/elementwise.h"
#include "kernels/softmax.h"
#include "ops/check.h"
#include "ops/ops.h"

namespace mmembed::ops {

namespace {

using UnaryKernel = void (*)(const float*, float*, std::int64_t);

void unary(const char* op, UnaryKernel kernel, const Tensor& x, Tensor& out) {
  detail::require_f32(op, "input", x);
  detail::require_out(op, out, x.shape());
  kernel(x.data<float>(), out.data<float>(), x.numel());
}

Tensor unary(const char* op, UnaryKernel kernel, const Tensor& x) {
  detail::require_f32(op, "input", x);
  Tensor out = Tensor::empty(DType::F32, x.shape());
  unary(op, kernel, x, out);
  return out;
}

}  // namespace

void gelu(const Tensor& x, Tensor& out) { unary("gelu", kernels::gelu, x, out); }
Tensor gelu(const Tensor& x) { return unary("gelu", kernels::gelu, x); }
void quick_gelu(const Tensor& x, Tensor& out) { unary("quick_gelu", kernels::quick_gelu, x, out); }
Tensor quick_gelu(const Tensor& x) { return unary("quick_gelu", kernels::quick_gelu, x); }
void tanh(const Tensor& x, Tensor& out) { unary("tanh", kernels::tanh, x, out); }
Tensor tanh(const Tensor& x) { return unary("tanh", kernels::tanh, x); }

void softmax(const Tensor& x, const std::optional<Tensor>& mask, Tensor& out) {
  detail::require_f32("softmax", "input", x);
  detail::require_min_rank("softmax", "input", x, 1);
  const std::int64_t cols = x.dim(-1);
  if (mask) {
    detail::require_f32("softmax", "mask", *mask);
    MMEMBED_CHECK(mask->rank() == 1 && mask->dim(0) == cols, ShapeError, "softmax: mask ",
                  shape_str(mask->shape()), " does not match input ", shape_str(x.shape()),
                  " (expected [", cols, "])");
  }
  detail::require_out("softmax", out, x.shape());
  kernels::softmax(x.data<float>(), out.data<float>(), detail::leading_rows(x), cols,
                   mask ? mask->data<float>() : nullptr);
}

Tensor softmax(const Tensor& x, const std::optional<Tensor>& mask) {
  detail::require_f32("softmax", "input", x);
  Tensor out = Tensor::empty(DType::F32, x.shape());
  softmax(x, mask, out);
  return out;
}

}  // namespace mmembed::ops
