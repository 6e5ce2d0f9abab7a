// Datasets of image-text pairs: manifests (JSONL, CSV, TSV) and image folders.
//
// A manifest has the columns `id`, `image` (http(s) URL or local path, relative paths are taken
// relative to the manifest's folder), `text` (the caption) and optionally `label`. Without an
// `id` column (or, in JSONL, an "id" in no object) the items are numbered 1, 2, ... by row.
// A .txt file (or "-", standard input) holds one text per line, numbered by line. A CSV follows
// RFC 4180 (quoted fields may hold commas, quotes as "" and newlines); a TSV uses the same rules
// with tabs. A JSONL file has one object per line with those keys (numbers are accepted for id and
// label). Column names are case-insensitive; `caption` is accepted for `text`.
//
// An image folder lists its images (jpg, jpeg, png, webp, gif, bmp; recursively, sorted); the id is
// the path without extension, the caption comes from a sidecar `<name>.txt` or from a captions
// file (a manifest with `image` and `text` columns, e.g. captions.tsv), the label from the
// subfolder name (ImageFolder convention) when images sit in subfolders.
//
// Validation collects every problem (up to 20) into one FormatError, with file and line:
// a missing column, an empty or duplicate id, an empty caption, a missing local image.
// Manifests, sidecar captions and the names of an image folder's files must be UTF-8: a line
// with a malformed sequence is refused first (FormatError naming file:line, the byte and its
// column), whatever the format, rather than failing later in a JSON writer or the tokenizer.
//
//   auto m = mmembed::data::read_dataset("pairs.csv", {});
//   for (const auto& item : m.items) use(item.id, item.image, item.text);
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace mmembed::data {

namespace fs = std::filesystem;

struct Item {
  std::string id;
  std::string image;  // a URL, or an absolute local path ("" if the dataset has no images)
  std::string text;   // the caption ("" if the dataset has no text)
  std::string label;  // "" when none
  std::size_t line = 0;  // line of the record in the source file (1-based; 0 for folders)
};

// kText: one text per line (blank lines skipped), the line number as id; "-" reads standard
// input, as kText unless a format is given.
enum class ManifestFormat { kAuto, kJsonl, kCsv, kTsv, kText };

struct ManifestOptions {
  ManifestFormat format = ManifestFormat::kAuto;  // kAuto: from the extension
  bool need_image = true;   // the image column must exist and be non-empty in every row
  bool need_text = true;    // the text column must exist and be non-empty in every row
  bool check_paths = true;  // local images must exist
  fs::path captions_file;   // image folders: captions manifest (default: captions.{tsv,csv,jsonl} if present)
};

struct Manifest {
  fs::path source;
  std::vector<Item> items;
  bool has_label = false;  // a label column / folder labels exist
  bool ids_numbered = false;  // no id column: the ids are row numbers from 1 (text: line numbers)
};

bool is_url(const std::string& s);  // contains "://" (http, https, or another scheme)

Manifest read_manifest(const fs::path& path, const ManifestOptions& options = {});
Manifest read_image_folder(const fs::path& dir, const ManifestOptions& options = {});
// A folder -> read_image_folder, a file -> read_manifest.
Manifest read_dataset(const fs::path& path, const ManifestOptions& options = {});

// One JSON object per item: {"id","image","text"[,"label"]}; written atomically (temp + rename).
void write_manifest_jsonl(const fs::path& path, const std::vector<Item>& items, bool with_label);

// RFC 4180 records of a CSV/TSV text: each record with the line it starts on. Throws
// FormatError (naming `name` and the line) on an unterminated quote or text after a closing quote.
struct Record {
  std::vector<std::string> fields;
  std::size_t line = 0;
};
std::vector<Record> parse_delimited(const std::string& text, char delimiter, const std::string& name);

}  // namespace mmembed::data
