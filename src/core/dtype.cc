#include "mmembed/dtype.h"

namespace mmembed {

std::size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::F64: return 8;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::I16: return 2;
    case DType::I8: return 1;
    case DType::U8: return 1;
    case DType::Bool: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::F64: return "f64";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::I16: return "i16";
    case DType::I8: return "i8";
    case DType::U8: return "u8";
    case DType::Bool: return "bool";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) noexcept {
  struct Entry {
    std::string_view ours, safetensors;
    DType dtype;
  };
  static constexpr Entry kTable[] = {
      {"f32", "F32", DType::F32}, {"f16", "F16", DType::F16}, {"bf16", "BF16", DType::BF16},
      {"f64", "F64", DType::F64}, {"i64", "I64", DType::I64}, {"i32", "I32", DType::I32},
      {"i16", "I16", DType::I16}, {"i8", "I8", DType::I8},    {"u8", "U8", DType::U8},
      {"bool", "BOOL", DType::Bool},
  };
  for (const Entry& e : kTable) {
    if (name == e.ours || name == e.safetensors) return e.dtype;
  }
  return std::nullopt;
}

bool dtype_is_float(DType dtype) noexcept {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F64;
}

}  // namespace mmembed
