#include "io/torch_zip.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"

namespace mmembed::io {

namespace {

constexpr std::string_view kResaveHint =
    "re-save it with a recent torch.save (zip format) or convert it to safetensors";

bool starts_with(ByteSpan bytes, std::string_view prefix, std::size_t at = 0) {
  return range_ok(at, prefix.size(), bytes.size()) &&
         std::memcmp(bytes.data() + at, prefix.data(), prefix.size()) == 0;
}

}  // namespace

void check_torch_container(ByteSpan bytes, const std::string& source) {
  if (starts_with(bytes, std::string_view("PK\x03\x04", 4))) return;
  // The legacy format starts with a protocol-2 pickle of torch's magic number
  // 0x1950a86a20f9469cfc6c (E.5).
  static constexpr std::uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                                  0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (bytes.size() >= sizeof kLegacyMagic &&
      std::memcmp(bytes.data(), kLegacyMagic, sizeof kLegacyMagic) == 0) {
    throw Unsupported(str_cat(source, ": legacy PyTorch (pre-1.6, non-zip) checkpoint format is "
                              "not supported; ", kResaveHint));
  }
  if (starts_with(bytes, "ustar", 257)) {
    throw Unsupported(str_cat(source, ": legacy PyTorch tar checkpoint format is not supported; ",
                              kResaveHint));
  }
  if (starts_with(bytes, "PYTORCH1")) {
    throw Unsupported(str_cat(source, ": PYTORCH1 (preview-release) checkpoint format is not "
                              "supported; ", kResaveHint));
  }
  if (bytes.empty()) throw FormatError(str_cat(source, ": file is empty (expected a zip archive)"));
  throw FormatError(str_cat(source, ": not a PyTorch zip checkpoint (expected 'PK\\x03\\x04' at "
                            "byte 0, got '", printable(as_chars(bytes.first(std::min<std::size_t>(4, bytes.size())))), "')"));
}

TorchArchive parse_torch_archive(ByteSpan bytes, const std::string& source) {
  check_torch_container(bytes, source);
  TorchArchive a{ZipArchive::parse(bytes, source), {}, false, {}, {}};
  const ZipArchive& zip = a.zip;
  if (zip.entries().empty()) throw FormatError(str_cat(source, ": zip archive has no entries"));
  const std::string& first = zip.entries().front().name;
  std::size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0) {
    throw FormatError(str_cat(source, ": first zip entry '", printable(first),
                              "' is not inside an archive folder (expected '<name>/data.pkl')"));
  }
  a.prefix = first.substr(0, slash);
  const std::string dir = a.prefix + "/";

  for (const ZipEntry& e : zip.entries()) {
    if (e.name == dir + "constants.pkl" || e.name.rfind(dir + "code/", 0) == 0) {
      throw Unsupported(str_cat(source, ": this is a TorchScript archive (torch.jit.save), not a "
                                "state dict; save model.state_dict() with torch.save or convert "
                                "to safetensors"));
    }
  }
  const ZipEntry* pkl = zip.find(dir + "data.pkl");
  if (pkl == nullptr) {
    throw FormatError(str_cat(source, ": no '", printable(dir), "data.pkl' record (expected a "
                              "torch.save archive)"));
  }
  if (const ZipEntry* bo = zip.find(dir + "byteorder")) {
    std::string_view order = as_chars(zip.data(*bo));
    if (order == "big") {
      a.big_endian = true;
    } else if (order != "little") {
      throw FormatError(str_cat(source, ": byteorder record is '", printable(order),
                                "' (expected 'little' or 'big')"));
    }
  }
  a.state = unpickle_state_dict(zip.data(*pkl), source + ": data.pkl");

  for (const PickledStorage& s : a.state.storages) {
    const std::string record = dir + "data/" + s.key;
    const ZipEntry* e = zip.find(record);
    if (e == nullptr) {
      throw FormatError(str_cat(source, ": storage '", printable(s.key), "' has no record '",
                                printable(record), "'"));
    }
    std::uint64_t want = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(s.numel),
                               static_cast<std::uint64_t>(s.elem_size), &want) ||
        want != e->size) {
      throw FormatError(str_cat(source, ": record '", printable(record), "' holds ", e->size,
                                " bytes (expected ", s.numel, " ", s.dtype_name, " elements = ",
                                s.numel, " x ", s.elem_size, " bytes)"));
    }
    a.storage_bytes.push_back(zip.data(*e));
  }
  return a;
}

Tensor torch_archive_tensor(const TorchArchive& a, std::size_t index,
                            const std::shared_ptr<const void>& owner, const std::string& source) {
  MMEMBED_ASSERT(index < a.state.tensors.size());
  const PickledTensor& t = a.state.tensors[index];
  const PickledStorage& s = a.state.storages[t.storage];
  if (!s.dtype) {
    throw Unsupported(str_cat(source, ": tensor '", t.name, "' has dtype ", s.dtype_name,
                              ", which mmembed cannot load"));
  }
  const DType dtype = *s.dtype;
  const std::size_t elem = s.elem_size;
  MMEMBED_ASSERT(elem == dtype_size(dtype));
  const std::uint8_t* base = a.storage_bytes[t.storage].data();

  Tensor out;
  const bool contiguous = t.contiguous();
  const std::uint8_t* first = t.numel > 0 ? base + static_cast<std::size_t>(t.offset) * elem : nullptr;
  if (contiguous && !a.big_endian && owner && t.numel > 0 &&
      reinterpret_cast<std::uintptr_t>(first) % elem == 0) {
    out = Tensor::wrap(const_cast<std::uint8_t*>(first), dtype, t.shape, owner);
  } else {
    out = Tensor::empty(dtype, t.shape);
    auto* dst = static_cast<std::uint8_t*>(out.raw());
    if (contiguous && t.numel > 0) {
      std::memcpy(dst, first, static_cast<std::size_t>(t.numel) * elem);
    } else if (t.numel > 0) {
      // Gather a strided view: walk the multi-index in row-major order. The unpickler already
      // checked that the furthest element lies inside the storage.
      const std::size_t rank = t.shape.size();
      std::vector<std::int64_t> idx(rank, 0);
      std::int64_t src = t.offset;
      for (std::int64_t n = 0; n < t.numel; ++n) {
        std::memcpy(dst + static_cast<std::size_t>(n) * elem, base + static_cast<std::size_t>(src) * elem, elem);
        for (std::size_t d = rank; d-- > 0;) {
          if (++idx[d] < t.shape[d]) {
            src += t.strides[d];
            break;
          }
          src -= (t.shape[d] - 1) * t.strides[d];
          idx[d] = 0;
        }
      }
    }
    if (a.big_endian && elem > 1) {
      for (std::int64_t n = 0; n < t.numel; ++n) {
        std::reverse(dst + static_cast<std::size_t>(n) * elem, dst + static_cast<std::size_t>(n + 1) * elem);
      }
    }
  }
  if (dtype == DType::Bool) {
    const auto* p = static_cast<const std::uint8_t*>(out.raw());
    for (std::int64_t n = 0; n < t.numel; ++n) {
      if (p[n] > 1) {
        throw FormatError(str_cat(source, ": tensor '", t.name, "': bool element ", n, " is ",
                                  int{p[n]}, " (expected 0 or 1)"));
      }
    }
  }
  return out;
}

std::shared_ptr<const TorchZipFile> TorchZipFile::open(const std::string& path) {
  std::shared_ptr<TorchZipFile> f(new TorchZipFile());
  f->file_ = MappedFile::open(path);
  f->archive_ = std::make_unique<TorchArchive>(parse_torch_archive(f->file_->bytes(), path));
  for (const PickledTensor& t : f->archive_->state.tensors) {
    const PickledStorage& s = f->archive_->state.storages[t.storage];
    TensorInfo info;
    info.name = t.name;
    info.dtype_name = s.dtype_name;
    info.dtype = s.dtype;
    info.shape = t.shape;
    info.numel = t.numel;
    info.nbytes = static_cast<std::uint64_t>(t.numel) * s.elem_size;
    info.file = path;
    f->infos_.push_back(std::move(info));
  }
  return f;
}

void TorchZipFile::release(std::size_t index) const {
  const Tensor t = load(index);
  file_->release(t.raw(), t.nbytes());  // ignored unless the tensor is a view of the mapping
}

Tensor TorchZipFile::load(std::size_t index) const {
  MMEMBED_CHECK(index < infos_.size(), InvalidArgument, path(), ": tensor index ", index,
                " out of range (", infos_.size(), " tensors)");
  return torch_archive_tensor(*archive_, index, file_, path());
}

}  // namespace mmembed::io
