// Pillow-exact resampling of 8-bit images: `Image.resize((w, h), resample)` with the default box
// and reducing_gap=None, as transformers calls it (Pillow 11.3, src/libImaging/Resample.c).
//
//   Tensor small = vision::resize(rgb, 224, 298, vision::Resample::Bicubic);  // U8 [224,298,3]
//
// How (spec clip-and-formats.md D): separable convolution, horizontal pass first into a uint8
// intermediate, then vertical; a pass is skipped when its axis keeps its size, and an unchanged
// size is a plain copy. Per output pixel the kernel (stretched by the scale when downscaling) is
// evaluated in double, normalized by its sequential sum, then stored as 22-bit fixed point
// rounded half away from zero; the int32 accumulator starts at 1 << 21, is shifted right by 22
// and clipped to [0, 255] after each pass. Results are bit-identical to Pillow, and identical for
// every thread count (each output pixel is computed independently).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace mmembed {
class ThreadPool;
}

namespace mmembed::vision {

// Pillow's constants (PIL.Image.Resampling), also the `resample` values of preprocessor_config.json.
enum class Resample { Nearest = 0, Lanczos = 1, Bilinear = 2, Bicubic = 3, Box = 4, Hamming = 5 };

const char* resample_name(Resample resample);

// `image`: U8 [H, W, C] with 1 <= C <= 4 (channels resampled independently). Returns a new
// U8 [out_height, out_width, C]. Throws InvalidArgument for a size < 1, Unsupported for Nearest
// (Pillow uses a different, affine code path for it), ShapeError for a wrong dtype or rank.
// `pool` (optional) splits the rows of each pass over its threads.
Tensor resize(const Tensor& image, std::int64_t out_height, std::int64_t out_width,
              Resample resample, ThreadPool* pool = nullptr);

// What torchvision's `transforms.v2.functional.resize(uint8 tensor, size, BICUBIC or BILINEAR,
// antialias=True)` computes on the CPU, as transformers 5's default (torchvision) image
// processors call it. Torch resizes uint8 images natively (aten `_upsample_bicubic2d_aa` /
// `_upsample_bilinear2d_aa`, a port of Pillow-SIMD) with Pillow's scheme and bounds but:
//   - weights in int16 with a per-axis precision: the most fraction bits (<= 22) for which twice
//     the axis's largest weight rounds below 2^15 (Pillow: always 22 bits in int32);
//   - the bicubic filter's outer segment evaluated as ((a x - 5a) x + 8a) x - 4a (a = -0.5).
// Same passes as resize() otherwise (horizontal first into uint8, a pass skipped when its axis
// keeps its size, (acc + 2^(p-1)) >> p clipped to [0, 255]). Throws Unsupported for other filters.
// BILINEAR equals torchvision only where it resizes uint8 natively (AVX2 CPUs, aarch64); on other
// CPUs it resizes bilinear in float and rounds (docs/numerics.md "Image backends").
Tensor resize_torchvision(const Tensor& image, std::int64_t out_height, std::int64_t out_width,
                          Resample resample, ThreadPool* pool = nullptr);

}  // namespace mmembed::vision
