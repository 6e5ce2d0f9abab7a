// The seam between the Embedder facade (include/mmembed/embedder.h) and one model family.
//
// A family adapter owns its tokenizer, image processor and model, and implements the calls its
// family supports; the others keep the default, which throws Unsupported with
// info().unsupported_reason. The facade has already checked the inputs (non-empty texts, equal
// pair counts) and splits the work into batches of at most options.batch_size, so an adapter
// sees 1..batch_size items per call.
//
// Adding a family: write `std::unique_ptr<ModelAdapter> make_<family>_adapter(const ModelFolder&,
// const EmbedderOptions&)` in src/embed/<family>_adapter.cc and add it to detect_family() /
// make_adapter() in src/embed/embedder.cc.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/config.h"
#include "io/weight_map.h"
#include "mmembed/embedder.h"

namespace mmembed::vision {
class ImageProcessor;
enum class ImageBackend;
}  // namespace mmembed::vision

namespace mmembed::embed {

// A model folder and its parsed config.json.
struct ModelFolder {
  std::string dir;
  io::ConfigReader config;
  bool has_file(const std::string& name) const;
  std::string file(const std::string& name) const;  // dir + "/" + name
};

// Inputs already converted to what the model takes (token ids, pixel tensors). Making them is
// the CPU work before the model (tokenizing, resizing, normalizing); the batch job does it on a
// helper thread while the model runs on the previous batch.
struct Prepared {
  virtual ~Prepared() = default;
  InputKind kind = InputKind::kText;
  std::size_t rows = 0;
};

class ModelAdapter {
 public:
  virtual ~ModelAdapter() = default;
  virtual const ModelInfo& info() const = 0;

  // prepare() is const and touches no model weights; run() does the model work. The defaults
  // keep copies of the inputs and call the embed_* method in run(); a family that can split its
  // work overrides both. `texts` is empty for kImage, `images` for kText.
  virtual std::unique_ptr<Prepared> prepare(InputKind kind, std::span<const Image> images,
                                            std::span<const std::string> texts) const;
  virtual Embeddings run(const Prepared& prepared) const;

  virtual Embeddings embed_texts(std::span<const std::string> texts) const;
  virtual Embeddings embed_images(std::span<const Image> images) const;
  virtual Embeddings embed_pairs(std::span<const Image> images,
                                 std::span<const std::string> texts) const;
  virtual std::vector<MatchScore> match(std::span<const Image> images,
                                        std::span<const std::string> texts) const;
  // Embedder::image_match_features / match_text (inputs checked; features of the right shape);
  // match_text sees all the images and batches them itself.
  virtual std::vector<ImageMatchFeatures> image_match_features(std::span<const Image> images) const;
  virtual std::vector<MatchScore> match_text(const std::string& text,
                                             std::span<const ImageMatchFeatures> images) const;

 protected:
  [[noreturn]] void unsupported(InputKind kind) const;
  [[noreturn]] void unsupported(const char* call) const;
};

// Helpers shared by the adapters.
// Throws Unsupported: "<path>: this <family> model does not support <call>: <reason>".
[[noreturn]] void throw_unsupported(const ModelInfo& info, const std::string& call);
// A U8 [H, W, 3] tensor viewing the image's bytes (no copy; valid while `image` lives).
Tensor image_view(const Image& image);
// The processor's pixel_values [B, 3, H, W] for a batch of images.
Tensor preprocess_images(const vision::ImageProcessor& processor, std::span<const Image> images);
// The model layer's load options for EmbedderOptions (dtype).
io::LoadOptions load_options(const EmbedderOptions& options);
// The vision layer's spelling of EmbedderOptions::image_backend.
vision::ImageBackend to_vision_backend(ImageBackend backend);
// [B, C] f32 tensor -> Embeddings (copies).
Embeddings to_embeddings(const Tensor& rows);
// Appends `more` below `into` (same dim).
void append_rows(Embeddings& into, const Embeddings& more);

std::unique_ptr<ModelAdapter> make_bridgetower_adapter(const ModelFolder& folder,
                                                       const EmbedderOptions& options);
std::unique_ptr<ModelAdapter> make_clip_adapter(const ModelFolder& folder,
                                                const EmbedderOptions& options);
std::unique_ptr<ModelAdapter> make_sentence_adapter(const ModelFolder& folder,
                                                    const EmbedderOptions& options);

}  // namespace mmembed::embed
