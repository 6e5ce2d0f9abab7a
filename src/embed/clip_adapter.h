// CLIP behind the Embedder, and what zero-shot classification needs beyond the facade.
//
//   const auto* clip = dynamic_cast<const embed::ClipAdapter*>(&embedder.adapter());
//   std::vector<double> p = clip->zero_shot(image, {"a photo of a cat", "a photo of a dog"});
#pragma once

#include <span>
#include <string>
#include <vector>

#include "embed/adapter.h"

namespace mmembed::embed {

class ClipAdapter : public ModelAdapter {
 public:
  // The stored logit_scale (log space); logits are exp(logit_scale) * cosine.
  virtual float logit_scale() const = 0;
  // CLIPModel(text=prompts, images=[image]).logits_per_image.softmax(dim=1)[0]: the
  // probability of each prompt, in the prompts' order. Needs both towers and >= 1 prompt.
  virtual std::vector<double> zero_shot(const Image& image,
                                        std::span<const std::string> prompts) const = 0;
  // The same logits before the softmax.
  virtual std::vector<double> zero_shot_logits(const Image& image,
                                               std::span<const std::string> prompts) const = 0;
};

}  // namespace mmembed::embed
