#include "ops/check.h"

#include "core/check.h"

namespace mmembed::ops::detail {

void require_f32(std::string_view op, std::string_view what, const Tensor& t) {
  MMEMBED_CHECK(t.dtype() == DType::F32, ShapeError, op, ": ", what, " must be f32, got ",
                t.describe());
}

void require_min_rank(std::string_view op, std::string_view what, const Tensor& t, int min_rank) {
  MMEMBED_CHECK(t.rank() >= min_rank, ShapeError, op, ": ", what, " must have rank >= ", min_rank,
                ", got ", shape_str(t.shape()));
}

void require_out(std::string_view op, const Tensor& out, const Shape& shape) {
  MMEMBED_CHECK(out.dtype() == DType::F32 && out.shape() == shape, ShapeError, op, ": output ",
                out.describe(), " does not match the result f32", shape_str(shape));
}

std::int64_t leading_rows(const Tensor& t) {
  std::int64_t rows = 1;
  for (int i = 0; i + 1 < t.rank(); ++i) rows *= t.shape()[static_cast<std::size_t>(i)];
  return rows;
}

}  // namespace mmembed::ops::detail
