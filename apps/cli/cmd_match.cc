// mmembed match --model DIR --image PATH --text T [--text T]... [--json]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "model_spec.h"
#include "core/check.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "text/unicode.h"

namespace mmembed::cli {
namespace {

struct MatchOptions {
  std::string revision = "main";
  std::string model, image, image_backend = "pil", dtype = "fp32";
  std::vector<std::string> texts;
  bool json = false;
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;
};

int run_match(const MatchOptions& opt, int threads) {
  for (std::size_t i = 0; i < opt.texts.size(); ++i) {
    MMEMBED_CHECK(opt.texts[i].find_first_not_of(" \t\r\n\f\v") != std::string::npos,
                  InvalidArgument, "--text #", i + 1, " is empty: there is nothing to match");
    text::unicode::validate_utf8(opt.texts[i], str_cat("--text #", i + 1));
  }
  const Image image = Image::read(opt.image, opt.max_image_pixels);
  EmbedderOptions options;
  options.threads = threads;
  options.image_backend = parse_image_backend(opt.image_backend);
  options.dtype = parse_model_dtype(opt.dtype);
  const Embedder embedder = Embedder::load(resolve_model_dir(opt.model, opt.revision), options);
  const std::vector<Image> images(opt.texts.size(), image);
  const std::vector<MatchScore> scores = embedder.match(images, opt.texts);

  if (opt.json) {
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const MatchScore& s = scores[i];
      nlohmann::ordered_json j;
      j["image"] = opt.image;
      j["text"] = opt.texts[i];
      if (s.probability) j["match_probability"] = *s.probability;
      if (s.logit_match) j["itm_logits"] = {*s.logit_no_match, *s.logit_match};
      if (s.cosine) j["cosine"] = *s.cosine;
      if (s.scaled_logit) j["scaled_logit"] = *s.scaled_logit;
      if (s.truncated_tokens) j["truncated_tokens"] = s.truncated_tokens;
      const auto replace = nlohmann::ordered_json::error_handler_t::replace;  // bad UTF-8: U+FFFD
      std::printf("%s\n", j.dump(-1, ' ', false, replace).c_str());
    }
    return 0;
  }
  std::printf("image: %s\n", opt.image.c_str());
  std::printf("%-8s  %-8s  %s\n", "p(match)", "cosine", "text");
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const MatchScore& s = scores[i];
    char p[16] = "-", c[16] = "-";
    if (s.probability) std::snprintf(p, sizeof(p), "%.4f", *s.probability);
    if (s.cosine) std::snprintf(c, sizeof(c), "%.4f", *s.cosine);
    std::printf("%-8s  %-8s  %s%s\n", p, c, opt.texts[i].c_str(),
                s.truncated_tokens ? "  (truncated)" : "");
  }
  return 0;
}

}  // namespace

Runner add_match(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<MatchOptions>();
  CLI::App* cmd = app.add_subcommand("match", "Score how well an image matches texts");
  cmd->description(
      "Score how well an image matches each text.\n"
      "BridgeTower: the image-text matching (ITM) head's probability that the pair matches, and\n"
      "the cosine of the contrastive (ITC) embeddings when the checkpoint has them.");
  cmd->add_option("--model", opt->model,
                  "Model folder or Hugging Face repo id (org/name, or a short name read\n"
                  "as sentence-transformers reads it; docs/hub.md)")
      ->required();
  cmd->add_option("--revision", opt->revision, "Hub revision when --model is a repo id")
      ->capture_default_str();
  cmd->add_option("--image", opt->image, "The image file (JPEG, PNG, WebP or GIF)")->required();
  cmd->add_option("--text", opt->texts, "A text to score against the image (repeatable)")
      ->required();
  cmd->add_flag("--json", opt->json, "One JSON object per text instead of a table");
  bound<std::int64_t>(cmd->add_option("--max-image-pixels", opt->max_image_pixels,
                                       "Refuse images with more pixels than this; 0 = no limit"),
                      0, kMaxImagePixelsLimit)
      ->capture_default_str();
  add_image_backend_option(cmd, &opt->image_backend);
  add_dtype_option(cmd, &opt->dtype);
  return [opt, &global] { return run_match(*opt, global.threads); };
}

}  // namespace mmembed::cli
