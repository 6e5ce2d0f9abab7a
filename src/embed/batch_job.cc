#include "embed/batch_job.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/check.h"
#include "core/file.h"
#include "core/output_file.h"
#include "io/bytes.h"
#include "io/matrix.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"

namespace mmembed::embed {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr const char* kPartialDir = ".mmembed-partial";

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// FNV-1a over everything that decides the job's output.
std::string fingerprint(const Embedder& embedder, const std::vector<BatchItem>& items,
                        const BatchJobOptions& o) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s)
      h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull;  // field separator
  };
  mix(fs::absolute(embedder.info().path).lexically_normal().string());
  mix(input_kind_name(o.kind));
  mix(std::to_string(o.chunk_size));
  mix(std::to_string(embedder.info().dim));
  mix(std::to_string(static_cast<int>(embedder.options().text_overflow)));
  mix(std::to_string(o.max_image_pixels));
  // Only a non-default backend joins the fingerprint, so that jobs started before the option
  // existed (all Pillow) still resume.
  if (embedder.options().pair_output != PairOutput::kDefault) {
    mix(str_cat("pair_output=", pair_output_name(embedder.options().pair_output)));
  }
  if (embedder.options().image_backend != ImageBackend::kPil) {
    mix(str_cat("image_backend=", image_backend_name(embedder.options().image_backend)));
  }
  if (embedder.options().dtype != ModelDtype::kFp32) {
    mix(str_cat("model_dtype=", model_dtype_name(embedder.options().dtype)));
  }
  for (const BatchItem& it : items) {
    mix(it.id);
    mix(it.text);
    mix(it.image);
    mix(it.label);
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Every JSON file the job writes goes through this: strings that are not valid UTF-8 (an id or a
// path given through the library, an error message quoting a file's bytes) are written with
// U+FFFD in place of the bad bytes instead of throwing nlohmann's type_error.316 (which killed
// the whole job). Manifests are refused earlier (data/manifest.h), so the CLI never gets here
// with such text.
std::string dumps(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// Size and modification time (ns) of a file, following symlinks; {-1, -1} when it cannot be
// read. Cheap enough for every image of a job (one stat each).
struct Stamp {
  std::int64_t size = -1, mtime_ns = -1;
  bool operator==(const Stamp&) const = default;
};

Stamp stamp_of(const std::string& path) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<std::int64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// The model's files (weights, config, tokenizer: every regular file under the model path,
// hidden ones skipped, sorted) with their stamps. The job's fingerprint covers the model's
// path only; a rerun after the weights at that path changed would otherwise append vectors of
// another model to those already committed.
Json model_files(const std::string& model_path) {
  std::vector<std::string> names;
  std::error_code ec;
  const fs::path root(model_path);
  if (fs::is_directory(root, ec)) {
    constexpr std::size_t kMaxFiles = 10000;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator() && names.size() < kMaxFiles;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec)) names.push_back(it->path().lexically_relative(root).string());
    }
    std::sort(names.begin(), names.end());
  } else {
    names.push_back("");
  }
  Json files = Json::array();
  for (const std::string& n : names) {
    const Stamp st = stamp_of(n.empty() ? root.string() : (root / n).string());
    files.push_back(Json{{"file", n.empty() ? root.filename().string() : n},
                         {"size", st.size},
                         {"mtime_ns", st.mtime_ns}});
  }
  return files;
}

// Why two model_files() lists differ ("" when they do not): the first file that changed,
// appeared or disappeared.
std::string model_files_change(const Json& before, const Json& now) {
  if (!before.is_array()) return "the earlier run recorded no model file stamps";
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> old_files;
  for (const Json& f : before) {
    old_files[f.value("file", "")] = {f.value("size", std::int64_t{-1}),
                                      f.value("mtime_ns", std::int64_t{-1})};
  }
  for (const Json& f : now) {
    const std::string name = f.value("file", "");
    const auto it = old_files.find(name);
    if (it == old_files.end()) return name + " is new";
    const std::int64_t size = f.value("size", std::int64_t{-1});
    if (it->second.first != size) {
      return str_cat(name, " changed size (", it->second.first, " -> ", size, " bytes)");
    }
    if (it->second.second != f.value("mtime_ns", std::int64_t{-1})) {
      return name + " was modified (same size, other modification time)";
    }
    old_files.erase(it);
  }
  if (!old_files.empty()) return old_files.begin()->first + " is gone";
  return "";
}

// FNV-1a over the stamps of the items' images (pair and image jobs).
std::string images_fingerprint(const std::vector<Stamp>& stamps) {
  std::uint64_t h = 1469598103934665603ull;
  for (const Stamp& st : stamps) {
    for (std::int64_t v : {st.size, st.mtime_ns}) {
      for (int b = 0; b < 8; ++b)
        h = (h ^ ((static_cast<std::uint64_t>(v) >> (8 * b)) & 0xff)) * 1099511628211ull;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::optional<Json> read_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  // Unreadable or not a regular file (a FIFO put in its place): the same as a broken file,
  // which the job rebuilds, but never a read that waits or runs without end.
  try {
    return Json::parse(read_input_file(path.string(), kMaxConfigFileBytes));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool uses_text(InputKind k) {
  return k != InputKind::kImage;
}
bool uses_image(InputKind k) {
  return k != InputKind::kText;
}

// One item's image (when the kind has images), or the reason it cannot be used.
struct Loaded {
  std::optional<Image> image;
  std::string error;
};

Loaded load(const BatchItem& item, const BatchJobOptions& o) {
  Loaded p;
  try {
    if (uses_text(o.kind)) {
      MMEMBED_CHECK(item.text.find_first_not_of(" \t\r\n\f\v") != std::string::npos,
                    InvalidArgument, "empty text");
      MMEMBED_CHECK(is_valid_utf8(item.text), InvalidArgument,
                    "text is not valid UTF-8: ", escape_for_message(item.text, 80));
    }
    if (uses_image(o.kind)) {
      MMEMBED_CHECK(!item.image.empty(), InvalidArgument, "no image");
      p.image = Image::read(item.image, o.max_image_pixels);
    }
  } catch (const Error& e) {
    p.error = e.what();
    p.image.reset();
  } catch (const std::bad_alloc&) {
    p.error = "out of memory while reading the image";
    p.image.reset();
  }
  return p;
}

// One batch made ready off the model's thread: images decoded, then tokens and pixels prepared
// for the items that loaded. When preparing the whole batch fails (one item the tokenizer or the
// image processor refuses), `prepared` stays empty and the model thread goes item by item.
struct ReadyBatch {
  std::size_t begin = 0, end = 0;
  std::vector<std::size_t> ok_rows;  // manifest rows of the loaded items
  std::vector<Image> images;
  std::vector<std::string> texts;
  std::vector<std::string> errors;  // per item of [begin, end), "" when loaded
  std::optional<PreparedBatch> prepared;
};

ReadyBatch make_ready(const Embedder& embedder, const std::vector<BatchItem>& items,
                      std::size_t begin, std::size_t end, const BatchJobOptions& o) {
  ReadyBatch r;
  r.begin = begin;
  r.end = end;
  r.errors.resize(end - begin);
  for (std::size_t i = begin; i < end; ++i) {
    Loaded l = load(items[i], o);
    if (!l.error.empty()) {
      r.errors[i - begin] = std::move(l.error);
      continue;
    }
    r.ok_rows.push_back(i);
    if (l.image) r.images.push_back(std::move(*l.image));
    if (uses_text(o.kind)) r.texts.push_back(items[i].text);
  }
  if (!r.ok_rows.empty()) {
    try {
      r.prepared = embedder.prepare(o.kind, r.images, r.texts);
    } catch (const Error&) {
      r.prepared.reset();
    }
  }
  return r;
}

// Runs the model on the given items (all loaded without error).
Embeddings run_model(const Embedder& e, InputKind kind, std::span<const Image> images,
                     std::span<const std::string> texts) {
  switch (kind) {
    case InputKind::kText:
      return e.embed_texts(texts);
    case InputKind::kImage:
      return e.embed_images(images);
    case InputKind::kPair:
      return e.embed_pairs(images, texts);
  }
  MMEMBED_ASSERT(false);
  return {};
}

struct ChunkResult {
  std::vector<float> rows;                                  // n_ok * dim
  std::vector<std::pair<std::size_t, std::string>> status;  // (manifest row, error or "")
};

// Embeds items [begin, end) in batches of the embedder's batch size; the next batch is decoded
// and prepared on another thread meanwhile. A batch the model refuses is retried item by item
// so that only the offending items fail.
ChunkResult run_chunk(const Embedder& embedder, const std::vector<BatchItem>& items,
                      std::size_t begin, std::size_t end, const BatchJobOptions& o,
                      const std::function<void(std::size_t, std::size_t)>& progress) {
  ChunkResult out;
  const std::size_t bs = embedder.options().batch_size;
  const std::size_t dim = embedder.info().dim;
  auto launch = [&](std::size_t b) {
    const std::size_t e = std::min(end, b + bs);
    return std::async(std::launch::async, [&embedder, &items, b, e, &o] {
      return make_ready(embedder, items, b, e, o);
    });
  };
  std::future<ReadyBatch> next = launch(begin);
  for (std::size_t b = begin; b < end; b += bs) {
    const std::size_t e = std::min(end, b + bs);
    ReadyBatch r = next.get();
    if (e < end) next = launch(e);

    std::vector<std::optional<std::vector<float>>> vectors(e - b);
    auto store = [&](std::size_t row, std::span<const float> v) {
      vectors[row - b] = std::vector<float>(v.begin(), v.end());
    };
    bool done = false;
    if (r.prepared) {
      try {
        const Embeddings emb = embedder.embed_prepared(*r.prepared);
        for (std::size_t k = 0; k < r.ok_rows.size(); ++k)
          store(r.ok_rows[k], emb.row(k));
        done = true;
      } catch (const Error&) {
      }
    }
    if (!done) {
      // Find the offending items: one at a time.
      for (std::size_t k = 0; k < r.ok_rows.size(); ++k) {
        try {
          std::span<const Image> im =
              r.images.empty() ? std::span<const Image>{} : std::span<const Image>(&r.images[k], 1);
          std::span<const std::string> tx = r.texts.empty()
                                                ? std::span<const std::string>{}
                                                : std::span<const std::string>(&r.texts[k], 1);
          const Embeddings emb = run_model(embedder, o.kind, im, tx);
          store(r.ok_rows[k], emb.row(0));
        } catch (const Error& err) {
          r.errors[r.ok_rows[k] - b] = err.what();
        }
      }
    }
    std::size_t failed = 0;
    for (std::size_t i = b; i < e; ++i) {
      if (vectors[i - b]) {
        MMEMBED_ASSERT(vectors[i - b]->size() == dim);
        out.rows.insert(out.rows.end(), vectors[i - b]->begin(), vectors[i - b]->end());
        out.status.emplace_back(i, "");
      } else {
        ++failed;
        out.status.emplace_back(i, r.errors[i - b].empty() ? "unknown error" : r.errors[i - b]);
      }
    }
    progress(e - b, failed);
  }
  return out;
}

fs::path chunk_path(const fs::path& partial, std::size_t c, const char* ext) {
  char name[64];
  std::snprintf(name, sizeof(name), "chunk-%06zu.%s", c, ext);
  return partial / name;
}

// The commit record holds, per item, the stamp its image had when the job started (pair and
// image jobs), so that a resumed run finds chunks whose images changed since.
void commit_chunk(const fs::path& partial, std::size_t c, const ChunkResult& r, std::size_t dim,
                  const std::vector<Stamp>& stamps) {
  const std::size_t ok = r.rows.size() / (dim ? dim : 1);
  io::write_npy(chunk_path(partial, c, "npy").string(), r.rows.data(),
                static_cast<std::int64_t>(ok), static_cast<std::int64_t>(dim));
  std::string text = dumps(Json{{"chunk", c}, {"ok", ok}, {"items", r.status.size()}}) + "\n";
  for (const auto& [row, err] : r.status) {
    Json j{{"manifest_row", row}, {"ok", err.empty()}};
    if (!err.empty()) j["error"] = err;
    if (!stamps.empty()) {
      j["image_size"] = stamps[row].size;
      j["image_mtime_ns"] = stamps[row].mtime_ns;
    }
    text += dumps(j) + "\n";
  }
  io::write_file_atomic(chunk_path(partial, c, "jsonl").string(), text);  // the commit record
}

// A committed chunk as read back: statuses and the number of rows its .npy must hold.
struct Committed {
  std::vector<std::pair<std::size_t, std::string>> status;
  std::size_t ok = 0;
  std::string stale;  // why the chunk must be redone although it was committed ("" if not)
};

std::optional<Committed> read_committed(const fs::path& partial, std::size_t c, std::size_t begin,
                                        std::size_t end, std::size_t dim,
                                        const std::vector<BatchItem>& items,
                                        const std::vector<Stamp>& stamps) {
  std::istringstream in;
  try {
    in.str(read_input_file(chunk_path(partial, c, "jsonl").string(), kMaxTextDataFileBytes));
  } catch (const Error&) {
    return std::nullopt;
  }
  try {
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    const Json head = Json::parse(line);
    Committed out;
    out.ok = head.at("ok").get<std::size_t>();
    if (head.at("items").get<std::size_t>() != end - begin) return std::nullopt;
    while (std::getline(in, line)) {
      const Json j = Json::parse(line);
      const std::size_t row = j.at("manifest_row").get<std::size_t>();
      if (row < begin || row >= end) return std::nullopt;
      out.status.emplace_back(row, j.at("ok").get<bool>() ? "" : j.at("error").get<std::string>());
      if (!stamps.empty() && out.stale.empty()) {
        const Stamp then{j.value("image_size", std::int64_t{-2}),
                         j.value("image_mtime_ns", std::int64_t{-2})};
        if (!(then == stamps[row])) {
          out.stale = str_cat("the image of item '", items[row].id, "' (", items[row].image,
                              ") changed since chunk ", c, " was embedded");
        }
      }
    }
    if (out.status.size() != end - begin) return std::nullopt;
    const io::Matrix m = io::read_matrix(chunk_path(partial, c, "npy").string());
    if (static_cast<std::size_t>(m.rows) != out.ok ||
        (m.rows > 0 && static_cast<std::size_t>(m.cols) != dim))
      return std::nullopt;
    return out;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable: redo the chunk
  }
}

void remove_final_files(const fs::path& out) {
  for (const char* f : {"run.json", "embeddings.npy", "items.jsonl", "errors.jsonl"}) {
    std::error_code ec;
    fs::remove(out / f, ec);
  }
}

// Streams the chunks' rows into one .npy (temp file, then rename).
void assemble_npy(const fs::path& partial, std::size_t chunks, std::size_t rows, std::size_t dim,
                  const fs::path& dest) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(dim) + "), }";
  const std::size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  // Streamed through one OutputFile: appears whole under `dest`, or not at all.
  OutputFile f = OutputFile::open(dest.string(), /*allow_stdout=*/false);
  std::string magic("\x93NUMPY\x01\x00", 8);
  magic.push_back(static_cast<char>(header.size() & 0xff));
  magic.push_back(static_cast<char>(header.size() >> 8));
  f.write(magic);
  f.write(header);
  for (std::size_t c = 0; c < chunks; ++c) {
    const io::Matrix m = io::read_matrix(chunk_path(partial, c, "npy").string());
    f.write(m.data.data(), m.data.size() * sizeof(float));  // a chunk may have no rows
  }
  f.commit();
}

}  // namespace

BatchJobResult run_batch_job(const Embedder& embedder, const std::vector<BatchItem>& items,
                             const BatchJobOptions& o) {
  const auto t0 = Clock::now();
  MMEMBED_CHECK(!o.out_dir.empty(), InvalidArgument, "batch job: no output directory");
  MMEMBED_CHECK(o.chunk_size >= 1 && o.chunk_size <= kMaxChunkSize, InvalidArgument,
                "batch job: chunk size ", o.chunk_size, " is out of range (1 to ", kMaxChunkSize,
                ")");
  MMEMBED_CHECK(o.max_image_pixels >= 0, InvalidArgument, "batch job: max_image_pixels ",
                o.max_image_pixels, " is negative (0 disables the limit)");
  MMEMBED_CHECK(embedder.info().supports(o.kind), Unsupported, embedder.info().path, ": this ",
                embedder.info().family, " model does not support ", input_kind_name(o.kind),
                " embeddings", embedder.info().unsupported_reason.empty() ? "" : ": ",
                embedder.info().unsupported_reason);
  const fs::path out(o.out_dir);
  const fs::path partial = out / kPartialDir;
  std::error_code ec;
  fs::create_directories(partial, ec);
  MMEMBED_CHECK(!ec, IoError, partial.string(), ": cannot create (", ec.message(), ")");

  // One job at a time per output folder (held until this process exits or returns).
  struct Lock {
    int fd = -1;
    ~Lock() {
      if (fd >= 0) ::close(fd);
    }
  } lock;
  lock.fd = ::open((out / ".mmembed-lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  MMEMBED_CHECK(lock.fd >= 0, IoError, (out / ".mmembed-lock").string(), ": cannot open (",
                std::strerror(errno), ")");
  MMEMBED_CHECK(::flock(lock.fd, LOCK_EX | LOCK_NB) == 0, IoError, o.out_dir,
                ": another mmembed job is writing there now");

  const std::string fp = fingerprint(embedder, items, o);
  const Json files = model_files(embedder.info().path);
  std::vector<Stamp> stamps;  // per item, when the kind has images
  if (uses_image(o.kind)) {
    stamps.resize(items.size());
    for (std::size_t i = 0; i < items.size(); ++i)
      stamps[i] = stamp_of(items[i].image);
  }
  const std::string images_fp = images_fingerprint(stamps);
  BatchJobResult result;
  result.items = items.size();
  const std::size_t dim = embedder.info().dim;
  const std::size_t chunks = items.size() / o.chunk_size + (items.size() % o.chunk_size != 0);
  result.chunks = chunks;

  if (auto run = read_json(out / "run.json")) {
    const bool same_job = run->value("fingerprint", "") == fp;
    std::string changed;  // why the results of the same job are stale
    if (same_job) {
      changed = model_files_change(run->value("model_files", Json()), files);
      if (!changed.empty()) {
        changed = "the model's files are not those it was made with (" + changed + ")";
      } else if (run->value("images_fingerprint", "") != images_fp) {
        changed = "some of its images changed since (size or modification time)";
      }
      MMEMBED_CHECK(changed.empty() || o.restart, InvalidArgument, o.out_dir,
                    " holds the results of this job, but ", changed,
                    "; restart to embed everything again (this deletes them)");
    }
    if (same_job && changed.empty() && fs::exists(out / "embeddings.npy") &&
        fs::exists(out / "items.jsonl") && fs::exists(out / "errors.jsonl")) {
      result.already_complete = true;
      const Json& counts = (*run)["counts"];
      result.embedded = counts.value("embedded", std::size_t{0});
      result.failed = counts.value("failed", std::size_t{0});
      fs::remove_all(partial, ec);
      return result;
    }
    MMEMBED_CHECK(same_job || o.restart, InvalidArgument, o.out_dir,
                  " already holds the results of a different job (run.json); choose another "
                  "output directory or restart (this deletes them)");
    remove_final_files(out);
    if (!changed.empty()) {  // restart: none of the committed chunks can be kept either
      fs::remove_all(partial);
      fs::create_directories(partial);
    }
  }
  if (auto job = read_json(partial / "job.json")) {
    if (job->value("fingerprint", "") != fp) {
      MMEMBED_CHECK(o.restart, InvalidArgument, partial.string(),
                    " holds a partial run of a different job (other model, kind, chunk size or "
                    "inputs); choose another output directory or restart (this deletes it)");
      fs::remove_all(partial);
      fs::create_directories(partial);
    } else if (const std::string change =
                   model_files_change(job->value("model_files", Json()), files);
               !change.empty()) {
      MMEMBED_CHECK(o.restart, InvalidArgument, partial.string(),
                    " holds a partial run of this job made with other model files (", change,
                    "): its vectors would be mixed with another model's; restart (this deletes "
                    "it) or choose another output directory");
      fs::remove_all(partial);
      fs::create_directories(partial);
    }
  }
  // A previous run may have crashed between final files: they are rebuilt from the chunks.
  remove_final_files(out);
  io::write_file_atomic((partial / "job.json").string(),
                        dumps(Json{{"fingerprint", fp},
                                   {"model", embedder.info().path},
                                   {"kind", input_kind_name(o.kind)},
                                   {"items", items.size()},
                                   {"chunk_size", o.chunk_size},
                                   {"model_files", files}},
                              2) +
                            "\n");

  BatchProgress progress;
  progress.total = items.size();
  auto report = [&] {
    progress.seconds = seconds_since(t0);
    if (o.on_progress) o.on_progress(progress);
  };

  std::vector<Committed> committed(chunks);
  int committed_now = 0;
  double embed_seconds = 0;
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t begin = c * o.chunk_size, end = std::min(items.size(), begin + o.chunk_size);
    auto done = read_committed(partial, c, begin, end, dim, items, stamps);
    if (done && !done->stale.empty()) {  // embedded from other image bytes: redone
      ++result.redone_chunks;
      if (result.redone_reason.empty()) result.redone_reason = done->stale;
      done.reset();
    }
    if (done) {
      committed[c] = std::move(*done);
      ++result.resumed_chunks;
      progress.done += end - begin;
      progress.resumed += end - begin;
      progress.failed += (end - begin) - committed[c].ok;
      report();
      continue;
    }
    const auto tc = Clock::now();
    ChunkResult r = run_chunk(embedder, items, begin, end, o, [&](std::size_t n, std::size_t bad) {
      progress.done += n;
      progress.failed += bad;
      report();
    });
    embed_seconds += seconds_since(tc);
    commit_chunk(partial, c, r, dim, stamps);
    committed[c].status = std::move(r.status);
    committed[c].ok = r.rows.size() / (dim ? dim : 1);
    if (o.kill_after_chunks >= 0 && ++committed_now >= o.kill_after_chunks && c + 1 < chunks) {
      std::fflush(nullptr);
      std::raise(SIGKILL);
    }
  }

  // Final files: each written whole under a temporary name and renamed; run.json last.
  std::string items_text, errors_text;
  std::size_t row = 0;
  for (const Committed& ch : committed) {
    for (const auto& [i, err] : ch.status) {
      const BatchItem& it = items[i];
      Json j{{"id", it.id}};
      if (uses_text(o.kind)) j["text"] = it.text;
      if (uses_image(o.kind)) j["image"] = it.image;
      if (!it.label.empty()) j["label"] = it.label;
      if (err.empty()) {
        j["row"] = row++;
        j["manifest_row"] = i;
        items_text += dumps(j) + "\n";
      } else {
        j["manifest_row"] = i;
        j["error"] = err;
        errors_text += dumps(j) + "\n";
      }
    }
  }
  result.embedded = row;
  result.failed = items.size() - row;
  assemble_npy(partial, chunks, row, dim, out / "embeddings.npy");
  io::write_file_atomic((out / "items.jsonl").string(), items_text);
  io::write_file_atomic((out / "errors.jsonl").string(), errors_text);
  result.seconds = seconds_since(t0);
  Json run{{"fingerprint", fp},
           {"model", o.model_name.empty() ? embedder.info().path : o.model_name},
           {"model_path", embedder.info().path},
           {"revision", o.revision},
           {"family", embedder.info().family},
           {"kind", input_kind_name(o.kind)},
           {"dim", dim},
           {"dtype", "float32"},  // of the vectors
           {"model_dtype", model_dtype_name(embedder.options().dtype)},
           {"mmembed_version", o.version},
           {"counts",
            {{"items", items.size()},
             {"embedded", result.embedded},
             {"failed", result.failed},
             {"resumed_chunks", result.resumed_chunks},
             {"chunks", chunks}}},
           {"timings",
            {{"total_s", result.seconds},
             {"embed_s", embed_seconds},
             {"items_per_s",
              embed_seconds > 0 ? double(items.size() - progress.resumed) / embed_seconds : 0.0}}},
           {"batch_size", embedder.options().batch_size},
           {"chunk_size", o.chunk_size},
           {"threads", kernels::num_threads()},  // the threads used (the option's 0 resolved)
           {"model_files", files},
           {"images_fingerprint", images_fp},
           {"image_backend", image_backend_name(embedder.options().image_backend)},
           {"pair_output", pair_output_name(embedder.options().pair_output)}};
  io::write_file_atomic((out / "run.json").string(), dumps(run, 2) + "\n");
  fs::remove_all(partial, ec);
  return result;
}

}  // namespace mmembed::embed
