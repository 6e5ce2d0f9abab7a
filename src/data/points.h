// What travels with embedding rows between commands: ids, labels, captions and image paths.
//
//   // an `embed --input` output folder: embeddings.npy and items.jsonl, row by row
//   data::EmbeddingFolder f = data::read_embedding_folder("out/");
//   f.matrix.rows == f.points.ids.size();
//
//   // labels for n points: .txt (one per line), .jsonl (a field of each object), .csv/.tsv (a column)
//   std::vector<std::string> labels = data::read_labels("items.jsonl", n, "label");
//
// Every file is read with the bounds of core/file.h; a file whose rows do not fit is refused
// with the reason (count, line, missing field), never silently re-interpreted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "io/matrix.h"

namespace mmembed::data {

// One entry per point in each vector that is not empty.
struct PointInfo {
  std::vector<std::string> ids;
  std::vector<std::string> labels;  // empty when no point has a label
  std::vector<std::string> texts;   // empty when no point has a text
  std::vector<std::string> images;  // empty when no point has an image (paths or URLs)
};

struct EmbeddingFolder {
  io::Matrix matrix;
  PointInfo points;
  std::filesystem::path dir;
};

// True when `dir` is a folder holding embeddings.npy and items.jsonl (what `embed --input`
// writes; its run.json, when present, says the job finished).
bool is_embedding_folder(const std::filesystem::path& dir);

// Reads such a folder: the matrix and, from items.jsonl, each row's id, label, text and image
// (objects with "row" r give row r; every row must be described exactly once). FormatError
// naming the file and line otherwise; IoError when the job has not finished (no run.json while
// .mmembed-partial/ exists).
EmbeddingFolder read_embedding_folder(const std::filesystem::path& dir,
                                      const io::MatrixReadOptions& options = {});

// Calls fn(line_number, object) for each non-blank line of a JSON Lines text, in order; a line
// that is not JSON, or not an object, is a FormatError naming `name` and the line.
void for_each_json_object(const std::string& text, const std::string& name,
                          const std::function<void(std::size_t, const nlohmann::json&)>& fn);

// Labels for `n` points from `path`:
//  - .jsonl / .ndjson: the string (or number) `field` of each object, one object per line;
//  - .csv / .tsv: the column named `field` (header line first, RFC 4180 quoting for .csv);
//  - anything else: one label per line (a trailing '\r' removed; a last empty line ignored).
//    A plain file whose lines all look like JSON objects is refused (name it .jsonl).
// The count must be n; every refusal names the file and the reason.
std::vector<std::string> read_labels(const std::string& path, std::int64_t n,
                                     const std::string& field = "label");

}  // namespace mmembed::data
