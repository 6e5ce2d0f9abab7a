// Parity with the reference (Pillow 11.3 + transformers 4.44.2 slow processors): every golden
// image's decoded RGB, and per processor the resized and cropped uint8 images, pixel_values and
// pixel_mask, compared exactly (full arrays with zero tolerance, checksum-only entries by CRC-32).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "golden.h"
#include "mmembed/error.h"
#include "vision/decode.h"
#include "vision/processor.h"

namespace mmembed::vision {
namespace {

using nlohmann::json;

const golden::Manifest& manifest() { return golden::Manifest::get(); }

const json& manifest_json() {
  static const json j = [] {
    std::ifstream in(manifest().data_dir() + "/manifest.json");
    return json::parse(in);
  }();
  return j;
}

std::string data_path(const std::string& relative) { return manifest().data_dir() + "/" + relative; }

// Exact comparison with a golden entry, whether stored in full or as a checksum.
void expect_golden(const std::string& name, const Tensor& ours) {
  const golden::Entry& e = manifest().entry(name);
  if (e.has_data()) {
    golden::CompareResult r = golden::compare(e.name, ours, manifest().load(e), golden::Tolerance{});
    EXPECT_TRUE(r.ok) << r.message;
  } else {
    std::string problem = golden::verify_checksum(e, ours);
    EXPECT_TRUE(problem.empty()) << problem;
  }
}

std::vector<std::string> image_ids() {
  std::vector<std::string> ids;
  for (const json& im : manifest_json().at("images")) ids.push_back(im.at("id").get<std::string>());
  return ids;
}

const json& image_info(const std::string& id) {
  for (const json& im : manifest_json().at("images")) {
    if (im.at("id") == id) return im;
  }
  throw std::runtime_error("no image " + id);
}

ImageProcessorOptions processor_options(const std::string& processor) {
  const json& config = manifest_json().at("preprocess").at("processors").at(processor).at("config");
  return ImageProcessorOptions::from_json(config.dump(), "manifest processor " + processor);
}

Tensor decoded(const std::string& id) {
  return read_image(data_path(image_info(id).at("file").get<std::string>())).rgb;
}

// ---- decoding ----

class DecodeGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeGolden, MatchesPillowConvertRgb) {
  const json& info = image_info(GetParam());
  DecodedImage im = read_image(data_path(info.at("file").get<std::string>()));
  EXPECT_EQ(im.source_mode, info.at("opened_mode").get<std::string>());
  expect_golden(GetParam() + "/decoded_rgb", im.rgb);
}

INSTANTIATE_TEST_SUITE_P(AllImages, DecodeGolden, ::testing::ValuesIn(image_ids()),
                         [](const auto& info) { return info.param; });

// ---- processors ----

struct ProcessorCase {
  std::string image, processor;
};

void PrintTo(const ProcessorCase& c, std::ostream* os) { *os << c.image << " / " << c.processor; }

std::vector<ProcessorCase> processor_cases() {
  std::vector<ProcessorCase> cases;
  for (const std::string& id : image_ids()) {
    for (const char* p : {"bt_base", "bt_large", "clip"}) cases.push_back({id, p});
  }
  return cases;
}

class ProcessorGolden : public ::testing::TestWithParam<ProcessorCase> {};

TEST_P(ProcessorGolden, EveryStageMatches) {
  const ProcessorCase& c = GetParam();
  const json& expected =
      manifest_json().at("preprocess").at("images").at(c.image).at("processors").at(c.processor);
  ImageProcessor processor(processor_options(c.processor));
  Tensor rgb = decoded(c.image);
  const std::string prefix = c.image + "/" + c.processor + "/";

  if (!expected.at("error").is_null()) {
    const std::string error = expected.at("error").get<std::string>();
    if (error.find("height and width must be > 0") != std::string::npos) {
      // Documented: a too-thin image is an InvalidArgument naming the sizes.
      try {
        processor.preprocess({rgb});
        ADD_FAILURE() << "expected InvalidArgument for " << c.image;
      } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("too thin"), std::string::npos) << e.what();
      }
    } else {
      // The reference misread a 1-pixel-tall image as channels-first (its arrays are garbage).
      // Documented: we read channels-last, so a 1x1 image is resized to a uniform image of its
      // colour (then cropped, with the crop's zero padding where the crop is larger).
      ASSERT_EQ(rgb.numel(), 3);
      const std::uint8_t* ref = rgb.data<std::uint8_t>();
      Tensor resized = processor.resize(rgb);
      const std::uint8_t* px = resized.data<std::uint8_t>();
      for (std::int64_t i = 0; i < resized.numel(); ++i) ASSERT_EQ(px[i], ref[i % 3]) << i;
      Tensor cropped = processor.center_crop(resized);
      const std::uint8_t* cp = cropped.data<std::uint8_t>();
      std::int64_t coloured = 0;
      for (std::int64_t i = 0; i < cropped.numel(); i += 3) {
        bool black = cp[i] == 0 && cp[i + 1] == 0 && cp[i + 2] == 0;
        bool colour = cp[i] == ref[0] && cp[i + 1] == ref[1] && cp[i + 2] == ref[2];
        ASSERT_TRUE(black || colour) << i;
        coloured += colour ? 1 : 0;
      }
      EXPECT_EQ(coloured, std::min(resized.dim(0), cropped.dim(0)) *
                              std::min(resized.dim(1), cropped.dim(1)));
      PixelBatch batch = processor.preprocess({rgb});
      EXPECT_EQ(batch.pixel_values.shape(),
                (Shape{1, 3, processor.crop_size().first, processor.crop_size().second}));
    }
    return;
  }

  Tensor resized = processor.resize(rgb);
  expect_golden(prefix + "resized", resized);
  Tensor cropped = processor.center_crop(resized);
  expect_golden(prefix + "cropped", cropped);
  PixelBatch batch = processor.preprocess({rgb});
  expect_golden(prefix + "pixel_values", batch.pixel_values);
  if (manifest().find(prefix + "pixel_mask") != nullptr) {
    ASSERT_TRUE(batch.pixel_mask.defined());
    expect_golden(prefix + "pixel_mask", batch.pixel_mask);
  } else {
    EXPECT_EQ(batch.pixel_mask.numel(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(AllImages, ProcessorGolden, ::testing::ValuesIn(processor_cases()),
                         [](const auto& info) {
                           return info.param.image + "_" + info.param.processor;
                         });

// ---- batches ----

std::vector<Tensor> entry_images(const golden::Entry& e) {
  std::vector<Tensor> images;
  const json inputs = json::parse(e.inputs_json);
  for (const json& path : inputs.at("images")) {
    images.push_back(read_image(data_path(path.get<std::string>())).rgb);
  }
  return images;
}

// The bare BridgeTowerImageProcessor (no crop): different sizes padded to the batch maximum.
TEST(VisionGoldenBatch, BareBridgeTowerPadsWithMask) {
  ImageProcessorOptions options = processor_options("bt_base");
  options.do_center_crop = false;
  ImageProcessor processor(options);
  PixelBatch batch = processor.preprocess(entry_images(manifest().entry("batch_bare_bt_base/pixel_mask")));
  expect_golden("batch_bare_bt_base/pixel_values", batch.pixel_values);
  expect_golden("batch_bare_bt_base/pixel_mask", batch.pixel_mask);
}

// The tiny checkpoints' pixel_values (batch of 3 and single image), configured from each
// checkpoint's preprocessor_config.json as a user would.
TEST(VisionGoldenBatch, TinyCheckpointPixelValues) {
  int compared = 0;
  for (const char* model : {"bridgetower-base-tiny", "bridgetower-large-tiny", "clip-tiny-gelu",
                            "clip-tiny-quickgelu"}) {
    ImageProcessor processor(ImageProcessorOptions::from_json_file(
        data_path(std::string("models/") + model + "/preprocessor_config.json")));
    for (const char* call : {"batch", "single0"}) {
      const std::string prefix = std::string(model) + "/" + call + "/";
      const golden::Entry& values = manifest().entry(prefix + "pixel_values");
      PixelBatch batch = processor.preprocess(entry_images(values));
      expect_golden(values.name, batch.pixel_values);
      ++compared;
      if (manifest().find(prefix + "pixel_mask") != nullptr) {
        expect_golden(prefix + "pixel_mask", batch.pixel_mask);
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 12);
}

}  // namespace
}  // namespace mmembed::vision
