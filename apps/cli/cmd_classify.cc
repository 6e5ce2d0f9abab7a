// mmembed classify --model M --image PATH [--image PATH ...] | --input MANIFEST|FOLDER
//                  --labels "a cat,a motorcycle,a car" [--template "a photo of a {}"] [--top K]
//                  [--json]
// Zero-shot classification with a CLIP model: softmax over exp(logit_scale) * cosine(image,
// prompt), as CLIPModel(...).logits_per_image.softmax(dim=1).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/check.h"
#include "core/file.h"
#include "core/log.h"
#include "core/output_file.h"
#include "data/manifest.h"
#include "embed/clip_adapter.h"
#include "model_spec.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "text/unicode.h"

namespace mmembed::cli {
namespace {

struct ClassifyOptions {
  std::string model, revision = "main", labels, templ, image_backend = "pil", dtype = "fp32", input;
  std::vector<std::string> images;
  std::size_t batch_size = 8;
  std::vector<std::string> label_list;  // --label, each taken as given
  std::size_t top = 0;
  bool json = false;
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
};

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::vector<std::string> split_labels(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = list.find(',', start);
    const std::string label = trim(list.substr(start, comma - start));
    MMEMBED_CHECK(!label.empty(), InvalidArgument, "--labels: label #", out.size() + 1,
                  " is empty (labels are separated by commas: \"a cat,a dog\")");
    out.push_back(label);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string prompt_for(const std::string& templ, const std::string& label) {
  if (templ.empty()) return label;
  const std::size_t at = templ.find("{}");
  MMEMBED_CHECK(at != std::string::npos, InvalidArgument, "--template \"", templ,
                "\" has no {} where the label goes (e.g. \"a photo of a {}\")");
  std::string p = templ;
  p.replace(at, 2, label);
  return p;
}

int run_classify(const ClassifyOptions& opt, int threads) {
  MMEMBED_CHECK(opt.labels.empty() != opt.label_list.empty(), InvalidArgument,
                "give the candidate labels with --labels \"a cat,a dog\" or with --label "
                "\"a cat\" --label \"a dog\" (a label that holds a comma), not both");
  std::vector<std::string> labels;
  if (!opt.labels.empty()) labels = split_labels(opt.labels);
  for (std::size_t i = 0; i < opt.label_list.size(); ++i) {
    MMEMBED_CHECK(!trim(opt.label_list[i]).empty(), InvalidArgument, "--label #", i + 1,
                  " is empty");
    labels.push_back(opt.label_list[i]);
  }
  // Named by the option that gave it, as the empty-label messages above, and quoted escaped.
  const std::string source = opt.labels.empty() ? "--label #" : "--labels: label #";
  std::vector<std::string> prompts;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    text::unicode::validate_utf8(
        labels[i], str_cat(source, i + 1, " (\"", escape_for_message(labels[i], 40), "\")"));
    prompts.push_back(prompt_for(opt.templ, labels[i]));
  }
  text::unicode::validate_utf8(opt.templ, "--template");
  MMEMBED_CHECK(opt.images.empty() != opt.input.empty(), InvalidArgument,
                "give the images with --image PATH (repeatable) or with --input MANIFEST|FOLDER, "
                "not both");

  // The images, each with an id; one that cannot be read fails alone.
  struct Target {
    std::string id, path, error;
  };
  std::vector<Target> targets;
  if (!opt.input.empty()) {
    data::ManifestOptions mo;
    mo.need_text = false;
    mo.check_paths = false;  // a missing image fails alone
    for (const data::Item& it : data::read_dataset(opt.input, mo).items)
      targets.push_back({it.id, it.image, ""});
  } else {
    for (const std::string& p : opt.images) targets.push_back({p, p, ""});
  }
  const bool single = opt.input.empty() && targets.size() == 1;
  std::vector<Image> images;
  std::vector<std::size_t> image_of;  // index into targets of each read image
  for (std::size_t i = 0; i < targets.size(); ++i) {
    try {
      MMEMBED_CHECK(!data::is_url(targets[i].path), IoError, targets[i].path,
                    ": a URL (run 'mmembed fetch' first and classify the local copies)");
      images.push_back(Image::read(targets[i].path, opt.max_image_pixels));
      image_of.push_back(i);
    } catch (const Error& e) {
      if (single) throw;
      targets[i].error = e.what();
    }
  }

  EmbedderOptions options;
  options.threads = threads;
  options.batch_size = opt.batch_size;
  options.image_backend = parse_image_backend(opt.image_backend);
  options.dtype = parse_model_dtype(opt.dtype);
  const Embedder embedder = Embedder::load(resolve_model_dir(opt.model, opt.revision), options);
  const auto* clip = dynamic_cast<const embed::ClipAdapter*>(&embedder.adapter());
  MMEMBED_CHECK(clip != nullptr, Unsupported, opt.model, ": classify needs a CLIP model (this is a ",
                embedder.info().family, " model)");
  const std::vector<embed::ClipAdapter::ZeroShot> results = clip->zero_shot(images, prompts);

  // Labels best first for one result.
  auto ranked = [&](const embed::ClipAdapter::ZeroShot& r) {
    std::vector<std::size_t> order(labels.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return r.probabilities[a] > r.probabilities[b];
    });
    order.resize(opt.top == 0 ? order.size() : std::min(opt.top, order.size()));
    return order;
  };
  auto label_rows = [&](const embed::ClipAdapter::ZeroShot& r) {
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (std::size_t i : ranked(r)) {
      rows.push_back({{"label", labels[i]},
                      {"prompt", prompts[i]},
                      {"probability", r.probabilities[i]},
                      {"logit", r.logits[i]}});
    }
    return rows;
  };
  const auto dump = [](const nlohmann::ordered_json& j) {
    return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  };

  std::string out;
  if (single) {  // one image: the label lines (or object) as always
    if (opt.json) {
      nlohmann::ordered_json j;
      j["model"] = opt.model;
      j["image"] = targets[0].path;
      if (!opt.templ.empty()) j["template"] = opt.templ;
      j["logit_scale"] = clip->logit_scale();
      j["labels"] = label_rows(results[0]);
      out = dump(j);
    } else {
      for (std::size_t i : ranked(results[0])) {
        char p[32];
        std::snprintf(p, sizeof(p), "%.6f", results[0].probabilities[i]);
        out += str_cat(p, "  ", labels[i], "\n");
      }
    }
  } else if (opt.json) {
    nlohmann::ordered_json j;
    j["model"] = opt.model;
    if (!opt.templ.empty()) j["template"] = opt.templ;
    j["logit_scale"] = clip->logit_scale();
    nlohmann::ordered_json rows = nlohmann::ordered_json::array(), errors = rows;
    std::size_t next = 0;
    for (const Target& t : targets) {
      if (!t.error.empty()) {
        errors.push_back({{"id", t.id}, {"image", t.path}, {"error", t.error}});
        continue;
      }
      rows.push_back({{"id", t.id}, {"image", t.path}, {"labels", label_rows(results[next++])}});
    }
    j["images"] = rows;
    j["errors"] = errors;
    out = dump(j);
  } else {  // a table: one row per image and label shown, best first
    out = "id\trank\tlabel\tprobability\n";
    std::size_t next = 0;
    for (const Target& t : targets) {
      if (!t.error.empty()) continue;
      const embed::ClipAdapter::ZeroShot& r = results[next++];
      std::size_t rank = 0;
      for (std::size_t i : ranked(r)) {
        char p[32];
        std::snprintf(p, sizeof(p), "%.6f", r.probabilities[i]);
        out += str_cat(tsv_field(t.id), "\t", ++rank, "\t", tsv_field(labels[i]), "\t", p, "\n");
      }
    }
  }
  write_output_file("-", out);
  std::size_t failed = 0;
  for (const Target& t : targets) {
    if (t.error.empty()) continue;
    if (++failed <= 5) {
      std::fprintf(stderr, "mmembed: warning: %s\n", printable_message(t.error).c_str());
    }
  }
  if (failed > 0) {
    core::info(str_cat(failed, " of ", targets.size(), " images could not be classified",
                       failed > 5 ? " (the first 5 are named above)" : ""));
    return 1;
  }
  return 0;
}

}  // namespace

Runner add_classify(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<ClassifyOptions>();
  CLI::App* cmd = app.add_subcommand("classify", "Zero-shot image classification with CLIP");
  cmd->description(
      "Zero-shot image classification with a CLIP model folder: each label (optionally put into\n"
      "--template) is embedded as a text, and the probabilities are the softmax over\n"
      "exp(logit_scale) * cosine(image, text), as CLIPModel's logits_per_image.softmax(dim=1).\n"
      "One image: one line per label, best first: probability, label. Several images (--image\n"
      "repeated, or --input): a TSV table id, rank, label, probability (or --json); an image\n"
      "that cannot be read is named on stderr and the others are still classified (exit 1).");
  cmd->add_option("--model", opt->model, "CLIP model folder or Hugging Face repo id")
      ->required();
  cmd->add_option("--revision", opt->revision, "Hub revision (branch, tag or commit)")
      ->capture_default_str();
  cmd->add_option("--image", opt->images,
                  "An image file: JPEG, PNG, WebP or GIF (repeatable: a table of all)");
  cmd->add_option("--input", opt->input,
                  "Many images: a manifest (JSONL/CSV/TSV with an image column) or a folder of "
                  "images; a table (or --json) with one row per image and label");
  bound<std::uint64_t>(cmd->add_option("--batch-size", opt->batch_size, "Images per model call"),
                       1, kMaxBatchSize)
      ->capture_default_str();
  cmd->add_option("--labels", opt->labels,
                  "Comma-separated candidate labels, e.g. \"a cat,a motorcycle,a car\" (spaces "
                  "around each are removed)");
  cmd->add_option("--label", opt->label_list,
                  "One candidate label, taken as given, commas included (repeatable; instead of "
                  "--labels)");
  cmd->add_option("--template", opt->templ,
                  "Prompt template with {} for the label, e.g. \"a photo of a {}\" (default: the "
                  "label itself)");
  bound<std::uint64_t>(cmd->add_option("--top", opt->top,
                                        "Show only the K most probable labels (0 = all)"),
                       0, kMaxCount);
  cmd->add_flag("--json", opt->json,
                "JSON output: labels best first with prompt, probability and logit");
  bound<std::int64_t>(cmd->add_option("--max-image-pixels", opt->max_image_pixels,
                                       "Refuse images with more pixels than this (decompression "
                                       "bombs); 0 = no limit"),
                      0, kMaxImagePixelsLimit)
      ->capture_default_str();
  add_image_backend_option(cmd, &opt->image_backend);
  add_dtype_option(cmd, &opt->dtype);
  return [opt, &global] { return run_classify(*opt, global.threads); };
}

}  // namespace mmembed::cli
