// mmembed embed --model DIR [--text T]... [--image PATH]... [--pair PATH TEXT]...
//               [--format jsonl|npy] [-o OUT]
// mmembed embed --model DIR --input MANIFEST|FOLDER --kind pair|text|image -o OUTDIR
//               (the resumable batch job of embed/batch_job.h)
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdlib>
#include <cstdio>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "model_spec.h"
#include "core/check.h"
#include "core/log.h"
#include "core/file.h"
#include "core/output_file.h"
#include "data/manifest.h"
#include "embed/batch_job.h"
#include "hub/progress.h"
#include "io/matrix.h"
#include "mmembed/hub.h"
#include "mmembed/version.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "text/unicode.h"

namespace mmembed::cli {
namespace {

struct EmbedOptions {
  std::string revision = "main";
  std::string model, out, format, long_text = "truncate", image_backend = "pil", dtype = "fp32",
              pair_output = "cross";
  bool json = false;
  std::vector<std::string> texts, images;
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t batch_size = 8;
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
  // Batch job.
  std::string input, kind = "pair", progress = "auto";
  std::size_t chunk_size = 256;
  bool restart = false;
};

struct Row {
  InputKind kind;
  std::string text, image;
  std::span<const float> vector;
  int truncated = 0;
};

void append_float(std::string& out, float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  out.append(buf, r.ptr);
}

std::string jsonl(const std::vector<Row>& rows) {
  std::string out;
  for (const Row& r : rows) {
    nlohmann::ordered_json head;
    head["kind"] = input_kind_name(r.kind);
    if (r.kind != InputKind::kText) head["image"] = r.image;
    if (r.kind != InputKind::kImage) head["text"] = r.text;
    if (r.truncated > 0) head["truncated_tokens"] = r.truncated;
    // Paths and texts that are not UTF-8 get U+FFFD in place of the bad bytes (docs/
    // hostile-inputs.md): one policy for every JSON output, instead of type_error.316.
    std::string line = head.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    line.pop_back();  // '}'
    line += ",\"embedding\":[";
    for (std::size_t i = 0; i < r.vector.size(); ++i) {
      if (i) line += ',';
      append_float(line, r.vector[i]);
    }
    line += "]}\n";
    out += line;
  }
  return out;
}

// A .txt file or standard input: one text per line.
bool text_lines_input(const std::string& input) {
  std::string ext = std::filesystem::path(input).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return input == "-" || ext == ".txt" || ext == ".text";
}

int run_batch(const EmbedOptions& opt, int threads) {
  MMEMBED_CHECK(opt.texts.empty() && opt.images.empty() && opt.pairs.empty(), InvalidArgument,
                "--input runs a batch job: it cannot be combined with --text, --image or --pair");
  MMEMBED_CHECK(!opt.out.empty() && opt.out != "-", InvalidArgument,
                "--input needs -o OUTDIR (the folder for embeddings.npy, items.jsonl, "
                "errors.jsonl and run.json)");
  MMEMBED_CHECK(opt.format.empty(), InvalidArgument,
                "--format applies to --text/--image/--pair; a batch job writes embeddings.npy");
  const InputKind kind = parse_input_kind(opt.kind);
  data::ManifestOptions mo;
  mo.need_text = kind != InputKind::kImage;
  mo.need_image = kind != InputKind::kText;
  mo.check_paths = false;  // a missing image fails alone (errors.jsonl), not the whole job
  const data::Manifest manifest = data::read_dataset(opt.input, mo);
  if (manifest.ids_numbered) {
    core::info(str_cat(opt.input == "-" ? std::string("standard input") : opt.input,
                       ": no id column; the items are numbered by ",
                       text_lines_input(opt.input) ? "line" : "row",
                       " from 1, and items.jsonl holds those ids"));
  }
  std::vector<embed::BatchItem> items;
  items.reserve(manifest.items.size());
  for (const data::Item& it : manifest.items) {
    items.push_back({it.id, kind == InputKind::kImage ? std::string() : it.text,
                     kind == InputKind::kText ? std::string() : it.image, it.label});
  }
  std::size_t urls = 0;
  for (embed::BatchItem& it : items) {
    if (!it.image.empty() && data::is_url(it.image)) {
      ++urls;
      it.image.clear();  // fails alone, with the reason below
    }
  }

  EmbedderOptions options;
  options.batch_size = opt.batch_size;
  options.threads = threads;
  options.text_overflow = opt.long_text == "error" ? TextOverflow::kError : TextOverflow::kTruncate;
  options.image_backend = parse_image_backend(opt.image_backend);
  options.dtype = parse_model_dtype(opt.dtype);
  options.pair_output = parse_pair_output(opt.pair_output);
  const hub::ResolvedModel resolved = resolve_model(opt.model, opt.revision);
  const Embedder embedder = Embedder::load(resolved.dir.string(), options);

  const hub::ProgressMode mode = hub::parse_progress_mode(opt.progress);
  hub::ProgressBar bar("embed", items.size(), hub::ProgressBar::Unit::kCount,
                       hub::progress_display(mode));
  std::size_t shown_done = 0, shown_failed = 0;
  embed::BatchJobOptions job;
  job.kind = kind;
  job.out_dir = opt.out;
  job.chunk_size = opt.chunk_size;
  job.max_image_pixels = opt.max_image_pixels;
  job.restart = opt.restart;
  // run.json names the repository used ("sentence-transformers/x" for the short name "x").
  job.model_name = resolved.local_dir ? opt.model : resolved.repo_id;
  if (!resolved.local_dir) job.revision = resolved.commit.empty() ? opt.revision : resolved.commit;
  job.version = MMEMBED_VERSION;
  job.on_progress = [&](const embed::BatchProgress& p) {
    bar.add_done(p.done - shown_done, p.failed - shown_failed);
    shown_done = p.done;
    shown_failed = p.failed;
  };
  if (const char* k = std::getenv("MMEMBED_TEST_KILL_AFTER_CHUNKS")) job.kill_after_chunks = std::atoi(k);
  const embed::BatchJobResult r = embed::run_batch_job(embedder, items, job);
  bar.finish();
  if (opt.json) {
    // The job's summary as one JSON object on stdout (the files are in OUTDIR as always).
    const nlohmann::ordered_json summary = {
        {"output", opt.out},           {"items", r.items},
        {"embedded", r.embedded},      {"failed", r.failed},
        {"already_complete", r.already_complete},
        {"chunks", r.chunks},          {"resumed_chunks", r.resumed_chunks},
        {"redone_chunks", r.redone_chunks}, {"seconds", r.seconds}};
    write_output_file("-", summary.dump(-1, ' ', false,
                                        nlohmann::ordered_json::error_handler_t::replace) + "\n");
  }
  if (r.already_complete) {
    core::info(str_cat(opt.out, " already holds this job's results (", r.embedded, " embedded, ",
                       r.failed, " failed); nothing to do"));
  } else {
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.1f", r.seconds);
    core::info(str_cat("embedded ", r.embedded, " of ", r.items, " items (", r.failed, " failed",
                       r.resumed_chunks ? str_cat(", ", r.resumed_chunks, " of ", r.chunks,
                                                  " chunks resumed from an earlier run")
                                        : std::string(),
                       ") in ", seconds, " s -> ", opt.out));
  }
  if (r.redone_chunks > 0) {
    std::fprintf(stderr, "mmembed: %zu committed chunks embedded again: %s\n", r.redone_chunks,
                 r.redone_reason.c_str());
  }
  if (urls > 0) {
    std::fprintf(stderr, "mmembed: %zu items have image URLs; download them first with "
                 "'mmembed fetch %s -o DIR' and embed DIR/manifest.jsonl\n", urls,
                 opt.input.c_str());
  }
  if (r.failed > 0) {
    std::fprintf(stderr, "mmembed: see %s/errors.jsonl for the failures\n", opt.out.c_str());
  }
  return r.failed > 0 ? 1 : 0;
}

int run_embed(const EmbedOptions& opt, int threads) {
  if (!opt.input.empty()) return run_batch(opt, threads);
  MMEMBED_CHECK(!opt.texts.empty() || !opt.images.empty() || !opt.pairs.empty(), InvalidArgument,
                "nothing to embed: give --text, --image or --pair");
  std::string format = opt.format;
  MMEMBED_CHECK(!opt.json || format != "npy", InvalidArgument, "--json and --format npy: choose one");
  if (opt.json) format = "jsonl";
  if (format.empty()) {
    format = std::filesystem::path(opt.out).extension() == ".npy" ? "npy" : "jsonl";
  }
  MMEMBED_CHECK(format != "npy" || !opt.out.empty(), InvalidArgument,
                "--format npy writes a binary file: give -o OUT.npy");
  const std::string out = opt.out.empty() ? "-" : opt.out;
  output_kind(out);  // a folder or other unwritable kind fails before the model runs

  EmbedderOptions options;
  options.batch_size = opt.batch_size;
  options.text_overflow = opt.long_text == "error" ? TextOverflow::kError : TextOverflow::kTruncate;
  options.threads = threads;
  options.image_backend = parse_image_backend(opt.image_backend);
  options.dtype = parse_model_dtype(opt.dtype);
  options.pair_output = parse_pair_output(opt.pair_output);
  // Read every image before loading the model: a bad path fails fast.
  std::vector<Image> images, pair_images;
  std::vector<std::string> pair_texts;
  for (const std::string& p : opt.images) images.push_back(Image::read(p, opt.max_image_pixels));
  for (const auto& [p, t] : opt.pairs) {
    pair_images.push_back(Image::read(p, opt.max_image_pixels));
    pair_texts.push_back(t);
  }
  for (std::size_t i = 0; i < opt.texts.size(); ++i) {
    MMEMBED_CHECK(opt.texts[i].find_first_not_of(" \t\r\n\f\v") != std::string::npos,
                  InvalidArgument, "--text #", i + 1, " is empty: there is nothing to embed");
    // Named here: the tokenizer's own message cannot say which of the texts it was.
    text::unicode::validate_utf8(opt.texts[i], str_cat("--text #", i + 1));
  }
  for (std::size_t i = 0; i < pair_texts.size(); ++i) {
    MMEMBED_CHECK(pair_texts[i].find_first_not_of(" \t\r\n\f\v") != std::string::npos,
                  InvalidArgument, "--pair #", i + 1, " (", opt.pairs[i].first,
                  ") has an empty text: there is nothing to embed");
    text::unicode::validate_utf8(pair_texts[i], str_cat("--pair #", i + 1, " text"));
  }

  const Embedder embedder = Embedder::load(resolve_model_dir(opt.model, opt.revision), options);
  const Embeddings t = embedder.embed_texts(opt.texts);
  const Embeddings im = embedder.embed_images(images);
  const Embeddings pr = embedder.embed_pairs(pair_images, pair_texts);

  std::vector<Row> rows;
  for (std::size_t i = 0; i < t.rows; ++i)
    rows.push_back({InputKind::kText, opt.texts[i], "", t.row(i), t.truncated_tokens[i]});
  for (std::size_t i = 0; i < im.rows; ++i)
    rows.push_back({InputKind::kImage, "", opt.images[i], im.row(i), 0});
  for (std::size_t i = 0; i < pr.rows; ++i)
    rows.push_back({InputKind::kPair, pair_texts[i], opt.pairs[i].first, pr.row(i),
                    pr.truncated_tokens[i]});
  for (const Row& r : rows) {
    if (r.truncated > 0) {
      std::fprintf(stderr, "mmembed: warning: %s \"%.60s\" was cut by %d tokens to the model's "
                   "limit of %zu (use --long-text error to refuse instead)\n",
                   input_kind_name(r.kind), r.text.c_str(), r.truncated,
                   embedder.info().max_text_tokens);
    }
  }

  if (format == "npy") {
    std::vector<float> all;
    all.reserve(rows.size() * embedder.info().dim);
    for (const Row& r : rows) all.insert(all.end(), r.vector.begin(), r.vector.end());
    io::write_npy(out, all.data(), static_cast<std::int64_t>(rows.size()),
                  static_cast<std::int64_t>(embedder.info().dim));
  } else {
    write_output_file(out, jsonl(rows));
  }
  if (out != "-") {
    std::fprintf(stderr, "mmembed: wrote %zu embeddings of dimension %zu to %s\n", rows.size(),
                 embedder.info().dim, opt.out.c_str());
  }
  return 0;
}

}  // namespace

Runner add_embed(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<EmbedOptions>();
  CLI::App* cmd = app.add_subcommand(
      "embed", "Embed texts, images and image-text pairs with a model folder");
  cmd->description(
      "Embed texts, images and image-text pairs with a model folder.\n"
      "BridgeTower (checkpoints with ITC heads, e.g. bridgetower-large-itm-mlm-itc): --text gives\n"
      "text_embeds, --image image_embeds, --pair the joint cross_embeds. Vectors are\n"
      "L2-normalised. Output rows: all --text inputs, then --image, then --pair, each in the\n"
      "order given.");
  cmd->add_option("--model", opt->model,
                  "Model folder (config.json, weights, tokenizer, preprocessor_config.json), or a\n"
                  "Hugging Face repo id such as BridgeTower/bridgetower-large-itm-mlm-itc\n"
                  "(Hub cache; docs/hub.md); a name without org/ is read as sentence-transformers\n"
                  "reads it: all-MiniLM-L6-v2 is sentence-transformers/all-MiniLM-L6-v2")
      ->required();
  cmd->add_option("--revision", opt->revision, "Hub revision when --model is a repo id")
      ->capture_default_str();
  cmd->add_option("--text", opt->texts, "A text to embed (repeatable)");
  cmd->add_option("--image", opt->images,
                  "An image file to embed: JPEG, PNG, WebP or GIF (repeatable)");
  cmd->add_option("--pair", opt->pairs, "An image file and its caption, embedded jointly "
                                        "(repeatable): --pair cat.jpg \"a cat on a laptop\"");
  cmd->add_flag("--json", opt->json,
                "JSON out: JSON Lines for --text/--image/--pair (as --format jsonl); for "
                "--input, the job's summary as one JSON object on stdout");
  cmd->add_option("--format", opt->format,
                  "jsonl (one object per line: kind, text/image, embedding) or npy (float32 "
                  "[rows, dim]); default: from the -o extension, else jsonl")
      ->check(CLI::IsMember({"jsonl", "npy"}));
  cmd->add_option("-o,--output", opt->out,
                  "Output file (a regular file is replaced atomically; a FIFO or device is "
                  "written in place); default or '-': stdout (jsonl)");
  bound<std::uint64_t>(cmd->add_option("--batch-size", opt->batch_size,
                                        "Inputs per model call (memory, not results)"),
                       1, kMaxBatchSize)
      ->capture_default_str();
  cmd->add_option("--long-text", opt->long_text,
                  "Texts over the model's token limit: truncate (warns) or error")
      ->check(CLI::IsMember({"truncate", "error"}))
      ->capture_default_str();
  bound<std::int64_t>(cmd->add_option("--max-image-pixels", opt->max_image_pixels,
                                       "Refuse images with more pixels than this (decompression "
                                       "bombs); 0 = no limit"),
                      0, kMaxImagePixelsLimit)
      ->capture_default_str();
  cmd->add_option("--pair-output", opt->pair_output,
                  "BridgeTower pairs: cross (the ITC joint embedding, cross_embeds; needs ITC "
                  "heads), pooled (BridgeTowerModel's pooler_output, 2H), text-cls or image-cls "
                  "(the CLS rows of its text / image features, H); the last three are raw, not "
                  "normalised, and work for every BridgeTower checkpoint (bridgetower-base too)")
      ->check(CLI::IsMember({"cross", "pooled", "text-cls", "image-cls"}))
      ->capture_default_str();
  add_image_backend_option(cmd, &opt->image_backend);
  add_dtype_option(cmd, &opt->dtype);
  cmd->add_option("--input", opt->input,
                  "Batch job: a manifest (JSONL/CSV/TSV with id, image, text[, label]; without an "
                  "id column the rows are numbered from 1), an image folder, a .txt file (one "
                  "text per line) or - (texts on standard input); writes "
                  "OUTDIR/{embeddings.npy,items.jsonl,errors.jsonl,run.json} and resumes an "
                  "interrupted run");
  CLI::Option* kind = cmd->add_option("--kind", opt->kind,
                                      "Batch job: what to embed from each item (default: text for "
                                      "a .txt file or standard input, else pair)")
                          ->check(CLI::IsMember({"pair", "text", "image"}))
                          ->capture_default_str();
  bound<std::uint64_t>(cmd->add_option("--chunk-size", opt->chunk_size,
                                        "Batch job: items per committed chunk (what a resumed run "
                                        "can skip)"),
                       1, embed::kMaxChunkSize)
      ->capture_default_str();
  cmd->add_flag("--restart", opt->restart,
                "Batch job: discard results or a partial run of a different job in OUTDIR");
  cmd->add_option("--progress", opt->progress, "Progress bar: auto (when stderr is a terminal), "
                                               "always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  return [opt, kind, &global] {
    if (kind->count() == 0 && !opt->input.empty() && text_lines_input(opt->input)) {
      opt->kind = "text";
    }
    return run_embed(*opt, global.threads);
  };
}

}  // namespace mmembed::cli
