// ConfigReader: typed, checked access to a model's config.json.
//
//   io::ConfigReader cfg = io::ConfigReader::from_file(dir + "/config.json");
//   io::ConfigReader vision = cfg.object("vision_config");
//   std::int64_t hidden = vision.required<std::int64_t>("hidden_size");
//   double eps = vision.optional<double>("layer_norm_eps", 1e-5);
//   std::string act = vision.optional<std::string>("hidden_act", "quick_gelu");
//
// Unknown keys are tolerated (configs carry many fields a model ignores). A JSON null counts as
// absent (transformers writes nulls for unset options). Errors are FormatError naming the file
// and the full key path:
//   "config.json: missing required key 'vision_config.hidden_size'"
//   "config.json: key 'hidden_size' has the wrong type (expected integer, got string \"768\")"
// Supported T: bool, int, std::int64_t, float, double, std::string, and std::vector of int,
// std::int64_t, float, double, std::string. Integers must be JSON integers (3.0 is refused for an
// int key); floating types accept integers. A ConfigReader is a cheap, immutable handle sharing
// the parsed document. The JSON library stays inside io's .cc files.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mmembed::io {

class ConfigReader {
 public:
  // Reads and parses `path` (IoError when unreadable, FormatError when not a JSON object, on
  // invalid JSON or duplicate keys). Messages name the path as given.
  static ConfigReader from_file(const std::string& path);
  // Parses JSON text; `source` names it in messages.
  static ConfigReader parse(std::string_view json_text, const std::string& source);

  template <typename T>
  T required(std::string_view key) const;
  template <typename T>
  T optional(std::string_view key, T fallback) const;
  // nullopt when absent or null; FormatError when present with the wrong type.
  template <typename T>
  std::optional<T> get(std::string_view key) const;

  // True when the key is present and not null.
  bool has(std::string_view key) const;
  // A nested object (required / optional). FormatError when present but not an object.
  ConfigReader object(std::string_view key) const;
  std::optional<ConfigReader> optional_object(std::string_view key) const;
  // Keys of this object, sorted.
  std::vector<std::string> keys() const;

  const std::string& source() const noexcept { return source_; }
  // "vision_config" for a nested reader, "" at the top.
  std::string path() const;

  struct Doc;  // the parsed document (defined in config.cc)

 private:
  ConfigReader(std::shared_ptr<const Doc> doc, std::string source, std::vector<std::string> path)
      : doc_(std::move(doc)), source_(std::move(source)), path_(std::move(path)) {}

  std::shared_ptr<const Doc> doc_;
  std::string source_;
  std::vector<std::string> path_;  // keys from the root to this object
};

}  // namespace mmembed::io
