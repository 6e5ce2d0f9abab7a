// Image processors: size rules (spec bridgetower.md 5.3 worked examples, CLIP's int(s*long/short)),
// crop with padding, rescale/normalize exactness, batch padding, JSON options and errors.
#include "vision/processor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "mmembed/error.h"

namespace mmembed::vision {
namespace {

using Size = std::pair<std::int64_t, std::int64_t>;

ImageProcessorOptions bridgetower(std::int64_t shortest_edge) {
  ImageProcessorOptions o = ImageProcessorOptions::bridgetower_defaults();
  o.shortest_edge = o.crop_height = o.crop_width = shortest_edge;
  return o;
}

Tensor filled(std::int64_t h, std::int64_t w, std::uint8_t value) {
  Tensor t = Tensor::empty(DType::U8, {h, w, 3});
  std::memset(t.raw(), value, t.nbytes());
  return t;
}

// (W x H input) -> (H x W) resized, from spec bridgetower.md 5.3's table.
TEST(ImageProcessor, BridgeTowerSizeRule) {
  ImageProcessor base(bridgetower(288)), large(bridgetower(294));
  EXPECT_EQ(base.resized_size(480, 640), (Size{288, 384}));
  EXPECT_EQ(base.resized_size(640, 480), (Size{384, 288}));
  EXPECT_EQ(base.resized_size(500, 500), (Size{288, 288}));
  EXPECT_EQ(base.resized_size(427, 640), (Size{288, 416}));
  EXPECT_EQ(base.resized_size(720, 1280), (Size{256, 448}));
  EXPECT_EQ(base.resized_size(1080, 1920), (Size{256, 448}));
  EXPECT_EQ(base.resized_size(1000, 3000), (Size{160, 448}));
  EXPECT_EQ(large.resized_size(480, 640), (Size{288, 384}));
  EXPECT_EQ(large.resized_size(500, 500), (Size{288, 288}));
  EXPECT_EQ(large.resized_size(720, 1280), (Size{256, 480}));
  EXPECT_EQ(large.resized_size(1000, 3000), (Size{160, 480}));
  EXPECT_EQ(large.resized_size(460, 300), (Size{448, 288}));
}

TEST(ImageProcessor, ClipSizeRule) {
  ImageProcessor clip(ImageProcessorOptions::clip_defaults());
  EXPECT_EQ(clip.resized_size(480, 640), (Size{224, 298}));
  EXPECT_EQ(clip.resized_size(427, 640), (Size{224, 335}));
  EXPECT_EQ(clip.resized_size(640, 480), (Size{298, 224}));
  EXPECT_EQ(clip.resized_size(300, 7), (Size{9600, 224}));
  EXPECT_EQ(clip.resized_size(1, 1), (Size{224, 224}));
  ImageProcessorOptions exact = ImageProcessorOptions::clip_defaults();
  exact.shortest_edge = 0;
  exact.resize_height = 100;
  exact.resize_width = 50;
  EXPECT_EQ(ImageProcessor(exact).resized_size(480, 640), (Size{100, 50}));
}

TEST(ImageProcessor, ThinImageIsAClearErrorForBridgeTower) {
  ImageProcessor base(bridgetower(288));
  try {
    base.preprocess({filled(300, 7, 9)});
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("7x300"), std::string::npos) << what;
    EXPECT_NE(what.find("too thin"), std::string::npos) << what;
  }
  EXPECT_THROW(base.resized_size(7, 600), InvalidArgument);
}

// Rows/cols that the crop takes, with zero padding (ceil(diff/2) before) where it is larger.
TEST(ImageProcessor, CenterCropWithPadding) {
  ImageProcessorOptions o = ImageProcessorOptions::clip_defaults();
  o.crop_height = 4;
  o.crop_width = 2;
  ImageProcessor p(o);
  // A 1 x 5 image with distinct columns 0..4: width 5 -> 2 takes cols (5-2)//2 = 1..2;
  // height 1 -> 4 pads ceil(3/2) = 2 rows before, 1 after.
  Tensor in = Tensor::empty(DType::U8, {1, 5, 3});
  for (int x = 0; x < 5; ++x) std::memset(in.data<std::uint8_t>() + 3 * x, 10 + x, 3);
  Tensor out = p.center_crop(in);
  ASSERT_EQ(out.shape(), (Shape{4, 2, 3}));
  const std::uint8_t* px = out.data<std::uint8_t>();
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 2; ++x) {
      int expected = y == 2 ? 11 + x : 0;
      EXPECT_EQ(px[(y * 2 + x) * 3], expected) << y << "," << x;
    }
  }
}

// Rescale equals numpy's float32(float64(u8) * (1/255)), which for 1/255 is float32 division.
TEST(ImageProcessor, RescaleAndNormalizeAreNumpyExact) {
  ImageProcessorOptions o = ImageProcessorOptions::clip_defaults();
  o.do_normalize = false;
  ImageProcessor rescale_only(o);
  Tensor in = Tensor::empty(DType::U8, {1, 256, 3});
  for (int v = 0; v < 256; ++v) std::memset(in.data<std::uint8_t>() + 3 * v, v, 3);
  Tensor r = rescale_only.to_chw_float(in);
  for (int v = 0; v < 256; ++v) {
    EXPECT_EQ(r.data<float>()[v], static_cast<float>(v) / 255.0f) << v;
  }
  ImageProcessor full(ImageProcessorOptions::clip_defaults());
  Tensor n = full.to_chw_float(in);
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(o.image_mean[c]), std = static_cast<float>(o.image_std[c]);
    for (int v = 0; v < 256; ++v) {
      float x = static_cast<float>(v) / 255.0f;
      EXPECT_EQ(n.data<float>()[c * 256 + v], (x - mean) / std) << c << " " << v;
    }
  }
}

TEST(ImageProcessor, BridgeTowerBatchPadsAndMasks) {
  ImageProcessorOptions o = bridgetower(64);
  o.do_center_crop = false;  // the bare processor: images keep their resized sizes
  ImageProcessor p(o);
  PixelBatch b = p.preprocess({filled(100, 150, 255), filled(150, 100, 0)});
  // 100x150 -> 64x96; 150x100 -> 96x64 (long side under the cap int(1333/800*64) = 106);
  // padded bottom/right to 96x96.
  constexpr std::int64_t S = 96;
  ASSERT_EQ(b.pixel_values.shape(), (Shape{2, 3, S, S}));
  ASSERT_EQ(b.pixel_mask.shape(), (Shape{2, S, S}));
  const std::int64_t* mask = b.pixel_mask.data<std::int64_t>();
  const float* v = b.pixel_values.data<float>();
  EXPECT_EQ(mask[63 * S + 95], 1);
  EXPECT_EQ(mask[64 * S + 0], 0);
  EXPECT_EQ(mask[S * S + 95 * S + 63], 1);
  EXPECT_EQ(mask[S * S + 0 * S + 64], 0);
  std::int64_t ones = 0;
  for (std::int64_t i = 0; i < b.pixel_mask.numel(); ++i) ones += mask[i];
  EXPECT_EQ(ones, 2 * 64 * 96);
  EXPECT_EQ(v[70 * S], 0.0f);  // padding is 0.0 after normalize
  EXPECT_NE(v[10 * S], 0.0f);
}

TEST(ImageProcessor, BridgeTowerCropGivesSquareAndFullMask) {
  ImageProcessor p(bridgetower(70));  // like bridgetower-large-tiny: resize floors to 64, pad 3
  PixelBatch b = p.preprocess({filled(100, 150, 128)});
  ASSERT_EQ(b.pixel_values.shape(), (Shape{1, 3, 70, 70}));
  const std::int64_t* mask = b.pixel_mask.data<std::int64_t>();
  for (std::int64_t i = 0; i < 70 * 70; ++i) ASSERT_EQ(mask[i], 1);
  const float black = static_cast<float>((0.0f - static_cast<float>(0.48145466)) /
                                         static_cast<float>(0.26862954));
  EXPECT_EQ(b.pixel_values.data<float>()[0], black);  // a padded (black) corner
}

TEST(ImageProcessor, UnpaddedBatchNeedsEqualSizes) {
  ImageProcessorOptions o = ImageProcessorOptions::clip_defaults();
  o.do_center_crop = false;
  ImageProcessor p(o);
  EXPECT_THROW(p.preprocess({filled(100, 200, 1), filled(200, 100, 1)}), ShapeError);
  EXPECT_EQ(p.preprocess({filled(10, 20, 1), filled(20, 40, 1)}).pixel_values.shape(),
            (Shape{2, 3, 224, 448}));
  EXPECT_THROW(p.preprocess({}), InvalidArgument);
  EXPECT_THROW(p.preprocess({Tensor::zeros(DType::U8, {4, 4, 4})}), ShapeError);
}

TEST(ImageProcessorOptions, FromJson) {
  ImageProcessorOptions large = ImageProcessorOptions::from_json(
      R"({"image_processor_type": "BridgeTowerImageProcessor", "size": 294, "max_text_len": 50})",
      "large.json");
  EXPECT_EQ(large.kind, ProcessorKind::BridgeTower);
  EXPECT_EQ(large.shortest_edge, 294);
  EXPECT_EQ(large.crop_height, 294);
  EXPECT_TRUE(large.do_pad);
  EXPECT_TRUE(large.do_center_crop);

  ImageProcessorOptions clip = ImageProcessorOptions::from_json(
      R"({"feature_extractor_type": "CLIPFeatureExtractor", "size": 336, "crop_size": 336,
          "image_mean": 0.5, "image_std": [0.25, 0.5, 1], "resample": 2})",
      "clip.json");
  EXPECT_EQ(clip.kind, ProcessorKind::Clip);
  EXPECT_EQ(clip.shortest_edge, 336);
  EXPECT_EQ(clip.crop_width, 336);
  EXPECT_EQ(clip.image_mean[2], 0.5);
  EXPECT_EQ(clip.image_std[0], 0.25);
  EXPECT_EQ(clip.resample, Resample::Bilinear);

  // No processor type (the BridgeTower base Hub file): needs the caller's fallback.
  EXPECT_THROW(ImageProcessorOptions::from_json(R"({"image_size": 288})", "base.json"),
               InvalidArgument);
  const ProcessorKind bt = ProcessorKind::BridgeTower;
  ImageProcessorOptions base = ImageProcessorOptions::from_json(R"({"image_size": 288})", "base.json", &bt);
  EXPECT_EQ(base.shortest_edge, 288);
  EXPECT_EQ(base.crop_width, 288);
}

// transformers 4.x's save_pretrained writes "crop_size": null for a BridgeTower processor built
// without one (the tiny checkpoints' files), and 4.x then crops to size["shortest_edge"];
// transformers 5 loads such a file but its call fails ("crop_size must be specified",
// tests/data/v5/manifest.json gaps.bridgetower_crop_size_null). We read it as 4.x did, with
// either backend; a given crop_size still wins.
TEST(ImageProcessorOptions, BridgeTowerNullCropSizeCropsToSizeAs4x) {
  const std::string null_crop =
      R"({"image_processor_type": "BridgeTowerImageProcessor", "crop_size": null,
          "size": {"shortest_edge": 70}, "size_divisor": 32, "do_center_crop": true})";
  ImageProcessorOptions o = ImageProcessorOptions::from_json(null_crop, "null.json");
  EXPECT_EQ(o.crop_height, 70);
  EXPECT_EQ(o.crop_width, 70);
  for (ImageBackend backend : {ImageBackend::Pil, ImageBackend::Torchvision}) {
    o.backend = backend;
    ImageProcessor p(o);
    EXPECT_EQ(p.crop_size(), (Size{70, 70}));
    // 100 x 80 (H x W) -> resized 64 x 64 (multiples of 32) -> cropped 70 x 70 with padding
    PixelBatch batch = p.preprocess({filled(100, 80, 200)});
    EXPECT_EQ(batch.pixel_values.shape(), (Shape{1, 3, 70, 70}));
  }
  ImageProcessorOptions given = ImageProcessorOptions::from_json(
      R"({"image_processor_type": "BridgeTowerImageProcessor", "crop_size": {"shortest_edge": 64},
          "size": {"shortest_edge": 70}})",
      "given.json");
  EXPECT_EQ(given.crop_height, 64);
}

// transformers 5's torchvision processors pad floor(diff / 2) before the image where the crop is
// larger (4.x: ceil), and fold the rescale into the normalization.
TEST(ImageProcessor, TorchvisionCropPaddingAndFusedNormalize) {
  ImageProcessorOptions o = ImageProcessorOptions::clip_defaults();
  o.backend = ImageBackend::Torchvision;
  o.crop_height = 4;
  o.crop_width = 2;
  Tensor in = Tensor::empty(DType::U8, {1, 5, 3});
  for (int x = 0; x < 5; ++x) std::memset(in.data<std::uint8_t>() + 3 * x, 10 + x, 3);
  Tensor out = ImageProcessor(o).center_crop(in);
  ASSERT_EQ(out.shape(), (Shape{4, 2, 3}));
  for (int y = 0; y < 4; ++y) {
    EXPECT_EQ(out.data<std::uint8_t>()[y * 2 * 3], y == 1 ? 11 : 0) << y;  // 1 row before, 2 after
  }
  Tensor levels = Tensor::empty(DType::U8, {1, 256, 3});
  for (int v = 0; v < 256; ++v) std::memset(levels.data<std::uint8_t>() + 3 * v, v, 3);
  Tensor n = ImageProcessor(o).to_chw_float(levels);
  int differs_from_pil = 0;
  Tensor pil = ImageProcessor(ImageProcessorOptions::clip_defaults()).to_chw_float(levels);
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(o.image_mean[c]) * 255.0f;
    const float std = static_cast<float>(o.image_std[c]) * 255.0f;
    for (int v = 0; v < 256; ++v) {
      EXPECT_EQ(n.data<float>()[c * 256 + v], (static_cast<float>(v) - mean) / std) << c << v;
      differs_from_pil += n.data<float>()[c * 256 + v] != pil.data<float>()[c * 256 + v];
    }
  }
  EXPECT_GT(differs_from_pil, 0);  // last bits: the two backends' pixel values are not the same
}

TEST(ImageProcessorOptions, FromJsonErrorsNameTheFileAndKey) {
  try {
    ImageProcessorOptions::from_json(
        R"({"image_processor_type": "CLIPImageProcessor", "do_resize": "yes"})", "cfg.json");
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("do_resize"), std::string::npos);
  }
  EXPECT_THROW(ImageProcessorOptions::from_json("{not json", "cfg.json"), FormatError);
  EXPECT_THROW(ImageProcessorOptions::from_json(
                   R"({"image_processor_type": "CLIPImageProcessor", "resample": 0})", "cfg.json"),
               Unsupported);
  EXPECT_THROW(ImageProcessorOptions::from_json(
                   R"({"image_processor_type": "ViTImageProcessor"})", "cfg.json"),
               InvalidArgument);
  EXPECT_THROW(ImageProcessorOptions::from_json(
                   R"({"image_processor_type": "CLIPImageProcessor", "image_std": [1, 0, 1]})",
                   "cfg.json"),
               InvalidArgument);
  EXPECT_THROW(ImageProcessorOptions::from_json_file("/nonexistent/preprocessor_config.json"),
               IoError);
}

TEST(ImageProcessorOptions, SizesAreBoundedBeforeAnyImage) {
  // Issue #18: sizes from preprocessor_config.json size every buffer; absurd ones are refused
  // when the file is read, naming the file, the key and the bound.
  auto error_of = [](const std::string& json) {
    try {
      ImageProcessorOptions::from_json(json, "pp.json");
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no InvalidArgument");
  };
  EXPECT_NE(error_of(R"({"image_processor_type": "CLIPImageProcessor",
                         "size": {"shortest_edge": 1000000000}})")
                .find("pp.json: image processor: shortest_edge 1000000000 is more than 16384"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"image_processor_type": "CLIPImageProcessor", "crop_size": 100000})")
                .find("pp.json: image processor: crop height 100000 is more than 16384 pixels"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"image_processor_type": "BridgeTowerImageProcessor", "size": 288,
                         "size_divisor": 99999999})")
                .find("size_divisor 99999999 is more than 16384"),
            std::string::npos);
  // At the bound: accepted.
  EXPECT_EQ(ImageProcessorOptions::from_json(
                R"({"image_processor_type": "CLIPImageProcessor", "size": 16384,
                    "crop_size": 16384})",
                "pp.json")
                .shortest_edge,
            16384);
}

TEST(ImageProcessor, ExtremeAspectRatioIsRefusedBeforeResizing) {
  // A 400000x1 image resized to shortest edge 224 would be 224 x 89,600,000 pixels.
  ImageProcessor clip(ImageProcessorOptions::clip_defaults());
  try {
    clip.resized_size(1, 400000);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("a 400000x1 (WxH) image resized to shortest edge 224 would be 89600000 "
                        "pixels long"),
              std::string::npos)
        << what;
  }
  EXPECT_EQ(clip.resized_size(1, 1000), (Size{224, 224000}));  // thin, but within the bound
}

}  // namespace
}  // namespace mmembed::vision
