#include "core/check.h"
#include "kernels/norm.h"
#include "ops/check.h"
#include "ops/ops.h"

namespace mmembed::ops {

namespace {
void check_param(const char* what, const std::optional<Tensor>& p, const Tensor& x) {
  if (!p) return;
  detail::require_f32("layer_norm", what, *p);
  MMEMBED_CHECK(p->rank() == 1 && p->dim(0) == x.dim(-1), ShapeError, "layer_norm: ", what, " ",
                shape_str(p->shape()), " does not match input ", shape_str(x.shape()),
                " (normalized size ", x.dim(-1), ")");
}
void check_input(const Tensor& x, float eps) {
  detail::require_f32("layer_norm", "input", x);
  detail::require_min_rank("layer_norm", "input", x, 1);
  MMEMBED_CHECK(x.dim(-1) >= 1 || x.numel() == 0, ShapeError,
                "layer_norm: input ", shape_str(x.shape()), " has an empty last dimension");
  MMEMBED_CHECK(eps >= 0.0f, InvalidArgument, "layer_norm: eps must be >= 0, got ", eps);
}
}  // namespace

void layer_norm(const Tensor& x, const std::optional<Tensor>& weight,
                const std::optional<Tensor>& bias, float eps, Tensor& out) {
  check_input(x, eps);
  check_param("weight", weight, x);
  check_param("bias", bias, x);
  detail::require_out("layer_norm", out, x.shape());
  if (x.numel() == 0) return;
  kernels::layer_norm(x.data<float>(), weight ? weight->data<float>() : nullptr,
                      bias ? bias->data<float>() : nullptr, out.data<float>(),
                      detail::leading_rows(x), x.dim(-1), eps);
}

void add_layer_norm(const Tensor& x, const std::optional<Tensor>& add_bias,
                    const Tensor& residual, const std::optional<Tensor>& weight,
                    const std::optional<Tensor>& bias, float eps, Tensor& out) {
  check_input(x, eps);
  detail::require_f32("layer_norm", "residual", residual);
  MMEMBED_CHECK(residual.shape() == x.shape(), ShapeError, "layer_norm: residual ",
                shape_str(residual.shape()), " does not match input ", shape_str(x.shape()));
  check_param("added bias", add_bias, x);
  check_param("weight", weight, x);
  check_param("bias", bias, x);
  detail::require_out("layer_norm", out, x.shape());
  if (x.numel() == 0) return;
  kernels::add_layer_norm(x.data<float>(), add_bias ? add_bias->data<float>() : nullptr,
                          residual.data<float>(), weight ? weight->data<float>() : nullptr,
                          bias ? bias->data<float>() : nullptr, out.data<float>(),
                          detail::leading_rows(x), x.dim(-1), eps);
}

Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& weight,
                  const std::optional<Tensor>& bias, float eps) {
  detail::require_f32("layer_norm", "input", x);
  Tensor out = Tensor::empty(DType::F32, x.shape());
  layer_norm(x, weight, bias, eps, out);
  return out;
}

void l2_normalize(const Tensor& x, float eps, Tensor& out) {
  detail::require_f32("l2_normalize", "input", x);
  detail::require_min_rank("l2_normalize", "input", x, 1);
  MMEMBED_CHECK(eps >= 0.0f, InvalidArgument, "l2_normalize: eps must be >= 0, got ", eps);
  detail::require_out("l2_normalize", out, x.shape());
  if (x.numel() == 0) return;
  kernels::l2_normalize(x.data<float>(), out.data<float>(), detail::leading_rows(x), x.dim(-1),
                        eps);
}

Tensor l2_normalize(const Tensor& x, float eps) {
  detail::require_f32("l2_normalize", "input", x);
  Tensor out = Tensor::empty(DType::F32, x.shape());
  l2_normalize(x, eps, out);
  return out;
}

}  // namespace mmembed::ops
