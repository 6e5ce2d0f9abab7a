#include "data/manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string_view>
#include <system_error>

#include "core/file.h"
#include "core/output_file.h"
#include "mmembed/error.h"

namespace mmembed::data {
namespace {

constexpr std::size_t kMaxReported = 20;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string read_all(const fs::path& p) {
  std::string s = read_input_file(p.string(), kMaxTextDataFileBytes);
  if (s.size() >= 3 && s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);  // UTF-8 BOM
  return s;
}

std::string hex_byte(unsigned char c) {
  static const char* kDigits = "0123456789ABCDEF";
  return std::string("0x") + kDigits[c >> 4] + kDigits[c & 15];
}

// Every text a dataset gives (ids, paths, captions, labels) ends up in JSON outputs and in the
// tokenizer, so a dataset must be UTF-8: each line holding a malformed sequence is reported
// (file:line, the byte and its column), the same for JSONL, CSV and TSV, before anything runs.
void check_utf8_lines(const std::string& text, const std::string& name) {
  if (invalid_utf8_at(text) == std::string_view::npos) return;
  const std::string shown = escape_for_message(name);
  std::size_t count = 0;
  std::string msg;
  std::size_t line_no = 0;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    const std::string_view line(text.data() + start, end - start);
    if (const std::size_t at = invalid_utf8_at(line); at != std::string_view::npos) {
      if (++count <= kMaxReported) {
        msg += "\n  " + shown + ":" + std::to_string(line_no) + ": not valid UTF-8 (byte " +
               hex_byte(static_cast<unsigned char>(line[at])) + " at column " +
               std::to_string(at + 1) + ")";
      }
    }
    start = end + 1;
  }
  if (count > kMaxReported) msg += "\n  ... and " + std::to_string(count - kMaxReported) + " more";
  throw FormatError("invalid dataset " + shown + " (" + std::to_string(count) + " line" +
                    (count == 1 ? "" : "s") + " not valid UTF-8; datasets must be UTF-8 text):" +
                    msg);
}

// Collects validation problems and throws them together.
class Problems {
 public:
  explicit Problems(std::string name) : name_(std::move(name)) {}
  void add(std::size_t line, const std::string& what) {
    ++count_;
    if (list_.size() < kMaxReported)
      list_.push_back(line > 0 ? name_ + ":" + std::to_string(line) + ": " + what : name_ + ": " + what);
  }
  void throw_if_any() const {
    if (count_ == 0) return;
    std::string msg = "invalid dataset " + name_ + " (" + std::to_string(count_) + " problem" +
                      (count_ == 1 ? "" : "s") + "):";
    for (const auto& p : list_) msg += "\n  " + p;
    if (count_ > list_.size()) msg += "\n  ... and " + std::to_string(count_ - list_.size()) + " more";
    throw FormatError(msg);
  }

 private:
  std::string name_;
  std::vector<std::string> list_;
  std::size_t count_ = 0;
};

struct Columns {
  std::optional<std::size_t> id, image, text, label;
};

std::optional<std::string> column_kind(const std::string& header) {
  std::string h = lower(trim(header));
  if (h == "id" || h == "image" || h == "text" || h == "label") return h;
  if (h == "caption") return std::string("text");
  return std::nullopt;
}

// Items without ids get their row number, from 1 (the record's place among the items).
void number_items(Manifest& m) {
  for (std::size_t i = 0; i < m.items.size(); ++i) m.items[i].id = std::to_string(i + 1);
  m.ids_numbered = !m.items.empty();
}

void validate(Manifest& m, const ManifestOptions& o, bool has_image_col, bool has_text_col,
              bool has_id_col, Problems& problems);

// One text per line: the line number is the id; blank lines are skipped.
Manifest read_text_lines(const fs::path& path, const std::string& text, const ManifestOptions& o) {
  Manifest m;
  m.source = path;
  Problems problems(path.string());
  if (o.need_image) {
    problems.add(0, "a text file holds texts only (one per line), no images: embed it as texts "
                    "(--kind text)");
    problems.throw_if_any();
  }
  std::size_t line_no = 0;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    Item item;
    item.id = std::to_string(line_no);
    item.text = std::move(line);
    item.line = line_no;
    m.items.push_back(std::move(item));
  }
  m.ids_numbered = !m.items.empty();
  validate(m, o, false, true, true, problems);
  return m;
}

void validate(Manifest& m, const ManifestOptions& o, bool has_image_col, bool has_text_col,
              bool has_id_col, Problems& problems) {
  if (!has_id_col) problems.add(0, "missing column 'id'");
  if (o.need_image && !has_image_col) problems.add(0, "missing column 'image'");
  if (o.need_text && !has_text_col) problems.add(0, "missing column 'text' (or 'caption')");
  problems.throw_if_any();
  const fs::path base = m.source.has_parent_path() ? m.source.parent_path() : fs::path(".");
  std::map<std::string, std::size_t> seen;
  for (auto& item : m.items) {
    // Ids, captions, labels and paths are written into JSON (items.jsonl, errors.jsonl), which
    // cannot hold invalid UTF-8: refused here by line rather than failing the job's output.
    for (const auto& [field, value] : {std::pair<const char*, const std::string*>{"id", &item.id},
                                       {"image", &item.image},
                                       {"text", &item.text},
                                       {"label", &item.label}}) {
      if (!is_valid_utf8(*value)) {
        problems.add(item.line, std::string(field) + " is not valid UTF-8: '" +
                                    escape_for_message(*value, 80) + "'");
      }
    }
    if (item.id.empty()) {
      problems.add(item.line, "empty id");
    } else if (auto [it, fresh] = seen.emplace(item.id, item.line); !fresh) {
      problems.add(item.line, "duplicate id '" + item.id + "' (first on line " +
                                  std::to_string(it->second) + ")");
    }
    if (o.need_text && trim(item.text).empty())
      problems.add(item.line, "empty caption (text) for id '" + item.id + "'");
    if (o.need_image && trim(item.image).empty())
      problems.add(item.line, "empty image for id '" + item.id + "'");
    if (!item.image.empty() && !is_url(item.image)) {
      fs::path p = item.image;
      if (p.is_relative()) p = base / p;
      std::error_code ec;
      p = fs::absolute(p, ec).lexically_normal();
      if (o.check_paths && !fs::exists(p, ec)) {
        problems.add(item.line, "image '" + escape_for_message(item.image) +
                                    "' not found (looked at " + escape_for_message(p.string()) +
                                    ")");
      } else if (o.check_paths && !special_file_kind(p.string()).empty()) {
        problems.add(item.line, "image '" + escape_for_message(item.image) + "' " +
                                    special_file_kind(p.string()) + ", expected a regular file");
      }
      item.image = p.string();
    }
  }
  problems.throw_if_any();
}

std::string json_scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_null()) return "";
  return v.dump();
}

Manifest read_jsonl(const fs::path& path, const std::string& text, const ManifestOptions& o) {
  Manifest m;
  m.source = path;
  Problems problems(path.string());
  bool any_id = false, any_image = false, any_text = false, any_id_field = false;
  std::vector<std::size_t> missing_id_lines;
  std::size_t line_no = 0, start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    ++line_no;
    start = end + 1;
    if (trim(line).empty()) {
      if (end == text.size()) break;
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      problems.add(line_no, std::string("not valid JSON: ") + e.what());
      continue;
    }
    if (!j.is_object()) {
      problems.add(line_no, "expected a JSON object");
      continue;
    }
    Item item;
    item.line = line_no;
    for (auto& [key, value] : j.items()) {
      auto kind = column_kind(key);
      if (!kind) continue;
      if (!(value.is_string() || value.is_number_integer() || value.is_null())) {
        problems.add(line_no, "field '" + key + "' must be a string");
        continue;
      }
      std::string v = json_scalar(value);
      if (*kind == "id") {
        item.id = v;
        any_id = true;
      } else if (*kind == "image") {
        item.image = v;
        any_image = true;
      } else if (*kind == "text") {
        item.text = v;
        any_text = true;
      } else {
        item.label = v;
        m.has_label = true;
      }
    }
    if (j.contains("id")) any_id_field = true;
    else missing_id_lines.push_back(line_no);
    if (o.need_image && !j.contains("image")) problems.add(line_no, "missing field 'image'");
    if (o.need_text && !j.contains("text") && !j.contains("caption"))
      problems.add(line_no, "missing field 'text'");
    m.items.push_back(std::move(item));
  }
  // No object has an id: the items are numbered by row. Some have one and some not: refused.
  if (any_id_field) {
    for (std::size_t l : missing_id_lines) problems.add(l, "missing field 'id'");
  } else {
    number_items(m);
    any_id = true;
  }
  problems.throw_if_any();
  if (m.items.empty()) any_id = any_image = any_text = true;  // empty file: nothing to check
  validate(m, o, any_image || !o.need_image, any_text || !o.need_text, any_id, problems);
  return m;
}

Manifest read_delimited(const fs::path& path, const std::string& text, char delim,
                        const ManifestOptions& o, bool id_optional = false) {
  Manifest m;
  m.source = path;
  auto records = parse_delimited(text, delim, path.string());
  Problems problems(path.string());
  if (records.empty()) {
    problems.add(0, "empty file: expected a header row with id, image, text[, label]");
    problems.throw_if_any();
  }
  Columns cols;
  const Record& header = records.front();
  for (std::size_t c = 0; c < header.fields.size(); ++c) {
    auto kind = column_kind(header.fields[c]);
    if (!kind) continue;
    std::optional<std::size_t>* slot = *kind == "id"      ? &cols.id
                                       : *kind == "image" ? &cols.image
                                       : *kind == "text"  ? &cols.text
                                                          : &cols.label;
    if (*slot) {
      problems.add(header.line, "column '" + header.fields[c] + "' appears twice");
    }
    *slot = c;
  }
  m.has_label = cols.label.has_value();
  for (std::size_t r = 1; r < records.size(); ++r) {
    const Record& rec = records[r];
    if (rec.fields.size() == 1 && trim(rec.fields[0]).empty()) continue;  // blank line
    if (rec.fields.size() != header.fields.size()) {
      problems.add(rec.line, "expected " + std::to_string(header.fields.size()) + " fields, found " +
                                 std::to_string(rec.fields.size()));
      continue;
    }
    Item item;
    item.line = rec.line;
    if (cols.id) item.id = rec.fields[*cols.id];
    if (cols.image) item.image = trim(rec.fields[*cols.image]);
    if (cols.text) item.text = rec.fields[*cols.text];
    if (cols.label) item.label = rec.fields[*cols.label];
    m.items.push_back(std::move(item));
  }
  problems.throw_if_any();
  if (id_optional && !cols.id) {
    for (auto& item : m.items) item.id = item.image;
  } else if (!cols.id) {
    number_items(m);
  }
  validate(m, o, cols.image.has_value(), cols.text.has_value(), true, problems);
  return m;
}

ManifestFormat format_of(const fs::path& path) {
  std::string ext = lower(path.extension().string());
  if (ext == ".jsonl" || ext == ".ndjson") return ManifestFormat::kJsonl;
  if (ext == ".csv") return ManifestFormat::kCsv;
  if (ext == ".tsv" || ext == ".tab") return ManifestFormat::kTsv;
  if (ext == ".txt" || ext == ".text") return ManifestFormat::kText;
  throw InvalidArgument(path.string() +
                        ": unknown manifest format (expected .jsonl, .csv, .tsv or .txt (one text "
                        "per line), a folder of images, or - for texts on standard input)");
}

bool is_image_name(const fs::path& p) {
  std::string ext = lower(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".gif" ||
         ext == ".bmp";
}

Manifest read_with_format(const fs::path& path, const ManifestOptions& o, bool id_optional) {
  ManifestFormat f = o.format != ManifestFormat::kAuto ? o.format
                     : path == "-"                     ? ManifestFormat::kText
                                                       : format_of(path);
  std::string text = path == "-" ? read_standard_input(kMaxStandardInputBytes) : read_all(path);
  if (path == "-" && text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  check_utf8_lines(text, path == "-" ? "standard input" : path.string());
  if (f == ManifestFormat::kText) return read_text_lines(path, text, o);
  if (f == ManifestFormat::kJsonl) return read_jsonl(path, text, o);
  return read_delimited(path, text, f == ManifestFormat::kCsv ? ',' : '\t', o, id_optional);
}

}  // namespace

bool is_url(const std::string& s) {
  auto p = s.find("://");
  if (p == std::string::npos || p == 0) return false;
  return std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(p), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

std::vector<Record> parse_delimited(const std::string& text, char delim, const std::string& name) {
  std::vector<Record> out;
  std::size_t i = 0, line = 1;
  const std::size_t n = text.size();
  while (i < n) {
    Record rec;
    rec.line = line;
    std::string field;
    bool end_of_record = false;
    while (!end_of_record) {
      field.clear();
      if (i < n && text[i] == '"') {
        std::size_t open_line = line;
        ++i;
        bool closed = false;
        while (i < n) {
          char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n') ++line;
          field.push_back(c);
          ++i;
        }
        if (!closed)
          throw FormatError(name + ":" + std::to_string(open_line) + ": unterminated quoted field");
        if (i < n && text[i] != delim && text[i] != '\n' && text[i] != '\r')
          throw FormatError(name + ":" + std::to_string(line) +
                            ": unexpected character after a closing quote (quotes inside a "
                            "quoted field are written \"\")");
      } else {
        while (i < n && text[i] != delim && text[i] != '\n' && text[i] != '\r') field.push_back(text[i++]);
      }
      rec.fields.push_back(field);
      if (i >= n) {
        end_of_record = true;
      } else if (text[i] == delim) {
        ++i;
      } else {
        if (text[i] == '\r') ++i;
        if (i < n && text[i] == '\n') ++i;
        ++line;
        end_of_record = true;
      }
    }
    out.push_back(std::move(rec));
  }
  return out;
}

Manifest read_manifest(const fs::path& path, const ManifestOptions& options) {
  std::error_code ec;
  if (path == "-") return read_with_format(path, options, /*id_optional=*/false);
  if (!fs::exists(path, ec)) {
    throw IoError(escape_for_message(path.string()) + ": no such manifest file");
  }
  return read_with_format(path, options, /*id_optional=*/false);
}

Manifest read_image_folder(const fs::path& dir, const ManifestOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir.string() + ": not a folder");
  Manifest m;
  m.source = dir;
  std::vector<fs::path> images;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec) && is_image_name(it->path())) images.push_back(it->path());
  }
  if (ec) throw IoError(dir.string() + ": cannot list: " + ec.message());
  std::sort(images.begin(), images.end());

  fs::path captions = options.captions_file;
  if (captions.empty()) {
    for (const char* name : {"captions.tsv", "captions.csv", "captions.jsonl"}) {
      if (fs::is_regular_file(dir / name, ec)) {
        captions = dir / name;
        break;
      }
    }
  }
  std::map<std::string, std::string> caption_of;  // absolute normalized path -> caption
  if (!captions.empty()) {
    ManifestOptions co;
    co.need_text = true;
    co.need_image = true;
    co.check_paths = true;
    Manifest cm = read_with_format(captions, co, /*id_optional=*/true);
    for (const auto& item : cm.items) caption_of[item.image] = item.text;
  }

  Problems problems(dir.string());
  for (const auto& p : images) {
    Item item;
    fs::path rel = p.lexically_relative(dir);
    item.id = (rel.parent_path() / rel.stem()).generic_string();
    item.image = fs::absolute(p, ec).lexically_normal().string();
    fs::path sidecar = p;
    sidecar.replace_extension(".txt");
    if (auto it = caption_of.find(item.image); it != caption_of.end()) {
      item.text = it->second;
    } else if (fs::is_regular_file(sidecar, ec)) {
      item.text = trim(read_all(sidecar));
      if (const std::size_t at = invalid_utf8_at(item.text); at != std::string_view::npos) {
        problems.add(0, "caption file " + escape_for_message(sidecar.string()) +
                            ": not valid UTF-8 (byte " +
                            hex_byte(static_cast<unsigned char>(item.text[at])) + " at offset " +
                            std::to_string(at) + ")");
      }
    }
    if (invalid_utf8_at(rel.string()) != std::string_view::npos) {
      problems.add(0, "file name of " + escape_for_message(p.string()) +
                          " is not valid UTF-8 (ids and labels come from file and folder names)");
    }
    if (rel.has_parent_path() && !rel.parent_path().empty()) {
      item.label = rel.parent_path().generic_string();
      m.has_label = true;
    }
    if (options.need_text && trim(item.text).empty())
      problems.add(0, "no caption for " + rel.generic_string() + " (expected " +
                          sidecar.filename().string() + " or an entry in a captions file)");
    m.items.push_back(std::move(item));
  }
  if (m.items.empty()) problems.add(0, "no images (jpg, jpeg, png, webp, gif, bmp) found");
  std::map<std::string, std::size_t> seen;
  for (const auto& item : m.items) {
    if (!seen.emplace(item.id, 0).second)
      problems.add(0, "two images share the id '" + item.id + "' (same name, different extension)");
  }
  problems.throw_if_any();
  return m;
}

Manifest read_dataset(const fs::path& path, const ManifestOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return read_image_folder(path, options);
  return read_manifest(path, options);
}

void write_manifest_jsonl(const fs::path& path, const std::vector<Item>& items, bool with_label) {
  std::string out;
  for (const auto& item : items) {
    nlohmann::ordered_json j;
    j["id"] = item.id;
    j["image"] = item.image;
    j["text"] = item.text;
    if (with_label) j["label"] = item.label;
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  write_output_file(path.string(), out, /*allow_stdout=*/false);
}

}  // namespace mmembed::data
