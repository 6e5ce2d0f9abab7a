#include "io/json_internal.h"

#include <optional>
#include <unordered_set>
#include <vector>

#include "core/check.h"
#include "io/bytes.h"

namespace mmembed::io {

namespace {

// Thrown from the parser callback to stop parsing at the first structural problem; converted
// to FormatError below. Never escapes this file.
struct StopParse {
  std::string what;
};

}  // namespace

nlohmann::json parse_json_strict(std::string_view text, const std::string& source,
                                 int max_depth) {
  if (!is_valid_utf8(text)) throw FormatError(str_cat(source, ": invalid UTF-8 in JSON text"));
  using nlohmann::json;
  // One entry per open container: the keys seen so far for objects, nullopt for arrays.
  std::vector<std::optional<std::unordered_set<std::string>>> open;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth) {
          throw StopParse{str_cat("JSON nested deeper than ", max_depth, " levels")};
        }
        if (event == json::parse_event_t::object_start) {
          open.emplace_back(std::unordered_set<std::string>{});
        } else {
          open.emplace_back(std::nullopt);
        }
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open.empty() && open.back().has_value()) {
          const std::string& key = parsed.get_ref<const std::string&>();
          if (!open.back()->insert(key).second) {
            throw StopParse{str_cat("duplicate key '", printable(key), "' in JSON object")};
          }
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const StopParse& stop) {
    throw FormatError(str_cat(source, ": ", stop.what));
  } catch (const json::exception& e) {
    throw FormatError(str_cat(source, ": invalid JSON (", e.what(), ")"));
  }
}

std::string json_type_name(const nlohmann::json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();
}

std::string json_brief(const nlohmann::json& value) {
  if (value.is_object()) return "{...}";
  if (value.is_array()) return "[...]";
  std::string s = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return printable(s, 40);
}

}  // namespace mmembed::io
