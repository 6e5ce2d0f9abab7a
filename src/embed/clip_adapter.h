// CLIP behind the Embedder, and what zero-shot classification needs beyond the facade.
//
//   const auto* clip = dynamic_cast<const embed::ClipAdapter*>(&embedder.adapter());
//   auto result = clip->zero_shot(image, prompts);   // .logits, .probabilities (prompt order)
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
  // CLIPModel(text=prompts, images=[image]): logits_per_image[0] and its softmax over the
  // prompts (the zero-shot probabilities), in the prompts' order. Needs both towers and at
  // least one prompt (InvalidArgument otherwise).
  struct ZeroShot {
    std::vector<double> logits;         // exp(logit_scale) * cosine, as float32 in the reference
    std::vector<double> probabilities;  // softmax(logits), computed in double
  };
  virtual ZeroShot zero_shot(const Image& image, std::span<const std::string> prompts) const = 0;
  // The same for many images: the prompts are embedded once and the images in batches of the
  // options' batch_size; one result per image, in order, each as zero_shot(image, prompts)
  // gives it (within the batch-size tolerance of docs/numerics.md).
  virtual std::vector<ZeroShot> zero_shot(std::span<const Image> images,
                                          std::span<const std::string> prompts) const = 0;
};

}  // namespace mmembed::embed
