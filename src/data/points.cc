#include "data/points.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/file.h"
#include "data/manifest.h"

namespace mmembed::data {
namespace {

namespace fs = std::filesystem;

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// The lines of `text`: split at '\n', a trailing '\r' removed, the empty piece after a final
// newline dropped.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    pos = end + 1;
  }
  return lines;
}


bool looks_like_json_object(const std::string& line) {
  std::size_t a = 0, b = line.size();
  while (a < b && std::isspace(static_cast<unsigned char>(line[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(line[b - 1]))) --b;
  return b - a >= 2 && line[a] == '{' && line[b - 1] == '}';
}

// A label from a JSON value: a string as is, a number or boolean as JSON writes it; null or a
// missing field is "".
std::string label_of(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return "";
}

std::string text_field(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void check_count(const std::string& path, std::size_t got, std::int64_t n, const char* what) {
  MMEMBED_CHECK(static_cast<std::int64_t>(got) == n, InvalidArgument, path, ": ", got, " ", what,
                " for ", n, " points (one per point, in the points' order)");
}

}  // namespace

void for_each_json_object(const std::string& text, const std::string& name,
                          const std::function<void(std::size_t, const nlohmann::json&)>& fn) {
  const std::vector<std::string> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(str_cat(name, ": line ", i + 1, ": not JSON (", e.what(), ")"));
    }
    MMEMBED_CHECK(obj.is_object(), FormatError, name, ": line ", i + 1,
                  ": expected a JSON object");
    fn(i + 1, obj);
  }
}

bool is_embedding_folder(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / "embeddings.npy", ec) &&
         fs::is_regular_file(dir / "items.jsonl", ec);
}

EmbeddingFolder read_embedding_folder(const fs::path& dir, const io::MatrixReadOptions& options) {
  std::error_code ec;
  MMEMBED_CHECK(fs::is_directory(dir, ec), IoError, dir.string(), ": not a folder");
  MMEMBED_CHECK(fs::exists(dir / "run.json", ec) || !fs::exists(dir / ".mmembed-partial", ec),
                IoError, dir.string(), ": the embedding job has not finished (no run.json; "
                "rerun the same 'mmembed embed --input' to complete it)");
  MMEMBED_CHECK(is_embedding_folder(dir), IoError, dir.string(), ": not an 'embed --input' output "
                "folder (it needs embeddings.npy and items.jsonl)");
  EmbeddingFolder f;
  f.dir = dir;
  f.matrix = io::read_npy((dir / "embeddings.npy").string(), options);
  const std::string items_path = (dir / "items.jsonl").string();
  const std::string items_text = read_input_file(items_path, kMaxTextDataFileBytes);
  const std::size_t n = static_cast<std::size_t>(f.matrix.rows);
  std::vector<std::string> ids(n), labels(n), texts(n), images(n);
  std::vector<bool> seen(n, false);
  bool any_label = false, any_text = false, any_image = false;
  std::size_t next_row = 0;
  for_each_json_object(items_text, items_path, [&](std::size_t line, const nlohmann::json& obj) {
    std::size_t row = next_row;
    if (const auto it = obj.find("row"); it != obj.end()) {
      MMEMBED_CHECK(it->is_number_unsigned(), FormatError, items_path, ": line ", line,
                    ": \"row\" must be a non-negative integer");
      row = it->get<std::size_t>();
    }
    MMEMBED_CHECK(row < n, FormatError, items_path, ": line ", line, ": row ", row,
                  " but embeddings.npy has ", n, " rows");
    MMEMBED_CHECK(!seen[row], FormatError, items_path, ": line ", line, ": row ", row,
                  " is described twice");
    seen[row] = true;
    next_row = row + 1;
    ids[row] = text_field(obj, "id");
    if (ids[row].empty()) ids[row] = std::to_string(row);
    if (const auto it = obj.find("label"); it != obj.end()) labels[row] = label_of(*it);
    texts[row] = text_field(obj, "text");
    images[row] = text_field(obj, "image");
    any_label |= !labels[row].empty();
    any_text |= !texts[row].empty();
    any_image |= !images[row].empty();
  });
  const auto missing = std::find(seen.begin(), seen.end(), false);
  MMEMBED_CHECK(missing == seen.end(), FormatError, items_path, ": row ",
                missing - seen.begin(), " of embeddings.npy is not described (", n,
                " rows, every one needs its line)");
  f.points.ids = std::move(ids);
  if (any_label) f.points.labels = std::move(labels);
  if (any_text) f.points.texts = std::move(texts);
  if (any_image) f.points.images = std::move(images);
  return f;
}

std::vector<std::string> read_labels(const std::string& path, std::int64_t n,
                                     const std::string& field) {
  const std::string ext = lower_extension(path);
  const std::string text = read_input_file(path, kMaxTextDataFileBytes);
  std::vector<std::string> labels;
  if (ext == ".jsonl" || ext == ".ndjson") {
    for_each_json_object(text, path, [&](std::size_t line, const nlohmann::json& obj) {
      const auto it = obj.find(field);
      MMEMBED_CHECK(it != obj.end(), FormatError, path, ": line ", line, ": no field \"",
                    escape_for_message(field), "\" (--label-field)");
      MMEMBED_CHECK(!it->is_object() && !it->is_array(), FormatError, path, ": line ", line,
                    ": field \"", escape_for_message(field), "\" is not a string or number");
      labels.push_back(label_of(*it));
    });
    check_count(path, labels.size(), n, "labels");
    return labels;
  }
  if (ext == ".csv" || ext == ".tsv") {
    const std::vector<Record> records = parse_delimited(text, ext == ".csv" ? ',' : '\t', path);
    MMEMBED_CHECK(!records.empty(), FormatError, path, ": empty file (expected a header line with "
                  "a column named \"", escape_for_message(field), "\")");
    const std::vector<std::string>& header = records[0].fields;
    const auto col = std::find(header.begin(), header.end(), field);
    MMEMBED_CHECK(col != header.end(), FormatError, path, ": no column \"",
                  escape_for_message(field), "\" in the header line (--label-field)");
    const std::size_t c = static_cast<std::size_t>(col - header.begin());
    for (std::size_t r = 1; r < records.size(); ++r) {
      const Record& rec = records[r];
      if (rec.fields.size() == 1 && rec.fields[0].empty()) continue;  // blank line
      MMEMBED_CHECK(rec.fields.size() == header.size(), FormatError, path, ": line ", rec.line,
                    ": ", rec.fields.size(), " fields, expected ", header.size());
      labels.push_back(rec.fields[c]);
    }
    check_count(path, labels.size(), n, "labels");
    return labels;
  }
  labels = split_lines(text);
  if (!labels.empty()) {
    const bool all_json = std::all_of(labels.begin(), labels.end(), looks_like_json_object);
    MMEMBED_CHECK(!all_json, FormatError, path, ": every line is a JSON object; labels from "
                  "JSON Lines come from a file named .jsonl (its field \"",
                  escape_for_message(field), "\", --label-field)");
  }
  check_count(path, labels.size(), n, "lines");
  return labels;
}

}  // namespace mmembed::data
