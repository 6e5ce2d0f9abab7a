#include "golden.h"

#include <zlib.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "io/safetensors.h"

namespace mmembed::golden {

namespace {

using nlohmann::json;

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MMEMBED_CHECK(in.good(), IoError, path, ": cannot open");
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

json parse_json_file(const std::string& path) {
  std::vector<std::uint8_t> bytes = read_file(path);
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  MMEMBED_CHECK(!j.is_discarded(), FormatError, path, ": not valid JSON");
  return j;
}

std::string dir_of(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& data, const std::string& source) {
  z_stream zs{};
  MMEMBED_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, FormatError, source, ": inflateInit");
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  int rc;
  do {
    zs.next_out = chunk;
    zs.avail_out = sizeof(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      throw FormatError(str_cat(source, ": not valid gzip data (zlib error ", rc, ")"));
    }
    out.insert(out.end(), chunk, chunk + (sizeof(chunk) - zs.avail_out));
  } while (rc != Z_STREAM_END && (zs.avail_in > 0 || zs.avail_out == 0));
  inflateEnd(&zs);
  MMEMBED_CHECK(rc == Z_STREAM_END, FormatError, source, ": truncated gzip data");
  return out;
}

std::uint32_t crc32_of(const Tensor& t) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(t.raw());
  std::size_t left = t.nbytes();
  while (left > 0) {
    uInt n = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return static_cast<std::uint32_t>(crc);
}

std::string verify_checksum(const Entry& entry, const Tensor& ours) {
  std::string_view want_dtype = entry.dtype;
  std::string_view got_dtype = io::safetensors_dtype_name(ours.dtype());
  if (want_dtype != got_dtype) {
    return str_cat(entry.name, ": dtype ", got_dtype, " but the reference has ", want_dtype);
  }
  if (ours.shape() != entry.shape) {
    return str_cat(entry.name, ": shape ", shape_str(ours.shape()), " but the reference has ",
                   shape_str(entry.shape));
  }
  std::uint32_t crc = crc32_of(ours);
  if (crc != entry.crc32) {
    return str_cat(entry.name, ": bytes differ from the reference (crc32 ", crc, " vs ",
                   entry.crc32, ")");
  }
  return {};
}

Manifest::Manifest(const std::string& path) : data_dir_(dir_of(path)) {
  json m = parse_json_file(path);
  MMEMBED_CHECK(m.value("format", "") == "mmembed-reference-manifest", FormatError, path,
                ": not an mmembed reference manifest");
  MMEMBED_CHECK(m.value("format_version", 0) == 1, FormatError, path,
                ": unsupported format_version ", m.value("format_version", 0));
  for (const json& a : m.at("arrays")) {
    Entry e;
    e.name = a.at("name").get<std::string>();
    e.stage = a.value("stage", "");
    if (a.contains("model") && a["model"].is_string()) e.model = a["model"].get<std::string>();
    if (a.contains("file") && a["file"].is_string()) e.file = a["file"].get<std::string>();
    if (a.contains("tensor") && a["tensor"].is_string()) e.tensor = a["tensor"].get<std::string>();
    e.gzip = a.contains("compression") && a["compression"] == "gzip";
    e.dtype = a.at("dtype").get<std::string>();
    e.shape = a.at("shape").get<Shape>();
    e.crc32 = a.at("crc32").get<std::uint32_t>();
    if (a.contains("inputs")) e.inputs_json = a["inputs"].dump();
    MMEMBED_CHECK(by_name_.emplace(e.name, entries_.size()).second, FormatError, path,
                  ": duplicate array name '", e.name, "'");
    entries_.push_back(std::move(e));
  }
  std::string tol_path = std::string(MMEMBED_SOURCE_DIR) + "/tests/golden/tolerances.json";
  json t = parse_json_file(tol_path);
  for (const json& row : t.at("tolerances")) {
    Tolerance tol;
    tol.atol = row.at("atol").get<double>();
    tol.rtol = row.at("rtol").get<double>();
    tol.reason = row.at("reason").get<std::string>();
    MMEMBED_CHECK(!tol.reason.empty(), FormatError, tol_path, ": a tolerance without a reason");
    tolerances_.emplace_back(row.at("stage").get<std::string>(), tol);
  }
}

const Manifest& Manifest::get() {
  static const Manifest manifest(std::string(MMEMBED_TEST_DATA_DIR) + "/manifest.json");
  return manifest;
}

const Entry* Manifest::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

const Entry& Manifest::entry(const std::string& name) const {
  const Entry* e = find(name);
  MMEMBED_CHECK(e != nullptr, InvalidArgument, "no golden array named '", name, "'");
  return *e;
}

std::vector<const Entry*> Manifest::with_prefix(const std::string& prefix) const {
  std::vector<const Entry*> out;
  for (const Entry& e : entries_) {
    if (e.name.compare(0, prefix.size(), prefix) == 0) out.push_back(&e);
  }
  return out;
}

std::shared_ptr<const std::vector<std::uint8_t>> Manifest::file_bytes(const std::string& relative,
                                                                      bool gzip) const {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  auto it = cache_.find(relative);
  if (it != cache_.end()) return it->second;
  std::string path = data_dir_ + "/" + relative;
  std::vector<std::uint8_t> bytes = read_file(path);
  if (gzip) bytes = gunzip(bytes, path);
  auto shared = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
  cache_.emplace(relative, shared);
  return shared;
}

Tensor Manifest::load(const Entry& entry) const {
  MMEMBED_CHECK(entry.has_data(), InvalidArgument, entry.name,
                ": the manifest stores only a checksum for this array; use verify_checksum()");
  auto bytes = file_bytes(entry.file, entry.gzip);
  std::string source = data_dir_ + "/" + entry.file;
  io::ByteSpan span(bytes->data(), bytes->size());
  io::SafetensorsHeader header = io::parse_safetensors(span, source);
  for (std::size_t i = 0; i < header.entries.size(); ++i) {
    if (header.entries[i].info.name != entry.tensor) continue;
    Tensor t = io::safetensors_tensor(span, header, i, nullptr, source);
    std::string problem = verify_checksum(entry, t);
    MMEMBED_CHECK(problem.empty(), FormatError, source, ": ", problem, " (manifest and file disagree)");
    return t;
  }
  throw FormatError(str_cat(source, ": no tensor '", entry.tensor, "' for golden array ", entry.name));
}

Tolerance Manifest::tolerance(const Entry& entry) const {
  const Tolerance* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& [stage, tol] : tolerances_) {
    bool match = stage == "*" || entry.stage.compare(0, stage.size(), stage) == 0;
    std::size_t len = stage == "*" ? 0 : stage.size();
    if (match && (best == nullptr || len > best_len)) {
      best = &tol;
      best_len = len;
    }
  }
  MMEMBED_CHECK(best != nullptr, InvalidArgument, entry.name, ": no tolerance for stage '",
                entry.stage, "' in tests/golden/tolerances.json");
  return *best;
}

}  // namespace mmembed::golden
