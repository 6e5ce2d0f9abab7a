// Strict JSON parsing shared by the io readers. Internal: include only from src/io/*.cc so that
// the heavy nlohmann header stays out of the public io headers.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mmembed::io {

// Parses `text` as one JSON document. Rejects invalid UTF-8, syntax errors, trailing garbage,
// nesting deeper than `max_depth` and duplicate keys in any object (nlohmann would silently keep
// the last one). Throws FormatError "<source>: <what>".
nlohmann::json parse_json_strict(std::string_view text, const std::string& source,
                                 int max_depth = 64);

// "string", "integer", "number", "object"... for messages.
std::string json_type_name(const nlohmann::json& value);
// Short rendering of a value for messages ("3.5", "\"abc\"", "[...]").
std::string json_brief(const nlohmann::json& value);

}  // namespace mmembed::io
