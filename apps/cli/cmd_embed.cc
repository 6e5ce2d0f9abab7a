// mmembed embed --model DIR [--text T]... [--image PATH]... [--pair PATH TEXT]...
//               [--format jsonl|npy] [-o OUT]
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "core/check.h"
#include "io/matrix.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"

namespace mmembed::cli {
namespace {

struct EmbedOptions {
  std::string model, out, format, long_text = "truncate";
  std::vector<std::string> texts, images;
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t batch_size = 8;
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
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
    std::string line = head.dump();
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

int run_embed(const EmbedOptions& opt, int threads) {
  MMEMBED_CHECK(!opt.texts.empty() || !opt.images.empty() || !opt.pairs.empty(), InvalidArgument,
                "nothing to embed: give --text, --image or --pair");
  std::string format = opt.format;
  if (format.empty()) {
    format = std::filesystem::path(opt.out).extension() == ".npy" ? "npy" : "jsonl";
  }
  MMEMBED_CHECK(format != "npy" || !opt.out.empty(), InvalidArgument,
                "--format npy writes a binary file: give -o OUT.npy");

  EmbedderOptions options;
  options.batch_size = opt.batch_size;
  options.text_overflow = opt.long_text == "error" ? TextOverflow::kError : TextOverflow::kTruncate;
  options.threads = threads;
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
  }
  for (std::size_t i = 0; i < pair_texts.size(); ++i) {
    MMEMBED_CHECK(pair_texts[i].find_first_not_of(" \t\r\n\f\v") != std::string::npos,
                  InvalidArgument, "--pair #", i + 1, " (", opt.pairs[i].first,
                  ") has an empty text: there is nothing to embed");
  }

  const Embedder embedder = Embedder::load(opt.model, options);
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
    io::write_npy(opt.out, all.data(), static_cast<std::int64_t>(rows.size()),
                  static_cast<std::int64_t>(embedder.info().dim));
  } else {
    const std::string text = jsonl(rows);
    if (opt.out.empty() || opt.out == "-") std::fwrite(text.data(), 1, text.size(), stdout);
    else io::write_file_atomic(opt.out, text);
  }
  if (!opt.out.empty() && opt.out != "-") {
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
  cmd->add_option("--model", opt->model, "Model folder (config.json, weights, tokenizer, "
                                         "preprocessor_config.json)")
      ->required();
  cmd->add_option("--text", opt->texts, "A text to embed (repeatable)");
  cmd->add_option("--image", opt->images, "An image file to embed: JPEG, PNG or WebP (repeatable)");
  cmd->add_option("--pair", opt->pairs, "An image file and its caption, embedded jointly "
                                        "(repeatable): --pair cat.jpg \"a cat on a laptop\"");
  cmd->add_option("--format", opt->format,
                  "jsonl (one object per line: kind, text/image, embedding) or npy (float32 "
                  "[rows, dim]); default: from the -o extension, else jsonl")
      ->check(CLI::IsMember({"jsonl", "npy"}));
  cmd->add_option("-o,--output", opt->out, "Output file (written atomically); default: stdout (jsonl)");
  cmd->add_option("--batch-size", opt->batch_size, "Inputs per model call (memory, not results)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--long-text", opt->long_text,
                  "Texts over the model's token limit: truncate (warns) or error")
      ->check(CLI::IsMember({"truncate", "error"}))
      ->capture_default_str();
  cmd->add_option("--max-image-pixels", opt->max_image_pixels,
                  "Refuse images with more pixels than this (decompression bombs); 0 = no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return [opt, &global] { return run_embed(*opt, global.threads); };
}

}  // namespace mmembed::cli
