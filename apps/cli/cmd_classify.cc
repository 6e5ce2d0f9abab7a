// mmembed classify --model DIR --image PATH --labels "a cat,a motorcycle,a car"
//                  [--template "a photo of a {}"] [--top K] [--json]
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
#include "embed/clip_adapter.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "text/unicode.h"

namespace mmembed::cli {
namespace {

struct ClassifyOptions {
  std::string model, image, labels, templ, image_backend = "pil";
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
  const Image image = Image::read(opt.image, opt.max_image_pixels);

  EmbedderOptions options;
  options.threads = threads;
  options.image_backend = parse_image_backend(opt.image_backend);
  const Embedder embedder = Embedder::load(opt.model, options);
  const auto* clip = dynamic_cast<const embed::ClipAdapter*>(&embedder.adapter());
  MMEMBED_CHECK(clip != nullptr, Unsupported, opt.model, ": classify needs a CLIP model (this is a ",
                embedder.info().family, " model)");
  const embed::ClipAdapter::ZeroShot result = clip->zero_shot(image, prompts);
  const std::vector<double>& logits = result.logits;
  const std::vector<double>& probs = result.probabilities;

  std::vector<std::size_t> order(labels.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return probs[a] > probs[b]; });
  const std::size_t shown = opt.top == 0 ? order.size() : std::min(opt.top, order.size());

  if (opt.json) {
    nlohmann::ordered_json out;
    out["model"] = opt.model;
    out["image"] = opt.image;
    if (!opt.templ.empty()) out["template"] = opt.templ;
    out["logit_scale"] = clip->logit_scale();
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (std::size_t r = 0; r < shown; ++r) {
      const std::size_t i = order[r];
      nlohmann::ordered_json row;
      row["label"] = labels[i];
      row["prompt"] = prompts[i];
      row["probability"] = probs[i];
      row["logit"] = logits[i];
      rows.push_back(row);
    }
    out["labels"] = rows;
    std::printf("%s\n",
                out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  } else {
    for (std::size_t r = 0; r < shown; ++r) {
      const std::size_t i = order[r];
      std::printf("%.6f  %s\n", probs[i], labels[i].c_str());
    }
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
      "Prints one line per label, best first: probability, label.");
  cmd->add_option("--model", opt->model, "CLIP model folder (config.json, weights, tokenizer, "
                                         "preprocessor_config.json)")
      ->required();
  cmd->add_option("--image", opt->image, "The image file: JPEG, PNG, WebP or GIF")->required();
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
  return [opt, &global] { return run_classify(*opt, global.threads); };
}

}  // namespace mmembed::cli
