// Internal to the ops: the shape and dtype checks every op shares.
#pragma once

#include <string_view>

#include "core/tensor.h"

namespace mmembed::ops::detail {

// Throws ShapeError "<op>: <what> must be f32, got <describe>" unless t is f32.
void require_f32(std::string_view op, std::string_view what, const Tensor& t);
// Throws ShapeError "<op>: <what> must have rank >= <min_rank>, got <shape>".
void require_min_rank(std::string_view op, std::string_view what, const Tensor& t, int min_rank);
// Throws ShapeError "<op>: output <describe> does not match the result f32<shape>" unless out is
// an f32 tensor of exactly `shape`.
void require_out(std::string_view op, const Tensor& out, const Shape& shape);
// Rows of a [..., C] tensor: the product of every dimension but the last.
std::int64_t leading_rows(const Tensor& t);

}  // namespace mmembed::ops::detail
