// The Hugging Face image processors, bit-exact with transformers 4.44.2's slow (PIL-based)
// CLIPImageProcessor and BridgeTowerImageProcessor as BridgeTowerProcessor calls it.
//
//   auto options = vision::ImageProcessorOptions::from_json_file("model/preprocessor_config.json");
//   vision::ImageProcessor processor(options);
//   vision::PixelBatch batch = processor.preprocess({vision::read_image("a.jpg").rgb});
//   // batch.pixel_values: F32 [1, 3, H, W]; batch.pixel_mask: I64 [1, H, W] (BridgeTower only)
//
// Steps per image, each optional by its do_* flag, in this order:
//   resize (Pillow-exact, vision/resize.h) -> center crop (zero padding where the image is
//   smaller) -> rescale float32(double(u8) * rescale_factor) -> normalize float32 (x - mean) / std
//   -> HWC to CHW; then BridgeTower pads the batch bottom/right with 0.0 to its largest height and
//   width and returns pixel_mask (1 = image, 0 = padding).
//
// Size rules:
//   CLIP, {"shortest_edge": s}: the short side becomes s, the long side int(s * long / short).
//        {"height", "width"}: exactly that size.
//   BridgeTower, {"shortest_edge": s}: short side s, long side capped at int(1333/800 * s), both
//        rounded half up and floored to a multiple of size_divisor (spec bridgetower.md 5.3).
//        The crop is s x s (crop_size falls back to size), always on: BridgeTowerProcessor passes
//        do_center_crop=True whatever the config says. Set do_center_crop = false to reproduce
//        the bare BridgeTowerImageProcessor (no crop, batch padded).
//
// Where the reference fails, we differ on purpose (docs/numerics.md "## Images"):
//   - images whose height is 1 or 3 are misread by HF as channels-first; we always read
//     channels-last, so a 1x1 image becomes a uniform image of its colour;
//   - BridgeTower on a very thin image (e.g. 7x300) would resize one side to 0 and HF raises
//     "height and width must be > 0": we throw InvalidArgument naming the sizes.
//
// Thread-safety: an ImageProcessor is immutable; preprocess() is const and may be called from
// several threads (the optional ThreadPool serializes concurrent parallel_for calls).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "vision/resize.h"

namespace mmembed {
class ThreadPool;
}

namespace mmembed::vision {

enum class ProcessorKind { Clip, BridgeTower };

// Bounds on what preprocessor_config.json may ask for (docs/hostile-inputs.md): every resize,
// crop and divisor side at most kMaxProcessorSide pixels, and a resized image (before the crop)
// at most kMaxResizedPixels pixels.
inline constexpr std::int64_t kMaxProcessorSide = 16384;
inline constexpr std::int64_t kMaxResizedPixels = std::int64_t{1} << 26;

// Which implementation of the processors to reproduce (docs/numerics.md "Image backends"):
//   Pil:         transformers 4.x's slow processors (Pillow resize; 4.44.2 is the pinned
//                reference) and transformers 5's `backend="pil"` ones: bit-exact.
//   Torchvision: transformers 5's default processors when torchvision is installed: torch's
//                uint8 antialiased resize (vision/resize.h resize_torchvision), torchvision's
//                center crop (pads floor(diff / 2) before the image, not ceil), and rescale fused
//                into normalize: (float(u8) - mean * k) / (std * k), k = float32(1 / factor),
//                all in float32.
enum class ImageBackend { Pil, Torchvision };
const char* image_backend_name(ImageBackend backend);  // "pil", "torchvision"

struct ImageProcessorOptions {
  ProcessorKind kind = ProcessorKind::Clip;

  bool do_resize = true;
  std::int64_t shortest_edge = 224;  // > 0: shortest-edge rule; 0: exact resize_height x width
  std::int64_t resize_height = 0;
  std::int64_t resize_width = 0;
  std::int64_t size_divisor = 32;  // BridgeTower only
  Resample resample = Resample::Bicubic;

  bool do_center_crop = true;
  std::int64_t crop_height = 224;
  std::int64_t crop_width = 224;

  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;

  bool do_normalize = true;
  std::array<double, 3> image_mean = {0.48145466, 0.4578275, 0.40821073};  // OpenAI CLIP
  std::array<double, 3> image_std = {0.26862954, 0.26130258, 0.27577711};

  bool do_pad = false;  // BridgeTower: pad to the batch's largest size, return pixel_mask

  ImageBackend backend = ImageBackend::Pil;  // not read from the file: the caller's choice

  // CLIPImageProcessor's class defaults (shortest edge 224, crop 224x224).
  static ImageProcessorOptions clip_defaults();
  // BridgeTowerImageProcessor's class defaults as BridgeTowerProcessor calls it
  // (shortest edge 288, crop 288, pad with mask).
  static ImageProcessorOptions bridgetower_defaults();

  // From the text of a preprocessor_config.json. The processor is picked by
  // "image_processor_type" (or "feature_extractor_type"); files without one (the BridgeTower
  // base Hub file is a training-config dump) need `fallback_kind`. Missing keys take the class
  // defaults; unknown keys are ignored. `source` names the file in error messages.
  // Throws FormatError (not JSON, wrong value types), InvalidArgument (bad values, unknown
  // processor), Unsupported (NEAREST resampling).
  static ImageProcessorOptions from_json(const std::string& json_text, const std::string& source,
                                         const ProcessorKind* fallback_kind = nullptr);
  static ImageProcessorOptions from_json_file(const std::string& path,
                                              const ProcessorKind* fallback_kind = nullptr);
};

struct PixelBatch {
  Tensor pixel_values;  // F32 [B, 3, H, W]
  Tensor pixel_mask;    // I64 [B, H, W] when do_pad (BridgeTower), otherwise undefined
};

class ImageProcessor {
 public:
  // Validates the options (InvalidArgument). `pool` (optional, not owned) parallelizes resize.
  explicit ImageProcessor(ImageProcessorOptions options, ThreadPool* pool = nullptr);

  const ImageProcessorOptions& options() const { return options_; }

  // (height, width) after the resize step for an input of (height, width). Throws
  // InvalidArgument when a side would be 0.
  std::pair<std::int64_t, std::int64_t> resized_size(std::int64_t height, std::int64_t width) const;
  // (height, width) of the center crop.
  std::pair<std::int64_t, std::int64_t> crop_size() const;

  // The stages, each on a U8 [H, W, 3] image (exposed for parity tests and debugging).
  Tensor resize(const Tensor& rgb) const;       // U8 [H', W', 3] (the input when !do_resize)
  Tensor center_crop(const Tensor& rgb) const;  // U8 [crop_h, crop_w, 3], zero-padded
  Tensor to_chw_float(const Tensor& rgb) const; // F32 [3, H, W]: rescale, normalize, transpose

  // The whole pipeline on a batch of U8 [H, W, 3] RGB images. Without padding, every processed
  // image must have the same size (ShapeError otherwise).
  PixelBatch preprocess(const std::vector<Tensor>& images) const;

 private:
  ImageProcessorOptions options_;
  ThreadPool* pool_;
};

}  // namespace mmembed::vision
