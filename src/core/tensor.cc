#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/check.h"

namespace mmembed {

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    MMEMBED_CHECK(d >= 0, ShapeError, "negative dimension in shape ", shape_str(shape));
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) {
      throw ShapeError(str_cat("shape ", shape_str(shape), " has too many elements"));
    }
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

void throw_numel_mismatch(const Shape& shape, std::size_t count) {
  throw ShapeError(str_cat("shape ", shape_str(shape), " needs ", shape_numel(shape),
                           " values, got ", count));
}

std::shared_ptr<void> aligned_alloc_shared(std::size_t bytes) {
  std::size_t rounded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  if (rounded == 0) rounded = kTensorAlignment;
  void* p = std::aligned_alloc(kTensorAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  std::size_t elem = dtype_size(dtype);
  if (static_cast<std::uint64_t>(t.numel_) > std::numeric_limits<std::size_t>::max() / elem) {
    throw ShapeError(str_cat("tensor of shape ", shape_str(t.shape_), " is too large"));
  }
  std::shared_ptr<void> mem = aligned_alloc_shared(t.nbytes());
  t.data_ = mem.get();
  t.owner_ = std::move(mem);
  return t;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::wrap(void* data, DType dtype, Shape shape, std::shared_ptr<const void> owner) {
  Tensor t = borrow(data, dtype, std::move(shape));
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::borrow(void* data, DType dtype, Shape shape) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  MMEMBED_CHECK(data != nullptr || t.numel_ == 0, InvalidArgument,
                "null data for tensor of shape ", shape_str(shape));
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.data_ = data;
  return t;
}

std::int64_t Tensor::dim(int i) const {
  int r = rank();
  int j = i < 0 ? i + r : i;
  MMEMBED_CHECK(j >= 0 && j < r, ShapeError, "dimension ", i, " out of range for ", describe());
  return shape_[static_cast<std::size_t>(j)];
}

void Tensor::check_dtype(DType want) const {
  MMEMBED_CHECK(dtype_ == want, ShapeError, "tensor ", describe(), " accessed as ",
                dtype_name(want));
}

Tensor Tensor::reshape(Shape shape) const {
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MMEMBED_CHECK(infer < 0, ShapeError, "reshape ", shape_str(shape), ": two -1 dimensions");
      infer = static_cast<int>(i);
    } else {
      MMEMBED_CHECK(shape[i] >= 0, ShapeError, "reshape to ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MMEMBED_CHECK(known != 0 && numel_ % known == 0, ShapeError, "cannot reshape ", describe(),
                  " to ", shape_str(shape));
    shape[static_cast<std::size_t>(infer)] = numel_ / known;
  }
  MMEMBED_CHECK(shape_numel(shape) == numel_, ShapeError, "cannot reshape ", describe(), " to ",
                shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice_rows(std::int64_t begin, std::int64_t end) const {
  MMEMBED_CHECK(rank() >= 1, ShapeError, "slice_rows of a scalar");
  MMEMBED_CHECK(0 <= begin && begin <= end && end <= shape_[0], ShapeError, "rows [", begin, ",",
                end, ") out of range for ", describe());
  std::int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  t.data_ = static_cast<char*>(data_) + static_cast<std::size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

double Tensor::value_at(std::int64_t i) const {
  MMEMBED_CHECK(0 <= i && i < numel_, ShapeError, "index ", i, " out of range for ", describe());
  const char* p = static_cast<const char*>(data_);
  switch (dtype_) {
    case DType::F32: return reinterpret_cast<const float*>(p)[i];
    case DType::F16: return f16_to_f32(reinterpret_cast<const std::uint16_t*>(p)[i]);
    case DType::BF16: return bf16_to_f32(reinterpret_cast<const std::uint16_t*>(p)[i]);
    case DType::F64: return reinterpret_cast<const double*>(p)[i];
    case DType::I64: return static_cast<double>(reinterpret_cast<const std::int64_t*>(p)[i]);
    case DType::I32: return reinterpret_cast<const std::int32_t*>(p)[i];
    case DType::I16: return reinterpret_cast<const std::int16_t*>(p)[i];
    case DType::I8: return reinterpret_cast<const std::int8_t*>(p)[i];
    case DType::U8: return reinterpret_cast<const std::uint8_t*>(p)[i];
    case DType::Bool: return reinterpret_cast<const std::uint8_t*>(p)[i] != 0;
  }
  return 0;
}

Tensor Tensor::to_f32() const {
  if (dtype_ == DType::F32) return *this;
  Tensor t = empty(DType::F32, shape_);
  float* out = t.data<float>();
  const char* p = static_cast<const char*>(data_);
  if (dtype_ == DType::BF16) {
    auto* in = reinterpret_cast<const std::uint16_t*>(p);
    for (std::int64_t i = 0; i < numel_; ++i) out[i] = bf16_to_f32(in[i]);
  } else if (dtype_ == DType::F16) {
    auto* in = reinterpret_cast<const std::uint16_t*>(p);
    for (std::int64_t i = 0; i < numel_; ++i) out[i] = f16_to_f32(in[i]);
  } else {
    for (std::int64_t i = 0; i < numel_; ++i) out[i] = static_cast<float>(value_at(i));
  }
  return t;
}

std::string Tensor::describe() const {
  return str_cat(dtype_name(dtype_), shape_str(shape_));
}

}  // namespace mmembed
