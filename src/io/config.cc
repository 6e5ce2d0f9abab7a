#include "io/config.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/check.h"
#include "core/file.h"
#include "io/json_internal.h"
#include "io/mapped_file.h"

namespace mmembed::io {

struct ConfigReader::Doc {
  nlohmann::json json;
};

namespace {

using nlohmann::json;

template <typename T>
struct Is_vector : std::false_type {};
template <typename T>
struct Is_vector<std::vector<T>> : std::true_type {};

template <typename T>
const char* type_word() {
  if constexpr (std::is_same_v<T, bool>) return "boolean";
  else if constexpr (std::is_integral_v<T>) return "integer";
  else if constexpr (std::is_floating_point_v<T>) return "number";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else return "array";
}

// Converts one scalar; returns nullopt when `v` has the wrong type or range.
template <typename T>
std::optional<T> convert_scalar(const json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean()) return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) {
      auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
    } else if (v.is_number_integer()) {
      auto i = v.get<std::int64_t>();
      if (i >= std::numeric_limits<T>::min() && i <= std::numeric_limits<T>::max()) {
        return static_cast<T>(i);
      }
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) return static_cast<T>(v.get<double>());
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) return v.get<std::string>();
  }
  return std::nullopt;
}

template <typename T>
std::optional<T> convert(const json& v) {
  if constexpr (Is_vector<T>::value) {
    if (!v.is_array()) return std::nullopt;
    T out;
    for (const json& item : v) {
      auto x = convert_scalar<typename T::value_type>(item);
      if (!x) return std::nullopt;
      out.push_back(std::move(*x));
    }
    return out;
  } else {
    return convert_scalar<T>(v);
  }
}

template <typename T>
std::string expected_word() {
  if constexpr (Is_vector<T>::value) {
    return str_cat("array of ", type_word<typename T::value_type>());
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return sizeof(T) < 8 ? "integer in 32-bit range" : "integer";
  } else {
    return type_word<T>();
  }
}

const json* lookup(const json& root, const std::vector<std::string>& path) {
  const json* node = &root;
  for (const std::string& k : path) {
    auto it = node->find(k);
    MMEMBED_ASSERT(it != node->end() && it->is_object());
    node = &*it;
  }
  return node;
}

}  // namespace

ConfigReader ConfigReader::from_file(const std::string& path) {
  return parse(read_input_file(path, kMaxConfigFileBytes), path);
}

ConfigReader ConfigReader::parse(std::string_view text, const std::string& source) {
  auto doc = std::make_shared<Doc>();
  doc->json = parse_json_strict(text, source);
  if (!doc->json.is_object()) {
    throw FormatError(str_cat(source, ": expected a JSON object at the top (got ",
                              json_type_name(doc->json), ")"));
  }
  return ConfigReader(std::move(doc), source, {});
}

std::string ConfigReader::path() const {
  std::string out;
  for (const std::string& k : path_) out += (out.empty() ? "" : ".") + k;
  return out;
}

bool ConfigReader::has(std::string_view key) const {
  const json& node = *lookup(doc_->json, path_);
  auto it = node.find(std::string(key));
  return it != node.end() && !it->is_null();
}

template <typename T>
std::optional<T> ConfigReader::get(std::string_view key) const {
  const json& node = *lookup(doc_->json, path_);
  auto it = node.find(std::string(key));
  if (it == node.end() || it->is_null()) return std::nullopt;
  std::optional<T> v = convert<T>(*it);
  if (!v) {
    std::string full = path().empty() ? std::string(key) : path() + "." + std::string(key);
    throw FormatError(str_cat(source_, ": key '", full, "' has the wrong type (expected ",
                              expected_word<T>(), ", got ", json_type_name(*it), " ",
                              json_brief(*it), ")"));
  }
  return v;
}

template <typename T>
T ConfigReader::required(std::string_view key) const {
  std::optional<T> v = get<T>(key);
  if (!v) {
    std::string full = path().empty() ? std::string(key) : path() + "." + std::string(key);
    throw FormatError(str_cat(source_, ": missing required key '", full, "'"));
  }
  return std::move(*v);
}

template <typename T>
T ConfigReader::optional(std::string_view key, T fallback) const {
  std::optional<T> v = get<T>(key);
  return v ? std::move(*v) : std::move(fallback);
}

std::optional<ConfigReader> ConfigReader::optional_object(std::string_view key) const {
  const json& node = *lookup(doc_->json, path_);
  auto it = node.find(std::string(key));
  if (it == node.end() || it->is_null()) return std::nullopt;
  std::vector<std::string> sub = path_;
  sub.emplace_back(key);
  if (!it->is_object()) {
    std::string full = path().empty() ? std::string(key) : path() + "." + std::string(key);
    throw FormatError(str_cat(source_, ": key '", full, "' has the wrong type (expected object, got ",
                              json_type_name(*it), ")"));
  }
  return ConfigReader(doc_, source_, std::move(sub));
}

ConfigReader ConfigReader::object(std::string_view key) const {
  std::optional<ConfigReader> r = optional_object(key);
  if (!r) {
    std::string full = path().empty() ? std::string(key) : path() + "." + std::string(key);
    throw FormatError(str_cat(source_, ": missing required key '", full, "'"));
  }
  return std::move(*r);
}

std::vector<std::string> ConfigReader::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : lookup(doc_->json, path_)->items()) out.push_back(k);
  return out;
}

#define MMEMBED_CONFIG_TYPE(T)                                                   \
  template T ConfigReader::required<T>(std::string_view) const;                  \
  template T ConfigReader::optional<T>(std::string_view, T) const;               \
  template std::optional<T> ConfigReader::get<T>(std::string_view) const;

MMEMBED_CONFIG_TYPE(bool)
MMEMBED_CONFIG_TYPE(int)
MMEMBED_CONFIG_TYPE(std::int64_t)
MMEMBED_CONFIG_TYPE(float)
MMEMBED_CONFIG_TYPE(double)
MMEMBED_CONFIG_TYPE(std::string)
MMEMBED_CONFIG_TYPE(std::vector<int>)
MMEMBED_CONFIG_TYPE(std::vector<std::int64_t>)
MMEMBED_CONFIG_TYPE(std::vector<float>)
MMEMBED_CONFIG_TYPE(std::vector<double>)
MMEMBED_CONFIG_TYPE(std::vector<std::string>)

#undef MMEMBED_CONFIG_TYPE

}  // namespace mmembed::io
