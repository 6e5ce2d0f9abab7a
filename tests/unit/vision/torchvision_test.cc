// Parity of the torchvision image backend with transformers 5's default (torchvision-based)
// processors: tests/data/v5/, written by scripts/reference/gen_v5.py with transformers 5,
// torch and torchvision on the CPU. Pixels are compared exactly (full arrays with zero tolerance,
// checksum-only entries by CRC-32), as the Pillow backend is against transformers 4.44.2.
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
#include "vision/resize.h"

namespace mmembed::vision {
namespace {

using nlohmann::json;

const std::string& data_dir() { return golden::Manifest::get().data_dir(); }

const golden::Manifest& v5() {
  static const golden::Manifest m(data_dir() + "/v5/manifest.json");
  return m;
}

const json& v5_json() {
  static const json j = [] {
    std::ifstream in(data_dir() + "/v5/manifest.json");
    return json::parse(in);
  }();
  return j;
}

const json& main_json() {
  static const json j = [] {
    std::ifstream in(data_dir() + "/manifest.json");
    return json::parse(in);
  }();
  return j;
}

void expect_golden(const std::string& name, const Tensor& ours) {
  const golden::Entry& e = v5().entry(name);
  if (e.has_data()) {
    golden::CompareResult r = golden::compare(e.name, ours, v5().load(e), golden::Tolerance{});
    EXPECT_TRUE(r.ok) << r.message;
  } else {
    std::string problem = golden::verify_checksum(e, ours);
    EXPECT_TRUE(problem.empty()) << problem;
  }
}

// ---- the resize itself ----

struct ResizeCases {
  Tensor table, inputs, outputs;
};

const ResizeCases& resize_cases() {
  static const ResizeCases c{v5().load(v5().entry("resize/table")),
                             v5().load(v5().entry("resize/inputs")),
                             v5().load(v5().entry("resize/outputs"))};
  return c;
}

Tensor slice_u8(const Tensor& flat, std::int64_t offset, Shape shape) {
  Tensor t = Tensor::empty(DType::U8, shape);
  std::memcpy(t.data<std::uint8_t>(), flat.data<std::uint8_t>() + offset,
              static_cast<std::size_t>(t.numel()));
  return t;
}

// Every case (random noise, saturated 0/255 images, gradients; up- and downscaling, one axis
// kept) equals torch's uint8 antialiased resize bit for bit. Pillow's resize of the same cases
// differs on some of them, so this comparison can tell the two apart.
TEST(TorchvisionResize, BitIdenticalToTorch) {
  const ResizeCases& c = resize_cases();
  const std::int64_t rows = c.table.dim(0);
  ASSERT_GT(rows, 100);
  const std::int64_t* t = c.table.data<std::int64_t>();
  std::int64_t mismatched_cases = 0, pillow_differs = 0;
  for (std::int64_t i = 0; i < rows; ++i) {
    const std::int64_t* r = t + i * 7;
    const Tensor in = slice_u8(c.inputs, r[5], {r[0], r[1], 3});
    const Tensor want = slice_u8(c.outputs, r[6], {r[2], r[3], 3});
    const auto mode = static_cast<Resample>(r[4]);
    const Tensor ours = resize_torchvision(in, r[2], r[3], mode);
    const Tensor pillow = resize(in, r[2], r[3], mode);
    const bool same = std::memcmp(ours.data<std::uint8_t>(), want.data<std::uint8_t>(),
                                  static_cast<std::size_t>(want.numel())) == 0;
    if (!same) {
      ++mismatched_cases;
      ADD_FAILURE() << "case " << i << ": " << r[0] << "x" << r[1] << " -> " << r[2] << "x" << r[3]
                    << " " << resample_name(mode) << " differs from torch";
    }
    pillow_differs += std::memcmp(pillow.data<std::uint8_t>(), want.data<std::uint8_t>(),
                                  static_cast<std::size_t>(want.numel())) != 0;
  }
  EXPECT_EQ(mismatched_cases, 0);
  EXPECT_GT(pillow_differs, 0) << "no case separates torch's resize from Pillow's";
}

TEST(TorchvisionResize, RefusesFiltersTorchHasNoUint8PathFor) {
  Tensor img = Tensor::zeros(DType::U8, {4, 4, 3});
  EXPECT_THROW(resize_torchvision(img, 2, 2, Resample::Lanczos), Unsupported);
  EXPECT_THROW(resize_torchvision(img, 2, 2, Resample::Box), Unsupported);
  ImageProcessorOptions o = ImageProcessorOptions::clip_defaults();
  o.backend = ImageBackend::Torchvision;
  o.resample = Resample::Hamming;
  EXPECT_THROW(ImageProcessor{o}, Unsupported);
}

// ---- the processors ----

struct ProcessorCase {
  std::string image, processor;
};

void PrintTo(const ProcessorCase& c, std::ostream* os) { *os << c.image << " / " << c.processor; }

std::vector<ProcessorCase> processor_cases() {
  std::vector<ProcessorCase> cases;
  for (const auto& [id, procs] : v5_json().at("preprocess").at("images").items()) {
    for (const auto& [p, rec] : procs.items()) cases.push_back({id, p});
  }
  return cases;
}

ImageProcessorOptions torchvision_options(const std::string& processor) {
  // The settings gen_v5.py gave the processor (bt_large: crop_size as 4.x reads the Hub file).
  const json& config = v5_json().at("preprocess").at("settings").at(processor);
  const ProcessorKind kind =
      processor.rfind("bt_", 0) == 0 ? ProcessorKind::BridgeTower : ProcessorKind::Clip;
  ImageProcessorOptions o =
      ImageProcessorOptions::from_json(config.dump(), "v5 manifest processor " + processor, &kind);
  o.backend = ImageBackend::Torchvision;
  return o;
}

Tensor decoded(const std::string& id) {
  for (const json& im : main_json().at("images")) {
    if (im.at("id") == id) {
      return read_image(data_dir() + "/" + im.at("file").get<std::string>()).rgb;
    }
  }
  throw std::runtime_error("no image " + id);
}

class TorchvisionProcessor : public ::testing::TestWithParam<ProcessorCase> {};

TEST_P(TorchvisionProcessor, EveryStageMatches) {
  const ProcessorCase& c = GetParam();
  const json& expected = v5_json().at("preprocess").at("images").at(c.image).at(c.processor);
  const std::string prefix = c.image + "/" + c.processor + "/";
  ImageProcessor processor(torchvision_options(c.processor));
  Tensor rgb = decoded(c.image);
  if (!expected.at("error").is_null()) {
    // transformers 5 fails where a side of a very thin image rounds to 0 ("Size must contain
    // 'height' and 'width'"); as with the Pillow backend we throw InvalidArgument naming it.
    ASSERT_NE(expected.at("error").get<std::string>().find("=0"), std::string::npos)
        << expected.at("error");
    EXPECT_THROW(processor.preprocess({rgb}), InvalidArgument);
    return;
  }
  Tensor resized = processor.resize(rgb);
  expect_golden(prefix + "resized", resized);
  Tensor cropped = processor.center_crop(resized);
  expect_golden(prefix + "cropped", cropped);
  expect_golden(prefix + "pixel_values", processor.preprocess({rgb}).pixel_values);
}

INSTANTIATE_TEST_SUITE_P(AllImages, TorchvisionProcessor, ::testing::ValuesIn(processor_cases()),
                         [](const auto& info) {
                           return info.param.image + "_" + info.param.processor;
                         });

// The tiny checkpoints' batches (3 images of different sizes), configured from their
// preprocessor_config.json as the Embedder does.
TEST(TorchvisionProcessorBatch, TinyCheckpointPixelValues) {
  int compared = 0;
  for (const char* model : {"bridgetower-base-tiny", "bridgetower-large-tiny", "clip-tiny-gelu",
                            "clip-tiny-quickgelu"}) {
    ImageProcessorOptions o = ImageProcessorOptions::from_json_file(
        data_dir() + "/models/" + model + "/preprocessor_config.json");
    for (const char* backend : {"torchvision", "pil"}) {
      o.backend = std::string(backend) == "pil" ? ImageBackend::Pil : ImageBackend::Torchvision;
      const std::string prefix = std::string(backend) + "/" + model + "/batch/";
      const golden::Entry& values = v5().entry(prefix + "pixel_values");
      std::vector<Tensor> images;
      const json inputs = json::parse(values.inputs_json);
      for (const json& p : inputs.at("images")) {
        images.push_back(read_image(data_dir() + "/" + p.get<std::string>()).rgb);
      }
      PixelBatch batch = ImageProcessor(o).preprocess(images);
      expect_golden(values.name, batch.pixel_values);
      if (v5().find(prefix + "pixel_mask") != nullptr) {
        expect_golden(prefix + "pixel_mask", batch.pixel_mask);
      }
      ++compared;
    }
  }
  EXPECT_EQ(compared, 8);
}

}  // namespace
}  // namespace mmembed::vision
