#include "io/matrix.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "core/check.h"
#include "core/file.h"
#include "core/output_file.h"
#include "core/finite.h"
#include "io/bytes.h"
#include "io/json_internal.h"
#include "io/mapped_file.h"

namespace mmembed::io {
namespace {

std::string read_all(const std::string& path) {
  return read_input_file(path, kMaxTextDataFileBytes);
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

void check_finite(const std::string& where, float v, const MatrixReadOptions& options) {
  MMEMBED_CHECK(options.allow_non_finite || std::isfinite(v), FormatError, where, ": value ",
                v, " is not finite (NaN or Inf)");
}

// --- .npy header: a Python dict literal with exactly descr, fortran_order and shape ---------

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<std::int64_t> shape;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& path) : s_(s), path_(path) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    skip_ws();
    while (peek() != '}') {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        MMEMBED_CHECK(!have_descr, FormatError, path_, ": .npy header repeats 'descr'");
        h.descr = string_literal(), have_descr = true;
      } else if (key == "fortran_order") {
        MMEMBED_CHECK(!have_order, FormatError, path_, ": .npy header repeats 'fortran_order'");
        h.fortran = boolean(), have_order = true;
      } else if (key == "shape") {
        MMEMBED_CHECK(!have_shape, FormatError, path_, ": .npy header repeats 'shape'");
        h.shape = tuple(), have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') ++pos_, skip_ws();
      else if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skip_ws();
    MMEMBED_CHECK(pos_ == s_.size(), FormatError, path_, ": .npy header has trailing characters");
    MMEMBED_CHECK(have_descr && have_order && have_shape, FormatError, path_,
                  ": .npy header lacks one of 'descr', 'fortran_order', 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw FormatError(str_cat(path_, ": malformed .npy header at offset ", pos_, ": ", what));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n')) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
    skip_ws();
  }
  std::string string_literal() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a string");
    const std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    if (s_.substr(pos_, 4) == "True") return pos_ += 4, true;
    if (s_.substr(pos_, 5) == "False") return pos_ += 5, false;
    fail("expected True or False");
  }
  std::vector<std::int64_t> tuple() {
    expect('(');
    std::vector<std::int64_t> dims;
    while (peek() != ')') {
      std::int64_t v = 0;
      const auto [p, ec] = std::from_chars(s_.data() + pos_, s_.data() + s_.size(), v);
      if (ec != std::errc() || v < 0) fail("expected a non-negative integer dimension");
      pos_ = p - s_.data();
      dims.push_back(v);
      skip_ws();
      if (peek() == ',') ++pos_, skip_ws();
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    ++pos_;
    return dims;
  }

  std::string_view s_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

// Parses one number spanning all of `field` (surrounding spaces allowed).
std::string_view trim_field(std::string_view field) {
  while (!field.empty() && (field.front() == ' ' || field.front() == '\r')) field.remove_prefix(1);
  while (!field.empty() && (field.back() == ' ' || field.back() == '\r')) field.remove_suffix(1);
  return field;
}

bool parse_number(std::string_view field, double* out) {
  field = trim_field(field);
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  if (field.empty()) return false;
  double v = 0;
  const auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec == std::errc::result_out_of_range && p == field.data() + field.size()) {
    // Beyond double: strtod says which way (+-HUGE_VAL, or 0 / a denormal for 1e-400).
    v = std::strtod(std::string(field).c_str(), nullptr);
  } else if (ec != std::errc() || p != field.data() + field.size()) {
    return false;
  }
  *out = v;
  return true;
}

// A number written in the file that float32 cannot hold (1e39) would become Inf: refused with
// what it is, unless non-finite values are allowed. Values too small for float32 round to 0 or
// a denormal, as numpy's float32 does.
float to_float32(const std::string& where, std::string_view text, double v,
                 const MatrixReadOptions& options) {
  // "inf" and "nan" are spelled with i or n; a finite decimal (1e39, 1e400) never is.
  const bool spelled_non_finite = text.find_first_of("iInN") != std::string_view::npos;
  MMEMBED_CHECK(options.allow_non_finite || spelled_non_finite ||
                    std::fabs(v) <= static_cast<double>(std::numeric_limits<float>::max()),
                FormatError, where, ": value ", printable(std::string(trim_field(text)), 40),
                " is out of float32 range (largest magnitude ",
                std::numeric_limits<float>::max(), ")");
  return static_cast<float>(v);
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = line.find(sep, start);
    out.push_back(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

namespace {

// The layout of a mapped .npy file, its header validated (see matrix.h).
struct NpyLayout {
  std::int64_t rows = 0, cols = 0;
  std::size_t item = 0;  // 4 or 8 bytes
  bool swap = false, fortran = false;
  std::uint64_t data_start = 0;
};

NpyLayout parse_npy(const MappedFile& file, const std::string& path) {
  const std::uint8_t* b = file.data();
  const std::uint64_t file_size = file.size();
  MMEMBED_CHECK(file_size >= 10 && std::memcmp(b, "\x93NUMPY", 6) == 0, FormatError, path,
                ": not a .npy file (no \\x93NUMPY magic)");
  const int major = b[6];
  MMEMBED_CHECK(major >= 1 && major <= 3, FormatError, path, ": unsupported .npy version ", major,
                ".", int(b[7]));
  std::uint64_t header_len, header_start;
  if (major == 1) {
    header_len = read_le<std::uint16_t>(b + 8), header_start = 10;
  } else {
    MMEMBED_CHECK(file_size >= 12, FormatError, path, ": truncated .npy header");
    header_len = read_le<std::uint32_t>(b + 8), header_start = 12;
  }
  MMEMBED_CHECK(range_ok(header_start, header_len, file_size), FormatError, path,
                ": .npy header length ", header_len, " runs past the end of the file");
  std::string_view header(reinterpret_cast<const char*>(b) + header_start, header_len);
  while (!header.empty() && (header.back() == '\n' || header.back() == ' ')) header.remove_suffix(1);
  const NpyHeader h = HeaderParser(header, path).parse();

  bool swap = false;
  std::size_t item = 0;
  if (h.descr == "<f4" || h.descr == "=f4") item = 4;
  else if (h.descr == "<f8" || h.descr == "=f8") item = 8;
  else if (h.descr == ">f4") item = 4, swap = true;
  else if (h.descr == ">f8") item = 8, swap = true;
  MMEMBED_CHECK(h.descr.find('O') == std::string::npos, FormatError, path,
                ": object arrays ('", h.descr, "') are refused (they need pickle)");
  MMEMBED_CHECK(item != 0, Unsupported, path, ": dtype '", h.descr,
                "' is not supported (float32 or float64 only)");
  MMEMBED_CHECK(h.shape.size() == 2, FormatError, path, ": expected a 2-D array (points x dims), got ",
                h.shape.size(), "-D");
  const std::int64_t rows = h.shape[0], cols = h.shape[1];
  MMEMBED_CHECK(cols == 0 || rows <= INT64_MAX / cols / static_cast<std::int64_t>(item), FormatError,
                path, ": shape too large");
  const std::uint64_t data_start = header_start + header_len;
  const std::uint64_t data_len = static_cast<std::uint64_t>(rows * cols) * item;
  MMEMBED_CHECK(file_size - data_start == data_len, FormatError, path, ": shape (", rows, ", ",
                cols, ") needs ", data_len, " data bytes, the file has ", file_size - data_start);
  return {rows, cols, item, swap, h.fortran, data_start};
}

}  // namespace

Matrix read_npy(const std::string& path, const MatrixReadOptions& options) {
  // Mapped, not read into a string: the data are copied once, straight into the matrix.
  const std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  const NpyLayout layout = parse_npy(*file, path);
  const std::int64_t rows = layout.rows, cols = layout.cols;
  const std::size_t item = layout.item;
  const bool swap = layout.swap;
  const std::uint64_t data_len = static_cast<std::uint64_t>(rows * cols) * item;

  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(rows * cols);
  static_assert(std::endian::native == std::endian::little, "the .npy fast path reads '<f4'");
  const std::uint8_t* p = file->data() + layout.data_start;
  if (item == 4 && !swap && !layout.fortran) {
    if (data_len > 0) std::memcpy(m.data.data(), p, data_len);  // the common case, in one copy
  } else {
    for (std::int64_t e = 0; e < rows * cols; ++e) {
      std::uint8_t tmp[8];
      std::memcpy(tmp, p + e * item, item);
      if (swap) std::reverse(tmp, tmp + item);
      float v;
      if (item == 4) {
        std::memcpy(&v, tmp, 4);
      } else {
        double dv;
        std::memcpy(&dv, tmp, 8);
        v = static_cast<float>(dv);
      }
      // Fortran order: element e is (e % rows, e / rows).
      const bool f = layout.fortran;
      const std::int64_t r = f ? e % rows : e / cols, c = f ? e / rows : e % cols;
      m.data[r * cols + c] = v;
    }
  }
  if (!options.allow_non_finite && !all_finite(m.data.data(), rows * cols)) {
    for (std::int64_t e = 0; e < rows * cols; ++e) {
      if (!std::isfinite(m.data[e])) {
        check_finite(str_cat(path, ": row ", e / cols, ", column ", e % cols), m.data[e], options);
      }
    }
  }
  return m;
}

Matrix read_delimited(const std::string& path, char separator, const MatrixReadOptions& options) {
  const std::string text = read_all(path);
  Matrix m;
  std::int64_t line_no = 0, first_line = 0;
  std::size_t pos = 0;
  std::vector<float> row;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const auto fields = split(line, separator);
    row.clear();
    bool numeric = true;
    std::size_t bad = 0;
    for (std::size_t f = 0; f < fields.size(); ++f) {
      double v;
      if (!parse_number(fields[f], &v)) {
        if (numeric) bad = f;
        numeric = false;
        continue;
      }
      row.push_back(
          to_float32(str_cat(path, ": line ", line_no, ", column ", f + 1), fields[f], v, options));
    }
    if (!numeric) {
      if (m.rows == 0 && first_line == 0) {  // a header
        first_line = -1;
        continue;
      }
      throw FormatError(str_cat(path, ": line ", line_no, ", column ", bad + 1, ": '",
                                printable(std::string(fields[bad]), 40), "' is not a number"));
    }
    if (m.rows == 0) {
      m.cols = static_cast<std::int64_t>(row.size());
      first_line = line_no;
    } else {
      MMEMBED_CHECK(static_cast<std::int64_t>(row.size()) == m.cols, FormatError, path, ": line ",
                    line_no, ": ", row.size(), " values, expected ", m.cols, " (as line ",
                    first_line, ")");
    }
    for (std::size_t c = 0; c < row.size(); ++c) {
      check_finite(str_cat(path, ": line ", line_no, ", column ", c + 1), row[c], options);
    }
    m.data.insert(m.data.end(), row.begin(), row.end());
    ++m.rows;
  }
  MMEMBED_CHECK(m.rows > 0, FormatError, path, ": no rows of numbers");
  return m;
}

Matrix read_jsonl(const std::string& path, const MatrixReadOptions& options) {
  const std::string text = read_all(path);
  Matrix m;
  std::int64_t line_no = 0, first_line = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = str_cat(path, ": line ", line_no);
    const nlohmann::json j = parse_json_strict(line, where);
    const nlohmann::json* vec = &j;
    if (j.is_object()) {
      MMEMBED_CHECK(j.contains(options.field), FormatError, where, ": no field '", options.field,
                    "' (choose it with --field)");
      vec = &j[options.field];
    }
    MMEMBED_CHECK(vec->is_array(), FormatError, where, ": expected an array of numbers, got ",
                  json_type_name(*vec));
    const std::int64_t cols = static_cast<std::int64_t>(vec->size());
    if (m.rows == 0) m.cols = cols, first_line = line_no;
    MMEMBED_CHECK(cols == m.cols, FormatError, where, ": ", cols, " values, expected ", m.cols,
                  " (as line ", first_line, ")");
    for (std::int64_t c = 0; c < cols; ++c) {
      const nlohmann::json& v = (*vec)[c];
      MMEMBED_CHECK(v.is_number(), FormatError, where, ", element ", c, ": expected a number, got ",
                    json_brief(v));
      const float f = to_float32(str_cat(where, ", element ", c), v.dump(), v.get<double>(),
                                 options);
      check_finite(str_cat(where, ", element ", c), f, options);
      m.data.push_back(f);
    }
    ++m.rows;
  }
  MMEMBED_CHECK(m.rows > 0, FormatError, path, ": no rows");
  return m;
}

Matrix read_matrix(const std::string& path, const MatrixReadOptions& options) {
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return read_npy(path, options);
  if (ext == ".csv") return read_delimited(path, ',', options);
  if (ext == ".tsv" || ext == ".tab") return read_delimited(path, '\t', options);
  if (ext == ".jsonl" || ext == ".ndjson") return read_jsonl(path, options);
  throw Unsupported(str_cat(path, ": unknown matrix format '", ext,
                            "' (expected .npy, .csv, .tsv or .jsonl)"));
}

MappedMatrix map_npy(const std::string& path) {
  MappedMatrix m;
  m.file = MappedFile::open(path);
  const NpyLayout layout = parse_npy(*m.file, path);
  MMEMBED_CHECK(layout.item == 4 && !layout.swap && !layout.fortran, FormatError, path,
                ": expected little-endian float32 in C order ('<f4') to map in place");
  MMEMBED_CHECK(layout.data_start % alignof(float) == 0, FormatError, path,
                ": the data do not start at a float boundary");
  m.rows = layout.rows;
  m.cols = layout.cols;
  m.data = reinterpret_cast<const float*>(m.file->data() + layout.data_start);
  return m;
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_output_file(path, contents, /*allow_stdout=*/false);
}

void write_npy(const std::string& path, const float* data, std::int64_t rows, std::int64_t cols) {
  MMEMBED_CHECK(rows >= 0 && cols >= 0, InvalidArgument, path, ": negative shape");
  std::string header = str_cat("{'descr': '<f4', 'fortran_order': False, 'shape': (", rows, ", ",
                               cols, "), }");
  // magic (6) + version (2) + length (2) + header + '\n', padded with spaces to a multiple of 64.
  const std::size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  std::string head("\x93NUMPY\x01\x00", 8);
  head.push_back(static_cast<char>(header.size() & 0xff));
  head.push_back(static_cast<char>(header.size() >> 8));
  head += header;
  static_assert(std::endian::native == std::endian::little, "write_npy writes '<f4' natively");
  OutputFile out = OutputFile::open(path, /*allow_stdout=*/false);
  out.write(head);
  if (rows * cols > 0)  // data may be null for an empty matrix
    out.write(data, static_cast<std::size_t>(rows * cols) * sizeof(float));
  out.commit();
}

}  // namespace mmembed::io
