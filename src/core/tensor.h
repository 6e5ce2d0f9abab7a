// Tensor: shape + dtype + contiguous row-major storage.
//
// A Tensor either owns 64-byte aligned storage (Tensor::empty / zeros), shares storage kept alive
// by an owner handle (Tensor::wrap, e.g. over an mmap'ed checkpoint), or borrows memory it does
// not own (Tensor::borrow: the caller keeps the memory alive). Copying a Tensor is shallow: both
// copies see the same elements. clone() makes a deep copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/half.h"
#include "mmembed/dtype.h"

namespace mmembed {

using Shape = std::vector<std::int64_t>;

// Product of the dimensions; throws ShapeError on a negative dimension or int64 overflow.
std::int64_t shape_numel(const Shape& shape);
// "[2,3,4]"
std::string shape_str(const Shape& shape);

[[noreturn]] void throw_numel_mismatch(const Shape& shape, std::size_t count);

template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, f16>) return DType::F16;
  else if constexpr (std::is_same_v<T, bf16>) return DType::BF16;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::I64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::I32;
  else if constexpr (std::is_same_v<T, std::int16_t>) return DType::I16;
  else if constexpr (std::is_same_v<T, std::int8_t>) return DType::I8;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return DType::U8;
  else if constexpr (std::is_same_v<T, bool>) return DType::Bool;
  else static_assert(sizeof(T) == 0, "type has no DType");
}

inline constexpr std::size_t kTensorAlignment = 64;

// Allocates `bytes` bytes aligned to kTensorAlignment; freed with std::free. Throws on failure.
std::shared_ptr<void> aligned_alloc_shared(std::size_t bytes);

class Tensor {
 public:
  Tensor() = default;

  // Uninitialized owned storage.
  static Tensor empty(DType dtype, Shape shape);
  // Zero-filled owned storage.
  static Tensor zeros(DType dtype, Shape shape);
  // Owned copy of `values` (numel must match).
  template <typename T>
  static Tensor from(Shape shape, std::initializer_list<T> values);
  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);
  // Shares memory kept alive by `owner` (e.g. an mmap); no copy.
  static Tensor wrap(void* data, DType dtype, Shape shape, std::shared_ptr<const void> owner);
  // Non-owning view of memory the caller keeps alive.
  static Tensor borrow(void* data, DType dtype, Shape shape);
  static Tensor borrow(const void* data, DType dtype, Shape shape) {
    return borrow(const_cast<void*>(data), dtype, std::move(shape));
  }

  bool defined() const noexcept { return data_ != nullptr || numel_ == 0; }
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  int rank() const noexcept { return static_cast<int>(shape_.size()); }
  // dim(-1) is the last dimension. Throws ShapeError when out of range.
  std::int64_t dim(int i) const;
  std::int64_t numel() const noexcept { return numel_; }
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  bool owns_memory() const noexcept { return owner_ != nullptr; }

  void* raw() noexcept { return data_; }
  const void* raw() const noexcept { return data_; }

  // Typed access; throws ShapeError when T does not match dtype().
  template <typename T>
  T* data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(data_);
  }

  // Same storage, new shape with the same numel (one dimension may be -1).
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) of the first dimension, sharing storage.
  Tensor slice_rows(std::int64_t begin, std::int64_t end) const;
  // Deep copy into owned aligned storage.
  Tensor clone() const;
  // f32 copy of a floating tensor (f16/bf16/f64 converted); an f32 tensor is returned as is.
  // Integer tensors are converted too (for display).
  Tensor to_f32() const;

  // Element as double, any dtype (slow; for printing and tests).
  double value_at(std::int64_t flat_index) const;

  std::string describe() const;  // "f32[2,3]"

 private:
  void check_dtype(DType want) const;

  std::shared_ptr<const void> owner_;
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Shape shape_;
  std::int64_t numel_ = 0;
};

template <typename T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t = empty(dtype_of<T>(), std::move(shape));
  if (static_cast<std::size_t>(t.numel()) != values.size()) {
    throw_numel_mismatch(t.shape(), values.size());
  }
  T* out = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  return t;
}

template <typename T>
Tensor Tensor::from(Shape shape, std::initializer_list<T> values) {
  return from_vector<T>(std::move(shape), std::vector<T>(values));
}

}  // namespace mmembed
