// Element types of tensors. f32 is the compute type; the others exist for loading checkpoints
// (f16/bf16/f64 weights are converted to f32, integer tensors hold ids and masks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mmembed {

enum class DType : std::uint8_t {
  F32,
  F16,
  BF16,
  F64,
  I64,
  I32,
  I16,
  I8,
  U8,
  Bool,
};

// Size of one element in bytes.
std::size_t dtype_size(DType dtype) noexcept;

// Lower-case name as printed by `mmembed inspect`: "f32", "bf16", "i64", "bool", ...
std::string_view dtype_name(DType dtype) noexcept;

// Parses the names used by dtype_name() and the safetensors names ("F32", "BF16", "I64", "BOOL").
std::optional<DType> parse_dtype(std::string_view name) noexcept;

// True for F32, F16, BF16 and F64.
bool dtype_is_float(DType dtype) noexcept;

}  // namespace mmembed
