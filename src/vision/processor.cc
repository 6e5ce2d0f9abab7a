#include "vision/processor.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/file.h"

namespace mmembed::vision {

namespace {

using nlohmann::json;

// ---- preprocessor_config.json ----------------------------------------------------------------

struct JsonReader {
  const json& root;
  const std::string& source;

  const json* get(const char* key) const {
    auto it = root.find(key);
    if (it == root.end() || it->is_null()) return nullptr;
    return &*it;
  }
  [[noreturn]] void bad(const char* key, const char* expected) const {
    throw FormatError(str_cat(source, ": \"", key, "\" must be ", expected, ", got ",
                              root.at(key).dump()));
  }
  void read_bool(const char* key, bool* out) const {
    if (const json* v = get(key)) {
      if (!v->is_boolean()) bad(key, "true or false");
      *out = v->get<bool>();
    }
  }
  void read_number(const char* key, double* out) const {
    if (const json* v = get(key)) {
      if (!v->is_number()) bad(key, "a number");
      *out = v->get<double>();
    }
  }
  void read_int(const char* key, std::int64_t* out) const {
    if (const json* v = get(key)) {
      if (!v->is_number_integer()) bad(key, "an integer");
      *out = v->get<std::int64_t>();
    }
  }
  void read_triple(const char* key, std::array<double, 3>* out) const {
    if (const json* v = get(key)) {
      if (v->is_number()) {
        out->fill(v->get<double>());
      } else if (v->is_array() && v->size() == 3 &&
                 std::all_of(v->begin(), v->end(), [](const json& e) { return e.is_number(); })) {
        for (int c = 0; c < 3; ++c) (*out)[c] = (*v)[c].get<double>();
      } else {
        bad(key, "a number or a list of 3 numbers");
      }
    }
  }
  // An int, {"shortest_edge": n}, {"height": h, "width": w} or [h, w]: fills what is given.
  bool read_size(const char* key, std::int64_t* shortest, std::int64_t* height,
                 std::int64_t* width) const {
    const json* v = get(key);
    if (v == nullptr) return false;
    auto integer = [&](const json& e) {
      if (!e.is_number_integer()) bad(key, "an integer size or a size dictionary");
      return e.get<std::int64_t>();
    };
    *shortest = *height = *width = 0;
    if (v->is_number()) {
      *shortest = integer(*v);
    } else if (v->is_object() && v->contains("shortest_edge")) {
      *shortest = integer(v->at("shortest_edge"));
    } else if (v->is_object() && v->contains("height") && v->contains("width")) {
      *height = integer(v->at("height"));
      *width = integer(v->at("width"));
    } else if (v->is_array() && v->size() == 2) {
      *height = integer((*v)[0]);
      *width = integer((*v)[1]);
    } else {
      bad(key, "an integer, {\"shortest_edge\": n}, {\"height\": h, \"width\": w} or [h, w]");
    }
    return true;
  }
};

std::string read_text_file(const std::string& path) {
  return read_input_file(path, kMaxConfigFileBytes);
}

// ---- processing -------------------------------------------------------------------------------

void check_rgb(const Tensor& rgb, const char* what) {
  MMEMBED_CHECK(rgb.dtype() == DType::U8 && rgb.rank() == 3 && rgb.dim(2) == 3, ShapeError, what,
                ": expected a U8 [H, W, 3] RGB image, got ", rgb.describe());
  MMEMBED_CHECK(rgb.dim(0) > 0 && rgb.dim(1) > 0, ShapeError, what, ": empty image ",
                rgb.describe());
}

// Python's a // b for b > 0.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

}  // namespace

const char* image_backend_name(ImageBackend backend) {
  return backend == ImageBackend::Torchvision ? "torchvision" : "pil";
}

ImageProcessorOptions ImageProcessorOptions::clip_defaults() { return ImageProcessorOptions{}; }

ImageProcessorOptions ImageProcessorOptions::bridgetower_defaults() {
  ImageProcessorOptions o;
  o.kind = ProcessorKind::BridgeTower;
  o.shortest_edge = 288;
  o.size_divisor = 32;
  o.crop_height = o.crop_width = 288;
  o.do_pad = true;
  return o;
}

ImageProcessorOptions ImageProcessorOptions::from_json(const std::string& json_text,
                                                       const std::string& source,
                                                       const ProcessorKind* fallback_kind) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  MMEMBED_CHECK(!root.is_discarded() && root.is_object(), FormatError, source,
                ": not a JSON object");
  JsonReader r{root, source};

  std::string type;
  for (const char* key : {"image_processor_type", "feature_extractor_type"}) {
    if (const json* v = r.get(key); v != nullptr && v->is_string() && type.empty()) {
      type = v->get<std::string>();
    }
  }
  ProcessorKind kind;
  if (type.find("BridgeTower") != std::string::npos) {
    kind = ProcessorKind::BridgeTower;
  } else if (type.find("CLIP") != std::string::npos) {
    kind = ProcessorKind::Clip;
  } else if (type.empty() && fallback_kind != nullptr) {
    kind = *fallback_kind;
  } else {
    throw InvalidArgument(str_cat(source, ": unsupported image processor \"", type,
                                  "\" (supported: CLIPImageProcessor, BridgeTowerImageProcessor)"));
  }

  ImageProcessorOptions o = kind == ProcessorKind::Clip ? clip_defaults() : bridgetower_defaults();
  r.read_bool("do_resize", &o.do_resize);
  r.read_bool("do_rescale", &o.do_rescale);
  r.read_number("rescale_factor", &o.rescale_factor);
  r.read_bool("do_normalize", &o.do_normalize);
  r.read_triple("image_mean", &o.image_mean);
  r.read_triple("image_std", &o.image_std);
  if (const json* v = r.get("resample")) {
    if (!v->is_number_integer() || v->get<int>() < 0 || v->get<int>() > 5) {
      r.bad("resample", "a PIL resampling constant 0..5");
    }
    o.resample = static_cast<Resample>(v->get<int>());
  }
  r.read_size("size", &o.shortest_edge, &o.resize_height, &o.resize_width);

  std::int64_t crop_short = 0, crop_h = 0, crop_w = 0;
  bool has_crop = r.read_size("crop_size", &crop_short, &crop_h, &crop_w);
  if (kind == ProcessorKind::Clip) {
    r.read_bool("do_center_crop", &o.do_center_crop);
    if (has_crop) {
      o.crop_height = crop_short > 0 ? crop_short : crop_h;
      o.crop_width = crop_short > 0 ? crop_short : crop_w;
    }
  } else {
    // BridgeTowerProcessor always crops; crop_size falls back to size["shortest_edge"].
    MMEMBED_CHECK(o.shortest_edge > 0, InvalidArgument, source,
                  ": BridgeTower needs size {\"shortest_edge\": n}, got ", root.at("size").dump());
    r.read_int("size_divisor", &o.size_divisor);
    if (has_crop) {
      o.crop_height = crop_short > 0 ? crop_short : crop_h;
      o.crop_width = crop_short > 0 ? crop_short : crop_w;
    } else {
      o.crop_height = o.crop_width = o.shortest_edge;
    }
    r.read_bool("pad_and_return_pixel_mask", &o.do_pad);
    r.read_bool("do_pad", &o.do_pad);
  }
  if (o.resample == Resample::Nearest) {
    throw Unsupported(str_cat(source, ": \"resample\": 0 (NEAREST) is not supported"));
  }
  try {
    ImageProcessor validate(o);  // throws InvalidArgument naming the bad value
    (void)validate;
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(str_cat(escape_for_message(source), ": ", e.what()));
  }
  return o;
}

ImageProcessorOptions ImageProcessorOptions::from_json_file(const std::string& path,
                                                            const ProcessorKind* fallback_kind) {
  return from_json(read_text_file(path), path, fallback_kind);
}

ImageProcessor::ImageProcessor(ImageProcessorOptions options, ThreadPool* pool)
    : options_(std::move(options)), pool_(pool) {
  const ImageProcessorOptions& o = options_;
  if (o.do_resize) {
    MMEMBED_CHECK(o.shortest_edge > 0 || (o.resize_height > 0 && o.resize_width > 0),
                  InvalidArgument, "image processor: resize size must be > 0, got shortest_edge ",
                  o.shortest_edge, ", height ", o.resize_height, ", width ", o.resize_width);
    MMEMBED_CHECK(o.kind != ProcessorKind::BridgeTower || o.shortest_edge > 0, InvalidArgument,
                  "image processor: BridgeTower resizes by shortest_edge only");
    MMEMBED_CHECK(o.kind != ProcessorKind::BridgeTower || o.size_divisor > 0, InvalidArgument,
                  "image processor: size_divisor must be > 0, got ", o.size_divisor);
    MMEMBED_CHECK(o.resample != Resample::Nearest, Unsupported,
                  "image processor: NEAREST resampling is not supported");
    MMEMBED_CHECK(o.backend != ImageBackend::Torchvision || o.resample == Resample::Bicubic ||
                      o.resample == Resample::Bilinear,
                  Unsupported, "image processor: the torchvision backend resizes with BICUBIC or "
                  "BILINEAR only, got ", resample_name(o.resample));
  }
  if (o.do_center_crop) {
    MMEMBED_CHECK(o.crop_height > 0 && o.crop_width > 0, InvalidArgument,
                  "image processor: crop size must be > 0, got ", o.crop_height, "x", o.crop_width);
  }
  // Sizes come from preprocessor_config.json and size every buffer of every image: bounded
  // before any image is processed (a shortest_edge of 10^9 would ask for exabytes).
  for (const auto& [name, value] : {std::pair<const char*, std::int64_t>{"shortest_edge",
                                                                          o.shortest_edge},
                                    {"height", o.resize_height},
                                    {"width", o.resize_width},
                                    {"crop height", o.crop_height},
                                    {"crop width", o.crop_width},
                                    {"size_divisor", o.size_divisor}}) {
    MMEMBED_CHECK(value <= kMaxProcessorSide, InvalidArgument, "image processor: ", name, " ",
                  value, " is more than ", kMaxProcessorSide, " pixels");
  }
  for (int c = 0; c < 3; ++c) {
    MMEMBED_CHECK(!o.do_normalize || o.image_std[c] != 0.0, InvalidArgument,
                  "image processor: image_std[", c, "] is 0");
  }
}

std::pair<std::int64_t, std::int64_t> ImageProcessor::resized_size(std::int64_t height,
                                                                   std::int64_t width) const {
  const ImageProcessorOptions& o = options_;
  MMEMBED_CHECK(height > 0 && width > 0, InvalidArgument, "image processor: empty image ", height,
                "x", width);
  if (!o.do_resize) return {height, width};
  if (o.shortest_edge <= 0) return {o.resize_height, o.resize_width};

  if (o.kind == ProcessorKind::Clip) {
    // transformers get_resize_output_image_size: int(size * long / short), true division.
    const std::int64_t s = o.shortest_edge;
    const std::int64_t short_side = std::min(height, width), long_side = std::max(height, width);
    const auto new_long = static_cast<std::int64_t>(static_cast<double>(s * long_side) /
                                                    static_cast<double>(short_side));
    // A very thin image (1x10000) would be resized to 224x2240000 before the center crop.
    MMEMBED_CHECK(new_long <= kMaxResizedPixels / s, InvalidArgument, "image processor: a ",
                  width, "x", height, " (WxH) image resized to shortest edge ", s, " would be ",
                  new_long, " pixels long, more than ", kMaxResizedPixels,
                  " pixels in all; the aspect ratio is too extreme");
    return width <= height ? std::make_pair(new_long, s) : std::make_pair(s, new_long);
  }

  // BridgeTower get_resize_output_image_size, in double as Python computes it.
  const double shorter = static_cast<double>(o.shortest_edge);
  const auto longer = static_cast<std::int64_t>(1333.0 / 800.0 * shorter);
  const double scale = shorter / static_cast<double>(std::min(height, width));
  double new_h, new_w;
  if (height < width) {
    new_h = shorter;
    new_w = scale * static_cast<double>(width);
  } else {
    new_h = scale * static_cast<double>(height);
    new_w = shorter;
  }
  const double longest = std::max(new_h, new_w);
  if (longest > static_cast<double>(longer)) {
    const double f = static_cast<double>(longer) / longest;
    new_h = new_h * f;
    new_w = new_w * f;
  }
  std::int64_t h = static_cast<std::int64_t>(new_h + 0.5);
  std::int64_t w = static_cast<std::int64_t>(new_w + 0.5);
  h = h / o.size_divisor * o.size_divisor;
  w = w / o.size_divisor * o.size_divisor;
  MMEMBED_CHECK(h > 0 && w > 0, InvalidArgument, "BridgeTower image processor: a ", width, "x",
                height, " (WxH) image is too thin: the resize rule (shortest edge ",
                o.shortest_edge, ", longest edge ", longer, ", multiple of ", o.size_divisor,
                ") gives ", w, "x", h,
                "; the reference raises too (\"height and width must be > 0\")");
  return {h, w};
}

std::pair<std::int64_t, std::int64_t> ImageProcessor::crop_size() const {
  return {options_.crop_height, options_.crop_width};
}

Tensor ImageProcessor::resize(const Tensor& rgb) const {
  check_rgb(rgb, "image processor resize");
  if (!options_.do_resize) return rgb;
  auto [h, w] = resized_size(rgb.dim(0), rgb.dim(1));
  if (options_.backend == ImageBackend::Torchvision) {
    return vision::resize_torchvision(rgb, h, w, options_.resample, pool_);
  }
  return vision::resize(rgb, h, w, options_.resample, pool_);
}

// transformers image_transforms.center_crop: top = (h - ch) // 2; an axis shorter than the crop
// is zero-padded first, ceil(diff / 2) before the image. transformers 5's torchvision
// processors pad floor(diff / 2) before it instead (TorchvisionBackend.center_crop).
Tensor ImageProcessor::center_crop(const Tensor& rgb) const {
  check_rgb(rgb, "image processor center_crop");
  const std::int64_t in_h = rgb.dim(0), in_w = rgb.dim(1);
  const std::int64_t out_h = options_.crop_height, out_w = options_.crop_width;
  const bool torchvision = options_.backend == ImageBackend::Torchvision;
  // Per axis: output index o reads input index o + offset when it lies inside the image.
  auto offset = [torchvision](std::int64_t in, std::int64_t out) {
    if (in >= out) return floor_div(in - out, 2);
    return torchvision ? -((out - in) / 2) : -((out - in + 1) / 2);
  };
  const std::int64_t dy = offset(in_h, out_h), dx = offset(in_w, out_w);
  Tensor out = Tensor::zeros(DType::U8, {out_h, out_w, 3});
  const std::uint8_t* src = rgb.data<std::uint8_t>();
  std::uint8_t* dst = out.data<std::uint8_t>();
  const std::int64_t x0 = std::max<std::int64_t>(0, -dx);
  const std::int64_t x1 = std::min(out_w, in_w - dx);
  for (std::int64_t y = 0; y < out_h; ++y) {
    const std::int64_t sy = y + dy;
    if (sy < 0 || sy >= in_h || x1 <= x0) continue;
    std::memcpy(dst + (y * out_w + x0) * 3, src + (sy * in_w + x0 + dx) * 3,
                static_cast<std::size_t>((x1 - x0) * 3));
  }
  return out;
}

Tensor ImageProcessor::to_chw_float(const Tensor& rgb) const {
  check_rgb(rgb, "image processor to_chw_float");
  const ImageProcessorOptions& o = options_;
  // Every output value is a function of (channel, byte): a 3 x 256 table computed with numpy's
  // operations: float32(float64(v) * factor), then float32 (x - mean) / std.
  float table[3][256];
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(o.image_mean[c]);
    const float std = static_cast<float>(o.image_std[c]);
    if (o.backend == ImageBackend::Torchvision) {
      // transformers 5 (TorchvisionBackend.rescale_and_normalize) folds the rescale into the
      // normalization: mean and std become float32 tensors multiplied by the Python float
      // 1 / factor (rounded to float32 by torch's scalar multiplication), then
      // (float32(u8) - mean) / std. Rescale alone is float32(u8) * float32(factor).
      const float inv = static_cast<float>(1.0 / o.rescale_factor);
      const float fused_mean = o.do_rescale ? mean * inv : mean;
      const float fused_std = o.do_rescale ? std * inv : std;
      for (int v = 0; v < 256; ++v) {
        float x = static_cast<float>(v);
        if (o.do_normalize) {
          x = (x - fused_mean) / fused_std;
        } else if (o.do_rescale) {
          x = x * static_cast<float>(o.rescale_factor);
        }
        table[c][v] = x;
      }
      continue;
    }
    for (int v = 0; v < 256; ++v) {
      float x = o.do_rescale ? static_cast<float>(static_cast<double>(v) * o.rescale_factor)
                             : static_cast<float>(v);
      if (o.do_normalize) x = (x - mean) / std;
      table[c][v] = x;
    }
  }
  const std::int64_t h = rgb.dim(0), w = rgb.dim(1), plane = h * w;
  Tensor out = Tensor::empty(DType::F32, {3, h, w});
  const std::uint8_t* src = rgb.data<std::uint8_t>();
  float* dst = out.data<float>();
  for (std::int64_t i = 0; i < plane; ++i) {
    dst[i] = table[0][src[3 * i]];
    dst[plane + i] = table[1][src[3 * i + 1]];
    dst[2 * plane + i] = table[2][src[3 * i + 2]];
  }
  return out;
}

PixelBatch ImageProcessor::preprocess(const std::vector<Tensor>& images) const {
  MMEMBED_CHECK(!images.empty(), InvalidArgument, "image processor: no images");
  std::vector<Tensor> planes;
  planes.reserve(images.size());
  std::int64_t max_h = 0, max_w = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    check_rgb(images[i], "image processor preprocess");
    Tensor x = resize(images[i]);
    if (options_.do_center_crop) x = center_crop(x);
    planes.push_back(to_chw_float(x));
    max_h = std::max(max_h, planes.back().dim(1));
    max_w = std::max(max_w, planes.back().dim(2));
    if (!options_.do_pad) {
      MMEMBED_CHECK(planes.back().shape() == planes.front().shape(), ShapeError,
                    "image processor: image ", i, " is ", shape_str(planes.back().shape()),
                    " after preprocessing but image 0 is ", shape_str(planes.front().shape()),
                    " (enable cropping or padding to batch images of different sizes)");
    }
  }
  const auto batch = static_cast<std::int64_t>(images.size());
  PixelBatch out;
  out.pixel_values = Tensor::zeros(DType::F32, {batch, 3, max_h, max_w});
  if (options_.do_pad) out.pixel_mask = Tensor::zeros(DType::I64, {batch, max_h, max_w});
  for (std::int64_t b = 0; b < batch; ++b) {
    const Tensor& p = planes[b];
    const std::int64_t h = p.dim(1), w = p.dim(2);
    const float* src = p.data<float>();
    float* dst = out.pixel_values.data<float>() + b * 3 * max_h * max_w;
    for (std::int64_t c = 0; c < 3; ++c) {
      for (std::int64_t y = 0; y < h; ++y) {
        std::memcpy(dst + (c * max_h + y) * max_w, src + (c * h + y) * w,
                    static_cast<std::size_t>(w) * sizeof(float));
      }
    }
    if (options_.do_pad) {
      std::int64_t* mask = out.pixel_mask.data<std::int64_t>() + b * max_h * max_w;
      for (std::int64_t y = 0; y < h; ++y) std::fill(mask + y * max_w, mask + y * max_w + w, 1);
    }
  }
  return out;
}

}  // namespace mmembed::vision
