// A resumable batch embedding job: many manifest items -> OUTDIR/{embeddings.npy, items.jsonl,
// errors.jsonl, run.json}.
//
//   embed::BatchJobOptions o;
//   o.kind = InputKind::kPair;
//   o.out_dir = "out/";
//   embed::BatchJobResult r = embed::run_batch_job(embedder, items, o);
//
// Outputs (in out_dir):
//   embeddings.npy  float32 [n_ok, dim]; row r is the r-th item that succeeded, in manifest order
//   items.jsonl     one object per embedded item: id, text, image, label, row (its row in
//                   embeddings.npy), manifest_row (its index in the input list)
//   errors.jsonl    one object per failed item: id, manifest_row, text, image, error
//   (strings that are not valid UTF-8, possible only through this API, are written with U+FFFD
//   for the bad bytes; an item whose text is not UTF-8 fails alone)
//   run.json        the job: model, revision, kind, dim, dtype, mmembed version, counts, timings;
//                   written last, so its presence means the other three are complete
// Every file is written to a temporary name and renamed into place: a file that exists is whole.
//
// Resuming: items are processed in chunks of `chunk_size`; each finished chunk is committed to
// out_dir/.mmembed-partial/ (chunk-N.npy, then chunk-N.jsonl as the commit record). A rerun of
// the same job (same model, kind, chunk size and items, checked by a fingerprint in
// .mmembed-partial/job.json) skips the committed chunks, so a job killed at any point (kill -9
// included) resumes where it stopped. A different job over the same partial directory is an
// error unless `restart` is set. A job whose run.json exists and matches is not rerun.
// The contents count too, through size and modification time: job.json and run.json record
// every file of the model (weights, config, tokenizer), and a rerun after one of them changed is
// refused naming the file (unless `restart`), since it would mix vectors of two models; each
// commit record holds its items' image stamps, and a committed chunk whose images changed since
// is embedded again (BatchJobResult::redone_chunks); a finished job whose images changed is
// refused like a changed model.
//
// One job at a time writes to an output folder (an flock on out_dir/.mmembed-lock); a second
// one fails at once with IoError.
//
// Failures: an item whose image cannot be read or decoded, whose text is empty, or which the
// model refuses (e.g. a text over the limit with TextOverflow::kError) fails alone and goes to
// errors.jsonl; the job goes on. Errors that concern the whole job (unwritable out_dir, a
// different partial job) throw.
//
// Images of the next batch are read and decoded on a helper thread while the model runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mmembed/embedder.h"

namespace mmembed::embed {

struct BatchItem {
  std::string id;
  std::string text;   // caption / text (pair and text jobs)
  std::string image;  // local image path (pair and image jobs)
  std::string label;  // optional, carried to items.jsonl
};

struct BatchProgress {
  std::size_t done = 0, total = 0, failed = 0;
  double seconds = 0;  // since this run started
  std::size_t resumed = 0;  // items taken from committed chunks of an earlier run
};

// Largest chunk_size: a chunk's embeddings and its results are held in memory until it is
// committed, and a million items (4 GB of 1024-d float embeddings) is beyond any sane chunk.
inline constexpr std::size_t kMaxChunkSize = 1'000'000;

struct BatchJobOptions {
  InputKind kind = InputKind::kPair;
  std::string out_dir;
  std::size_t chunk_size = 256;  // items per committed chunk, 1..kMaxChunkSize
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
  bool restart = false;  // discard a partial run of a different job instead of refusing
  // Recorded in run.json.
  std::string model_name, revision, version;
  std::function<void(const BatchProgress&)> on_progress;  // after each batch
  // Test hook: after committing this many chunks, the process kills itself with SIGKILL
  // (a crash at the worst moment: chunks written, final files not). < 0: never.
  int kill_after_chunks = -1;
};

struct BatchJobResult {
  std::size_t items = 0, embedded = 0, failed = 0;
  std::size_t resumed_chunks = 0, chunks = 0;
  // Committed chunks of an earlier run embedded again because an item's image changed since
  // (its size or modification time), and the first such reason.
  std::size_t redone_chunks = 0;
  std::string redone_reason;
  bool already_complete = false;  // run.json of the same job was found; nothing was done
  double seconds = 0;
};

BatchJobResult run_batch_job(const Embedder& embedder, const std::vector<BatchItem>& items,
                             const BatchJobOptions& options);

}  // namespace mmembed::embed
