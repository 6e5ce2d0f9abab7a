#include "io/weight_map.h"

#include <algorithm>
#include <set>

#include "core/check.h"
#include "core/half.h"

namespace mmembed::io {

NameMap& NameMap::rename(std::string from, std::string to) {
  rules_.push_back({Kind::Exact, std::move(from), std::move(to)});
  return *this;
}

NameMap& NameMap::rename_prefix(std::string from, std::string to) {
  rules_.push_back({Kind::Prefix, std::move(from), std::move(to)});
  return *this;
}

NameMap& NameMap::ignore(std::string name, bool prefix_match) {
  bool prefix = prefix_match || (!name.empty() && name.back() == '.');
  rules_.push_back({prefix ? Kind::IgnorePrefix : Kind::Ignore, std::move(name), {}});
  return *this;
}

std::optional<std::string> NameMap::to_internal(std::string_view name) const {
  for (const Rule& r : rules_) {
    switch (r.kind) {
      case Kind::Exact:
        if (name == r.from) return r.to;
        break;
      case Kind::Prefix:
        if (name.substr(0, r.from.size()) == r.from) {
          return r.to + std::string(name.substr(r.from.size()));
        }
        break;
      case Kind::Ignore:
        if (name == r.from) return std::nullopt;
        break;
      case Kind::IgnorePrefix:
        if (name.substr(0, r.from.size()) == r.from) return std::nullopt;
        break;
    }
  }
  return std::string(name);
}

namespace {

bool shape_matches(const Shape& got, const Shape& want) {
  if (got.size() != want.size()) return false;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (want[i] != -1 && want[i] != got[i]) return false;
  }
  return true;
}

}  // namespace

BoundWeights bind_weights(const Checkpoint& ckpt, const std::vector<ExpectedTensor>& expected,
                          const NameMap& names) {
  BoundWeights out;
  out.ckpt_ = ckpt;
  std::vector<std::string> problems;
  bool only_shapes = true;

  // internal name -> checkpoint name, refusing two checkpoint tensors for one internal name.
  std::map<std::string, std::string, std::less<>> available;
  std::vector<std::string> order;  // checkpoint names not ignored, in checkpoint order
  for (const TensorInfo& t : ckpt.tensors()) {
    std::optional<std::string> internal = names.to_internal(t.name);
    if (!internal) continue;
    auto [it, inserted] = available.emplace(*internal, t.name);
    if (!inserted) {
      problems.push_back(
          str_cat("'", it->second, "' and '", t.name, "' both map to '", *internal, "'"));
      only_shapes = false;
    }
    order.push_back(t.name);
  }

  std::set<std::string> used;
  std::set<std::string> seen_expected;
  for (const ExpectedTensor& e : expected) {
    MMEMBED_CHECK(seen_expected.insert(e.name).second, InvalidArgument, "expected tensor '", e.name,
                  "' is listed twice");
    auto it = available.find(e.name);
    if (it == available.end()) {
      if (e.required) {
        problems.push_back(str_cat("missing tensor '", e.name, "'"));
        only_shapes = false;
      } else {
        out.missing_optional_.push_back(e.name);
      }
      continue;
    }
    const TensorInfo* info = ckpt.find(it->second);
    MMEMBED_ASSERT(info != nullptr);
    used.insert(it->second);
    if (!shape_matches(info->shape, e.shape)) {
      std::string shown = it->second == e.name ? e.name : str_cat(it->second, " (", e.name, ")");
      problems.push_back(
          str_cat(shown, ": got ", shape_str(info->shape), " expected ", shape_str(e.shape)));
    }
    out.names_.emplace(e.name, it->second);
  }
  for (const std::string& n : order) {
    if (!used.count(n)) out.unused_.push_back(n);
  }

  if (!problems.empty()) {
    std::string msg =
        str_cat(ckpt.path(), ": checkpoint does not match the model (", problems.size(),
                problems.size() == 1 ? " problem" : " problems", "):");
    // Listed up to a bound: a config that expects a million layers would otherwise produce a
    // message of hundreds of MB.
    const std::size_t listed = std::min(problems.size(), kMaxListedWeightProblems);
    for (std::size_t i = 0; i < listed; ++i)
      msg += "\n  " + problems[i];
    if (listed < problems.size()) msg += str_cat("\n  and ", problems.size() - listed, " more");
    if (only_shapes) throw ShapeError(msg);
    throw FormatError(msg);
  }
  return out;
}

void check_layer_count(const Checkpoint& ckpt, const std::string& key, std::int64_t layers,
                       std::size_t per_layer) {
  MMEMBED_CHECK(layers >= 0, FormatError, "config.json: ", key, " is ", layers,
                " (expected a layer count >= 0)");
  const auto have = static_cast<std::uint64_t>(ckpt.tensors().size());
  MMEMBED_CHECK(per_layer == 0 || static_cast<std::uint64_t>(layers) <= have / per_layer,
                FormatError, "config.json: ", key, " is ", layers, ", but ", ckpt.path(),
                " has only ", have, " tensors, too few for that many layers (each needs ",
                per_layer, "); does config.json belong to this checkpoint?");
}

bool BoundWeights::has(std::string_view internal_name) const {
  return names_.find(internal_name) != names_.end();
}

const std::string& BoundWeights::checkpoint_name(std::string_view internal_name) const {
  auto it = names_.find(internal_name);
  if (it == names_.end()) {
    throw InvalidArgument(str_cat(ckpt_.path(), ": tensor '", internal_name,
                                  "' was not bound (not expected, or optional and missing)"));
  }
  return it->second;
}

Tensor BoundWeights::get(std::string_view internal_name) const {
  return ckpt_.get(checkpoint_name(internal_name));
}

Tensor BoundWeights::get_f32(std::string_view internal_name) const {
  const std::string& name = checkpoint_name(internal_name);
  Tensor t = ckpt_.get_f32(name);
  if (matrix_dtype_ == DType::F32) return t;
  // With reduced-precision matrices the model keeps owned copies of everything else too, and
  // each tensor's mapped pages are given back once copied: the process then holds the smaller
  // weights only, not the checkpoint's pages besides.
  Tensor copy = t.clone();
  ckpt_.release(name);
  return copy;
}

void BoundWeights::set_matrix_dtype(DType dtype) {
  MMEMBED_CHECK(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::I8, InvalidArgument,
                "weight matrices can be kept as f32, bf16 or i8, not ", dtype_name(dtype));
  matrix_dtype_ = dtype;
}

BoundWeights::Matrix BoundWeights::get_matrix(std::string_view internal_name) const {
  if (matrix_dtype_ == DType::F32) return {get_f32(internal_name), std::nullopt};
  const std::string& name = checkpoint_name(internal_name);
  const Tensor t = ckpt_.get(name);
  Tensor out;
  if (matrix_dtype_ == DType::BF16 && t.dtype() == DType::BF16) {
    out = t.clone();
  } else if (matrix_dtype_ == DType::BF16) {
    const Tensor f = t.to_f32();
    const float* src = f.data<float>();
    out = Tensor::empty(DType::BF16, f.shape());
    f32_to_bf16_n(src, static_cast<std::uint16_t*>(out.raw()), f.numel());
  } else {
    // I8: an f32 copy, which nn::Linear quantizes with the kernels' quantize_rows_s8 (the same
    // rounding its inputs get).
    out = t.to_f32().clone();
  }
  ckpt_.release(name);  // the mapped pages of this matrix are not read again
  return {out, std::nullopt};
}

}  // namespace mmembed::io
