#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "core/output_file.h"
#include "io/json_internal.h"

namespace mmembed::io {

static_assert(std::endian::native == std::endian::little,
              "io assumes a little-endian host (checkpoint data is little-endian)");

namespace {

struct DTypeEntry {
  std::string_view name;
  unsigned bits;
  std::optional<DType> dtype;  // nullopt: valid safetensors dtype that mmembed does not load
};

constexpr DTypeEntry kDTypes[] = {
    {"F32", 32, DType::F32},     {"F16", 16, DType::F16},      {"BF16", 16, DType::BF16},
    {"F64", 64, DType::F64},     {"I64", 64, DType::I64},      {"I32", 32, DType::I32},
    {"I16", 16, DType::I16},     {"I8", 8, DType::I8},         {"U8", 8, DType::U8},
    {"BOOL", 8, DType::Bool},    {"U16", 16, std::nullopt},    {"U32", 32, std::nullopt},
    {"U64", 64, std::nullopt},   {"C64", 64, std::nullopt},    {"F8_E5M2", 8, std::nullopt},
    {"F8_E4M3", 8, std::nullopt}, {"F8_E8M0", 8, std::nullopt}, {"F8_E4M3FNUZ", 8, std::nullopt},
    {"F8_E5M2FNUZ", 8, std::nullopt}, {"F4", 4, std::nullopt},  {"F6_E2M3", 6, std::nullopt},
    {"F6_E3M2", 6, std::nullopt},
};

const DTypeEntry* find_dtype(std::string_view name) {
  for (const DTypeEntry& e : kDTypes) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  throw FormatError(str_cat(source, ": ", what));
}

std::uint64_t parse_dim(const nlohmann::json& v, const std::string& source,
                        const std::string& tensor, const char* field) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  }
  bad(source, str_cat("tensor '", printable(tensor), "': ", field,
                      " entries must be non-negative integers (got ", json_type_name(v), " ",
                      json_brief(v), ")"));
}

SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& v,
                             std::uint64_t buffer_size, const std::string& source) {
  const std::string what = str_cat("tensor '", printable(name), "'");
  if (!v.is_object()) {
    bad(source, str_cat(what, ": expected an object with dtype, shape and data_offsets, got ",
                        json_type_name(v)));
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(field)) bad(source, str_cat(what, ": missing field '", field, "'"));
  }
  const auto& jdtype = v["dtype"];
  const auto& jshape = v["shape"];
  const auto& joffsets = v["data_offsets"];
  if (!jdtype.is_string()) {
    bad(source, str_cat(what, ": dtype must be a string (got ", json_type_name(jdtype), ")"));
  }
  const std::string& dtype_name = jdtype.get_ref<const std::string&>();
  const DTypeEntry* dt = find_dtype(dtype_name);
  if (dt == nullptr) bad(source, str_cat(what, ": unknown dtype '", printable(dtype_name), "'"));
  if (!jshape.is_array()) {
    bad(source, str_cat(what, ": shape must be an array (got ", json_type_name(jshape), ")"));
  }
  if (!joffsets.is_array() || joffsets.size() != 2) {
    bad(source, str_cat(what, ": data_offsets must be [begin, end] (got ", json_brief(joffsets),
                        ")"));
  }

  SafetensorsEntry e;
  e.info.name = name;
  e.info.dtype_name = std::string(dt->name);
  e.info.dtype = dt->dtype;
  std::uint64_t numel = 1;
  for (const auto& jd : jshape) {
    std::uint64_t d = parse_dim(jd, source, name, "shape");
    if (d > static_cast<std::uint64_t>(INT64_MAX)) {
      bad(source, str_cat(what, ": dimension ", d, " is too large"));
    }
    if (__builtin_mul_overflow(numel, d, &numel) || numel > static_cast<std::uint64_t>(INT64_MAX)) {
      bad(source, str_cat(what, ": shape has too many elements (overflow)"));
    }
    e.info.shape.push_back(static_cast<std::int64_t>(d));
  }
  e.info.numel = static_cast<std::int64_t>(numel);
  std::uint64_t bits = 0;
  if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(dt->bits), &bits)) {
    bad(source, str_cat(what, ": byte size overflows"));
  }
  if (bits % 8 != 0) {
    bad(source, str_cat(what, ": ", numel, " elements of ", dt->name,
                        " do not fill a whole number of bytes"));
  }
  e.begin = parse_dim(joffsets[0], source, name, "data_offsets");
  e.end = parse_dim(joffsets[1], source, name, "data_offsets");
  if (e.begin > e.end) {
    bad(source, str_cat(what, ": data_offsets begin ", e.begin, " is after end ", e.end));
  }
  if (e.end > buffer_size) {
    bad(source, str_cat(what, ": data_offsets end ", e.end, " is past the data buffer (expected <= ",
                        buffer_size, ")"));
  }
  e.info.nbytes = bits / 8;
  if (e.end - e.begin != e.info.nbytes) {
    bad(source, str_cat(what, ": data_offsets span ", e.end - e.begin, " bytes, but ", dt->name,
                        shape_str(e.info.shape), " needs ", e.info.nbytes,
                        " (expected equal sizes)"));
  }
  e.info.file = source;
  return e;
}

}  // namespace

unsigned safetensors_dtype_bits(std::string_view name) noexcept {
  const DTypeEntry* e = find_dtype(name);
  return e ? e->bits : 0;
}

std::string_view safetensors_dtype_name(DType dtype) noexcept {
  for (const DTypeEntry& e : kDTypes) {
    if (e.dtype == dtype) return e.name;
  }
  return "?";
}

SafetensorsHeader parse_safetensors(ByteSpan bytes, const std::string& source) {
  if (bytes.size() < 8) {
    bad(source, str_cat("file too short for a safetensors header (expected at least 8 bytes, got ",
                        bytes.size(), ")"));
  }
  std::uint64_t n = read_le<std::uint64_t>(bytes.data());
  if (n > kSafetensorsMaxHeader) {
    bad(source, str_cat("safetensors header length ", n, " is too large (expected <= ",
                        kSafetensorsMaxHeader, ")"));
  }
  if (n > bytes.size() - 8) {
    bad(source, str_cat("safetensors header length ", n, " runs past the end of the file (",
                        bytes.size(), " bytes)"));
  }
  std::string_view text = as_chars(bytes.subspan(8, n));
  if (text.empty() || text.front() != '{') {
    bad(source, "safetensors header does not start with '{'");
  }
  nlohmann::json root = parse_json_strict(text, source + ": safetensors header", 8);
  if (!root.is_object()) bad(source, "safetensors header is not a JSON object");

  SafetensorsHeader header;
  header.data_start = 8 + n;
  const std::uint64_t buffer_size = bytes.size() - header.data_start;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) {
        bad(source, str_cat("__metadata__ must be an object of strings (got ",
                            json_type_name(*it), ")"));
      }
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          bad(source, str_cat("__metadata__ value for '", printable(m.key()),
                              "' must be a string (got ", json_type_name(*m), ")"));
        }
        header.metadata.emplace(m.key(), m->get<std::string>());
      }
      continue;
    }
    header.entries.push_back(parse_entry(it.key(), *it, buffer_size, source));
  }

  std::sort(header.entries.begin(), header.entries.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              if (a.begin != b.begin) return a.begin < b.begin;
              if (a.end != b.end) return a.end < b.end;
              return a.info.name < b.info.name;
            });
  // The tensors must tile the buffer exactly: bytes outside every tensor could smuggle another
  // file format (polyglot), overlapping tensors alias each other.
  std::uint64_t expected = 0;
  for (const SafetensorsEntry& e : header.entries) {
    if (e.begin != expected) {
      bad(source, str_cat("tensor '", printable(e.info.name), "' starts at data offset ", e.begin,
                          " (expected ", expected, ": tensors must be contiguous, ",
                          e.begin < expected ? "overlap" : "gap", ")"));
    }
    expected = e.end;
  }
  if (expected != buffer_size) {
    bad(source, str_cat("tensors cover ", expected, " bytes of the ", buffer_size,
                        "-byte data buffer (expected the whole buffer)"));
  }
  return header;
}

Tensor safetensors_tensor(ByteSpan bytes, const SafetensorsHeader& header, std::size_t index,
                          const std::shared_ptr<const void>& owner, const std::string& source) {
  MMEMBED_ASSERT(index < header.entries.size());
  const SafetensorsEntry& e = header.entries[index];
  if (!e.info.dtype) {
    throw Unsupported(str_cat(source, ": tensor '", e.info.name, "' has dtype ", e.info.dtype_name,
                              ", which mmembed cannot load (supported: F32, F16, BF16, F64, I64, "
                              "I32, I16, I8, U8, BOOL)"));
  }
  const DType dtype = *e.info.dtype;
  MMEMBED_ASSERT(range_ok(header.data_start + e.begin, e.info.nbytes, bytes.size()));
  const std::uint8_t* p = bytes.data() + header.data_start + e.begin;
  if (dtype == DType::Bool) {
    for (std::uint64_t i = 0; i < e.info.nbytes; ++i) {
      if (p[i] > 1) {
        throw FormatError(str_cat(source, ": tensor '", e.info.name, "': BOOL element ", i,
                                  " is ", static_cast<int>(p[i]), " (expected 0 or 1)"));
      }
    }
  }
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  if (owner && e.info.nbytes > 0 && addr % dtype_size(dtype) == 0) {
    return Tensor::wrap(const_cast<std::uint8_t*>(p), dtype, e.info.shape, owner);
  }
  // Misaligned (files from other writers) or no owner: copy, never reinterpret misaligned memory.
  Tensor t = Tensor::empty(dtype, e.info.shape);
  if (e.info.nbytes > 0) std::memcpy(t.raw(), p, e.info.nbytes);
  return t;
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->file_ = MappedFile::open(path);
  f->header_ = parse_safetensors(f->file_->bytes(), path);
  f->infos_.reserve(f->header_.entries.size());
  for (const SafetensorsEntry& e : f->header_.entries) f->infos_.push_back(e.info);
  return f;
}

void SafetensorsFile::release(std::size_t index) const {
  const Tensor t = load(index);
  file_->release(t.raw(), t.nbytes());  // ignored unless the tensor is a view of the mapping
}

Tensor SafetensorsFile::load(std::size_t index) const {
  MMEMBED_CHECK(index < infos_.size(), InvalidArgument, path(), ": tensor index ", index,
                " out of range (", infos_.size(), " tensors)");
  return safetensors_tensor(file_->bytes(), header_, index, file_, path());
}

// ---- writer ----

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<const std::string*, const Tensor*>> order;
  for (const auto& [name, t] : tensors) {
    MMEMBED_CHECK(name != "__metadata__", InvalidArgument, path,
                  ": a tensor may not be named '__metadata__'");
    MMEMBED_CHECK(t.defined(), InvalidArgument, path, ": tensor '", name, "' is undefined");
    order.emplace_back(&name, &t);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return dtype_size(a.second->dtype()) > dtype_size(b.second->dtype());  // then by name (map)
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    nlohmann::ordered_json e;
    e["dtype"] = std::string(safetensors_dtype_name(t->dtype()));
    e["shape"] = t->shape();
    e["data_offsets"] = {offset, offset + t->nbytes()};
    offset += t->nbytes();
    header[*name] = std::move(e);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  OutputFile out = OutputFile::open(path, /*allow_stdout=*/false);
  std::uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(text.size() >> (8 * i));
  out.write(len, 8);
  out.write(text);
  for (const auto& entry : order) out.write(entry.second->raw(), entry.second->nbytes());
  out.commit();
}

}  // namespace mmembed::io
