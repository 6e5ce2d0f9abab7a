// Embedding matrices on disk: read .npy, CSV/TSV and JSONL into a float matrix; write .npy.
//
//   io::Matrix m = io::read_matrix("emb.npy");          // by extension
//   io::Matrix j = io::read_matrix("emb.jsonl", {.field = "vector"});
//   io::write_npy("out.npy", m.data.data(), m.rows, m.cols);   // atomic: temp file + rename
//
// Formats:
//  - .npy (versions 1-3): dtype float32 or float64 ('<f4', '<f8'; big-endian '>f4', '>f8' are
//    byte-swapped), C or Fortran order, 2-D shape (rows, cols). The header is validated strictly
//    (keys descr, fortran_order and shape only; the data size must match the file size); object
//    arrays, other dtypes and other ranks are refused. float64 is rounded to float32.
//  - .csv / .tsv (comma / tab): one row per line, every line the same number of values; a first
//    line with any non-numeric field is a header and skipped; blank lines are skipped.
//  - .jsonl / .ndjson: one JSON value per line: an array of numbers, or an object whose `field`
//    is one.
// Errors (FormatError, IoError) name the file and the row (0-based for .npy; "line N", 1-based,
// for text) and the problem: NaN or Inf (unless allow_non_finite), ragged rows, bad numbers,
// empty files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mmembed::io {

struct Matrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<float> data;  // [rows, cols] row-major
};

struct MatrixReadOptions {
  std::string field = "embedding";  // JSONL: the object key holding the vector
  bool allow_non_finite = false;
};

Matrix read_matrix(const std::string& path, const MatrixReadOptions& options = {});
Matrix read_npy(const std::string& path, const MatrixReadOptions& options = {});
// A float32 C-order .npy (what write_npy writes) mapped read-only, not copied: data points into
// the mapping, which lives as long as `file`. The header is validated as read_npy does; other
// dtypes and Fortran order are refused (FormatError); the values are not checked.
class MappedFile;
struct MappedMatrix {
  std::shared_ptr<const MappedFile> file;
  const float* data = nullptr;  // [rows, cols] row-major
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};
MappedMatrix map_npy(const std::string& path);
Matrix read_delimited(const std::string& path, char separator, const MatrixReadOptions& options = {});
Matrix read_jsonl(const std::string& path, const MatrixReadOptions& options = {});

// Writes a float32 C-order 2-D .npy (version 1.0) through core/output_file.h: a regular or new
// file appears complete or not at all (temporary file beside it, then renamed over it); a FIFO
// or character device is written in place; "-", folders and other kinds are refused (IoError).
void write_npy(const std::string& path, const float* data, std::int64_t rows, std::int64_t cols);

// Writes `contents` to `path` as write_npy does (core/output_file.h; "-" is refused).
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace mmembed::io
