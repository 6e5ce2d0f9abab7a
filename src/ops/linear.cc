#include "core/check.h"
#include "kernels/gemm.h"
#include "ops/check.h"
#include "ops/ops.h"

namespace mmembed::ops {

namespace {
Shape linear_out_shape(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias) {
  detail::require_f32("linear", "input", x);
  MMEMBED_CHECK(
      weight.dtype() == DType::F32 || weight.dtype() == DType::BF16 || weight.dtype() == DType::I8,
      ShapeError, "linear: weight must be f32, bf16 or i8, got ", weight.describe());
  detail::require_min_rank("linear", "input", x, 1);
  MMEMBED_CHECK(weight.rank() == 2, ShapeError,
                "linear: weight must be [out_features, in_features], got ",
                shape_str(weight.shape()));
  MMEMBED_CHECK(x.dim(-1) == weight.dim(1), ShapeError, "linear: input ", shape_str(x.shape()),
                " does not match weight ", shape_str(weight.shape()), " (in_features ",
                weight.dim(1), ")");
  if (bias) {
    detail::require_f32("linear", "bias", *bias);
    MMEMBED_CHECK(bias->rank() == 1 && bias->dim(0) == weight.dim(0), ShapeError, "linear: bias ",
                  shape_str(bias->shape()), " does not match weight ", shape_str(weight.shape()),
                  " (out_features ", weight.dim(0), ")");
  }
  Shape out = x.shape();
  out.back() = weight.dim(0);
  return out;
}

kernels::Epilogue to_kernels(LinearEpilogue e) {
  return e == LinearEpilogue::Gelu        ? kernels::Epilogue::Gelu
         : e == LinearEpilogue::QuickGelu ? kernels::Epilogue::QuickGelu
                                          : kernels::Epilogue::None;
}

// The f32 or the bf16 product, by the weight's type.
void run_linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                kernels::Epilogue e, Tensor& out) {
  MMEMBED_CHECK(weight.dtype() != DType::I8, ShapeError,
                "linear: an int8 weight needs its per-row scales");
  const float* b = bias ? bias->data<float>() : nullptr;
  if (weight.dtype() == DType::BF16) {
    kernels::linear_bf16(x.data<float>(), static_cast<const std::uint16_t*>(weight.raw()), b,
                         out.data<float>(), detail::leading_rows(x), weight.dim(1), weight.dim(0),
                         e);
  } else {
    kernels::linear(x.data<float>(), weight.data<float>(), b, out.data<float>(),
                    detail::leading_rows(x), weight.dim(1), weight.dim(0), e);
  }
}
}  // namespace

void linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, Tensor& out) {
  Shape shape = linear_out_shape(x, weight, bias);
  detail::require_out("linear", out, shape);
  MMEMBED_CHECK(out.raw() != x.raw() || out.numel() == 0, ShapeError,
                "linear: output must not share storage with the input");
  run_linear(x, weight, bias, kernels::Epilogue::None, out);
}

void linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
            LinearEpilogue epilogue, Tensor& out) {
  Shape shape = linear_out_shape(x, weight, bias);
  detail::require_out("linear", out, shape);
  MMEMBED_CHECK(out.raw() != x.raw() || out.numel() == 0, ShapeError,
                "linear: output must not share storage with the input");
  run_linear(x, weight, bias, to_kernels(epilogue), out);
}

Tensor linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias) {
  Tensor out = Tensor::empty(DType::F32, linear_out_shape(x, weight, bias));
  linear(x, weight, bias, out);
  return out;
}

void linear(const Tensor& x, const Tensor& weight, const Tensor& weight_scales,
            const std::optional<Tensor>& bias, LinearEpilogue epilogue, Tensor& out) {
  Shape shape = linear_out_shape(x, weight, bias);
  detail::require_out("linear", out, shape);
  MMEMBED_CHECK(out.raw() != x.raw() || out.numel() == 0, ShapeError,
                "linear: output must not share storage with the input");
  if (weight.dtype() != DType::I8) {
    run_linear(x, weight, bias, to_kernels(epilogue), out);
    return;
  }
  detail::require_f32("linear", "weight scales", weight_scales);
  MMEMBED_CHECK(weight_scales.rank() == 1 && weight_scales.dim(0) == weight.dim(0), ShapeError,
                "linear: weight scales ", shape_str(weight_scales.shape()), " do not match weight ",
                shape_str(weight.shape()));
  kernels::linear_int8(x.data<float>(), static_cast<const std::int8_t*>(weight.raw()),
                       weight_scales.data<float>(), bias ? bias->data<float>() : nullptr,
                       out.data<float>(), detail::leading_rows(x), weight.dim(1), weight.dim(0),
                       to_kernels(epilogue));
}

}  // namespace mmembed::ops
