#include "io/json_internal.h"

#include <optional>
#include <vector>

#include "core/check.h"
#include "core/file.h"
#include "io/bytes.h"

namespace mmembed::io {

namespace {

using nlohmann::json;

// Builds the document from SAX events, refusing duplicate keys and deep nesting as it goes.
// Not nlohmann's parse() with a callback: its callback parser scans the whole enclosing object
// for discarded values at the end of every nested object, which made a safetensors header with
// n tensors (n objects in one object) take O(n^2) time (issue #18: 40,000 tensors took ~40 s).
// Here every event costs O(log n) (the std::map insert of a key).
class StrictDomBuilder : public nlohmann::json_sax<json> {
 public:
  explicit StrictDomBuilder(int max_depth) : max_depth_(max_depth) {}

  json& root() { return root_; }
  const std::string& problem() const { return problem_; }

  bool null() override { return put(json(nullptr)); }
  bool boolean(bool v) override { return put(json(v)); }
  bool number_integer(number_integer_t v) override { return put(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return put(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return put(json(v)); }
  bool string(string_t& v) override { return put(json(std::move(v))); }
  bool binary(binary_t& v) override { return put(json::binary(std::move(v))); }

  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    json& object = *stack_.back();
    auto [it, inserted] = object.get_ref<json::object_t&>().try_emplace(k, nullptr);
    if (!inserted) {
      problem_ = str_cat("duplicate key '", printable(k), "' in JSON object");
      return false;
    }
    slot_ = &it->second;
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    problem_ = str_cat("invalid JSON (", e.what(), ")");
    return false;
  }

 private:
  // Where the next value goes: the root, the slot of the last key, or the end of an array.
  json* place(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      auto& array = parent.get_ref<json::array_t&>();
      array.push_back(std::move(v));
      return &array.back();
    }
    *slot_ = std::move(v);
    return slot_;
  }
  bool put(json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(json&& container) {
    if (static_cast<int>(stack_.size()) >= max_depth_) {
      problem_ = str_cat("JSON nested deeper than ", max_depth_, " levels");
      return false;
    }
    stack_.push_back(place(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  int max_depth_;
  json root_;
  // Open containers. Pointers stay valid: an array's elements move only when it grows, and a
  // container on the stack is always the last element of its parent, which no longer grows
  // until the container is closed.
  std::vector<json*> stack_;
  json* slot_ = nullptr;
  std::string problem_;
};

}  // namespace

nlohmann::json parse_json_strict(std::string_view text, const std::string& source,
                                 int max_depth) {
  if (!is_valid_utf8(text)) throw FormatError(str_cat(source, ": invalid UTF-8 in JSON text"));
  StrictDomBuilder builder(max_depth);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &builder, json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw FormatError(str_cat(source, ": invalid JSON (", e.what(), ")"));
  }
  if (!ok) throw FormatError(str_cat(source, ": ", builder.problem()));
  return std::move(builder.root());
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
