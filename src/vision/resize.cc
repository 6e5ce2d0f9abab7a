#include "vision/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"

namespace mmembed::vision {

namespace {

// Kernels exactly as Pillow writes them (the evaluation order matters for bit-identical weights).
double bicubic_filter(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double box_filter(double x) {
  if (x > -0.5 && x <= 0.5) return 1.0;
  return 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));  // float constants, as in Pillow
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

// PyTorch's antialiasing bicubic filter (aten UpSample.h: cubic_convolution1/2 with A = -0.5, the
// value PIL uses): the same polynomial as Pillow's, but the outer segment is evaluated as
// ((A x - 5A) x + 8A) x - 4A, whose last bits can differ from Pillow's (((x - 5) x + 8) x - 4) A.
double torch_bicubic_filter(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(Resample resample) {
  switch (resample) {
    case Resample::Bicubic: return {bicubic_filter, 2.0};
    case Resample::Bilinear: return {bilinear_filter, 1.0};
    case Resample::Box: return {box_filter, 0.5};
    case Resample::Hamming: return {hamming_filter, 1.0};
    case Resample::Lanczos: return {lanczos_filter, 3.0};
    case Resample::Nearest: break;
  }
  throw Unsupported("resize: NEAREST resampling is not implemented (Pillow uses an affine "
                    "transform for it); use BICUBIC, BILINEAR, BOX, HAMMING or LANCZOS");
}

Filter torch_filter_for(Resample resample) {
  switch (resample) {
    case Resample::Bicubic: return {torch_bicubic_filter, 2.0};
    case Resample::Bilinear: return {bilinear_filter, 1.0};  // same triangle as Pillow's
    default: break;
  }
  throw Unsupported(str_cat("resize (torchvision): ", resample_name(resample),
                            " is not supported; torch's uint8 antialiased resize has BICUBIC "
                            "and BILINEAR only"));
}

// Pillow's fixed point: 32 bits less 8 for the pixel and 2 for weights above 1.
constexpr int kPillowPrecisionBits = 32 - 8 - 2;

// Fixed-point coefficients of one axis: output i reads `count[i]` input samples starting at
// `first[i]`, weighted by weights[i * ksize + j] / 2^precision.
struct Coefficients {
  int ksize = 0;
  int precision = kPillowPrecisionBits;
  std::vector<int> first, count;
  std::vector<std::int32_t> weights;
};

// Torch stores the weights as int16 (its AVX2 kernels multiply 16-bit pixels by 16-bit weights),
// so it takes the most fraction bits (at most 22) for which the largest weight of the whole axis,
// doubled, still rounds below 2^15 (aten UpSampleKernel.cpp, _compute_index_ranges_int16_weights).
int torch_precision(const std::vector<double>& weights) {
  double w_max = 0.0;
  for (double w : weights) w_max = std::max(w_max, w);
  int p = 0;
  for (; p < 22; ++p) {
    if (static_cast<int>(0.5 + w_max * static_cast<double>(1 << (p + 1))) >= (1 << 15)) break;
  }
  return p;
}

// The weights of one axis, as Pillow's precompute_coeffs computes them (torch's
// _compute_indices_min_size_weights_aa is the same computation); `torch` picks torch's precision.
Coefficients precompute(std::int64_t in_size, std::int64_t out_size, const Filter& filter,
                        bool torch = false) {
  // Pillow's box is (0, in_size) in float; in_size < 2^24 here, so the difference is exact.
  const double in0 = 0.0, in1 = static_cast<double>(in_size);
  double scale = (in1 - in0) / static_cast<double>(out_size);
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = filter.support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> normalized(c.weights.size(), 0.0);
  const double ss = 1.0 / filterscale;
  for (std::int64_t i = 0; i < out_size; ++i) {
    double center = in0 + (static_cast<double>(i) + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = static_cast<int>(in_size);
    xmax -= xmin;
    // Torch clamps the tap count to ksize ("rare cases when due to precision xsize can be
    // larger"); Pillow's bounds never exceed it, so the clamp changes nothing there.
    xmax = std::clamp(xmax, 0, c.ksize);
    double* k = &normalized[static_cast<std::size_t>(i) * c.ksize];
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double w = filter.fn((static_cast<double>(x + xmin) - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    if (ww != 0.0) {
      for (int x = 0; x < xmax; ++x) k[x] /= ww;
    }
    c.first[i] = xmin;
    c.count[i] = xmax;
  }
  if (torch) c.precision = torch_precision(normalized);
  const double one = static_cast<double>(1 << c.precision);
  for (std::size_t j = 0; j < normalized.size(); ++j) {
    const double w = normalized[j] * one;
    c.weights[j] = w < 0 ? static_cast<std::int32_t>(-0.5 + w) : static_cast<std::int32_t>(0.5 + w);
  }
  return c;
}

// (acc >> precision) clipped to [0, 255]: Pillow's clip8, and what torch's saturating packs do.
inline std::uint8_t clip8(std::int32_t acc, int precision) {
  if (acc >= (256 << precision)) return 255;
  if (acc <= 0) return 0;
  return static_cast<std::uint8_t>(acc >> precision);
}

void for_rows(ThreadPool* pool, std::int64_t rows,
              const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (pool != nullptr && pool->num_threads() > 1 && rows > 1) {
    pool->parallel_for(rows, 8, fn);
  } else {
    fn(0, rows);
  }
}

// out[y][i] = sum_j in[y + row_offset][first[i] + j] * w[i][j], for y in [0, out_rows).
void resample_horizontal(const std::uint8_t* in, std::int64_t in_w, std::uint8_t* out,
                         std::int64_t out_w, std::int64_t out_rows, std::int64_t row_offset,
                         int channels, const Coefficients& c, ThreadPool* pool) {
  for_rows(pool, out_rows, [&](std::int64_t y0, std::int64_t y1) {
    for (std::int64_t y = y0; y < y1; ++y) {
      const std::uint8_t* src = in + (y + row_offset) * in_w * channels;
      std::uint8_t* dst = out + y * out_w * channels;
      for (std::int64_t i = 0; i < out_w; ++i) {
        const std::int32_t* k = &c.weights[static_cast<std::size_t>(i) * c.ksize];
        const std::uint8_t* s = src + static_cast<std::int64_t>(c.first[i]) * channels;
        for (int ch = 0; ch < channels; ++ch) {
          std::int32_t acc = 1 << (c.precision - 1);
          for (int x = 0; x < c.count[i]; ++x) acc += s[x * channels + ch] * k[x];
          dst[i * channels + ch] = clip8(acc, c.precision);
        }
      }
    }
  });
}

// out[i][x] = sum_j in[first[i] - row_offset + j][x] * w[i][j].
void resample_vertical(const std::uint8_t* in, std::int64_t row_offset, std::uint8_t* out,
                       std::int64_t width, std::int64_t out_h, int channels,
                       const Coefficients& c, ThreadPool* pool) {
  const std::int64_t row_len = width * channels;
  for_rows(pool, out_h, [&](std::int64_t y0, std::int64_t y1) {
    for (std::int64_t i = y0; i < y1; ++i) {
      const std::int32_t* k = &c.weights[static_cast<std::size_t>(i) * c.ksize];
      const std::uint8_t* s = in + (c.first[i] - row_offset) * row_len;
      std::uint8_t* dst = out + i * row_len;
      for (std::int64_t x = 0; x < row_len; ++x) {
        std::int32_t acc = 1 << (c.precision - 1);
        for (int j = 0; j < c.count[i]; ++j) acc += s[j * row_len + x] * k[j];
        dst[x] = clip8(acc, c.precision);
      }
    }
  });
}

Tensor resize_impl(const Tensor& image, std::int64_t out_height, std::int64_t out_width,
                   Resample resample, bool torch, ThreadPool* pool) {
  const char* what = torch ? "resize_torchvision" : "resize";
  MMEMBED_CHECK(image.dtype() == DType::U8 && image.rank() == 3, ShapeError, what,
                ": expected a U8 [H, W, C] image, got ", image.describe());
  const std::int64_t in_h = image.dim(0), in_w = image.dim(1);
  const int channels = static_cast<int>(image.dim(2));
  MMEMBED_CHECK(channels >= 1 && channels <= 4, ShapeError, what,
                ": expected 1 to 4 channels, got ", image.describe());
  MMEMBED_CHECK(in_h >= 1 && in_w >= 1, ShapeError, what, ": empty image ", image.describe());
  MMEMBED_CHECK(out_height >= 1 && out_width >= 1, InvalidArgument, what,
                ": height and width must be > 0, got ", out_height, "x", out_width,
                " (height x width)");
  constexpr std::int64_t kMaxSide = (1 << 24);  // Pillow keeps sizes in int and boxes in float
  MMEMBED_CHECK(in_h < kMaxSide && in_w < kMaxSide && out_height < kMaxSide && out_width < kMaxSide,
                InvalidArgument, what, ": sides must be below 2^24, got ", in_h, "x", in_w, " -> ",
                out_height, "x", out_width);
  const Filter filter = torch ? torch_filter_for(resample) : filter_for(resample);

  if (out_height == in_h && out_width == in_w) return image.clone();

  const std::uint8_t* src = image.data<std::uint8_t>();
  const bool need_horizontal = out_width != in_w;
  const bool need_vertical = out_height != in_h;
  Coefficients horiz, vert;
  if (need_horizontal) horiz = precompute(in_w, out_width, filter, torch);
  vert = precompute(in_h, out_height, filter, torch);

  // Rows of the source that the vertical pass reads.
  const std::int64_t ybox_first = vert.first[0];
  const std::int64_t ybox_last = vert.first[out_height - 1] + vert.count[out_height - 1];

  Tensor temp;
  std::int64_t temp_offset = 0;  // source row held by temp's row 0
  if (need_horizontal) {
    const std::int64_t rows = need_vertical ? ybox_last - ybox_first : in_h;
    temp_offset = need_vertical ? ybox_first : 0;
    temp = Tensor::empty(DType::U8, {rows, out_width, channels});
    resample_horizontal(src, in_w, temp.data<std::uint8_t>(), out_width, rows, temp_offset,
                        channels, horiz, pool);
    if (!need_vertical) return temp;
    src = temp.data<std::uint8_t>();
  }
  Tensor out = Tensor::empty(DType::U8, {out_height, out_width, channels});
  resample_vertical(src, temp_offset, out.data<std::uint8_t>(), out_width, out_height, channels,
                    vert, pool);
  return out;
}

}  // namespace

const char* resample_name(Resample resample) {
  switch (resample) {
    case Resample::Nearest: return "NEAREST";
    case Resample::Lanczos: return "LANCZOS";
    case Resample::Bilinear: return "BILINEAR";
    case Resample::Bicubic: return "BICUBIC";
    case Resample::Box: return "BOX";
    case Resample::Hamming: return "HAMMING";
  }
  return "?";
}

Tensor resize(const Tensor& image, std::int64_t out_height, std::int64_t out_width,
              Resample resample, ThreadPool* pool) {
  return resize_impl(image, out_height, out_width, resample, /*torch=*/false, pool);
}

Tensor resize_torchvision(const Tensor& image, std::int64_t out_height, std::int64_t out_width,
                          Resample resample, ThreadPool* pool) {
  return resize_impl(image, out_height, out_width, resample, /*torch=*/true, pool);
}

}  // namespace mmembed::vision
