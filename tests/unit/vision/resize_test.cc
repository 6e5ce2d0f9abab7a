// Pillow-exact resize: hand-checked cases, small cases whose expected values come from
// Pillow 11.3 (`Image.fromarray(a).resize((w, h), filter)`), shapes and errors.
#include "vision/resize.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "mmembed/error.h"

namespace mmembed::vision {
namespace {

Tensor image(Shape shape, const std::vector<int>& values) {
  std::vector<std::uint8_t> bytes(values.begin(), values.end());
  return Tensor::from_vector<std::uint8_t>(std::move(shape), bytes);
}

std::vector<int> values(const Tensor& t) {
  const std::uint8_t* p = t.data<std::uint8_t>();
  return std::vector<int>(p, p + t.numel());
}

Tensor random_image(std::int64_t h, std::int64_t w, std::int64_t c, unsigned seed) {
  std::mt19937 rng(seed);
  Tensor t = Tensor::empty(DType::U8, {h, w, c});
  std::uint8_t* p = t.data<std::uint8_t>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<std::uint8_t>(rng() & 0xff);
  return t;
}

// By hand: upscaling 2 -> 4 puts output centers at 0.25, 0.75, 1.25, 1.75; the triangle kernel
// gives weights (1), (0.75, 0.25), (0.25, 0.75), (1): 0, 63.75 -> 64, 191.25 -> 191, 255.
TEST(Resize, BilinearUpscaleByHand) {
  Tensor out = resize(image({1, 2, 1}, {0, 255}), 1, 4, Resample::Bilinear);
  EXPECT_EQ(out.shape(), (Shape{1, 4, 1}));
  EXPECT_EQ(values(out), (std::vector<int>{0, 64, 191, 255}));
}

// By hand: downscaling 4 -> 2 stretches the kernel by 2; output 0 (center 1.0) weighs the four
// inputs by Keys(-0.25/.., 0.25, 0.75, 1.25 after / 2 scaling) = 0.8671875, 0.8671875,
// 0.2265625, -0.0703125 (sum 1.890625): 255 * 0.15625 / 1.890625 = 21.07 -> 21.
TEST(Resize, BicubicDownscaleByHand) {
  Tensor out = resize(image({1, 4, 1}, {0, 0, 255, 255}), 1, 2, Resample::Bicubic);
  EXPECT_EQ(values(out), (std::vector<int>{21, 234}));
}

TEST(Resize, BicubicOvershootIsClipped) {
  Tensor out = resize(image({1, 3, 1}, {0, 255, 0}), 1, 7, Resample::Bicubic);
  EXPECT_EQ(values(out), (std::vector<int>{0, 26, 160, 255, 160, 26, 0}));
}

TEST(Resize, OneRowAndOneColumn) {
  EXPECT_EQ(values(resize(image({1, 7, 1}, {10, 50, 90, 130, 170, 210, 250}), 1, 3,
                          Resample::Bicubic)),
            (std::vector<int>{39, 130, 221}));
  EXPECT_EQ(values(resize(image({5, 1, 1}, {0, 100, 200, 50, 255}), 9, 1, Resample::Bicubic)),
            (std::vector<int>{0, 24, 88, 158, 200, 106, 59, 193, 255}));
}

// A 3x4 RGB image (numpy default_rng(0).integers(0, 256, (3, 4, 3))) through every filter.
const std::vector<int> kSmall = {217, 163, 130, 69,  78,  10,  19,  4,   44,  208, 166, 233,
                                 128, 155, 248, 186, 161, 139, 143, 239, 71,  208, 171, 0,
                                 100, 219, 141, 8,   195, 186, 216, 44,  22,  220, 5,   138};

TEST(Resize, SmallRgbEveryFilterMatchesPillow) {
  Tensor in = image({3, 4, 3}, kSmall);
  EXPECT_EQ(values(resize(in, 5, 2, Resample::Bicubic)),
            (std::vector<int>{124, 100, 52,  98,  72,  129, 139, 125, 107, 129,
                              131, 92,  153, 167, 186, 179, 202, 40,  98,  188,
                              166, 194, 101, 69,  61,  197, 144, 198, 26,  94}));
  EXPECT_EQ(values(resize(in, 2, 3, Resample::Lanczos)),
            (std::vector<int>{181, 145, 149, 76, 94, 41, 165, 161, 124, 85, 199, 199, 136, 162,
                              108, 224, 73, 52}));
  EXPECT_EQ(values(resize(in, 2, 3, Resample::Box)),
            (std::vector<int>{173, 159, 189, 105, 121, 66, 208, 169, 117, 100, 219, 141, 112,
                              120, 104, 220, 5, 138}));
  Tensor hamming = resize(in, 6, 5, Resample::Hamming);
  EXPECT_EQ(hamming.shape(), (Shape{6, 5, 3}));
  const std::vector<int> all = values(hamming);
  std::vector<int> row0(all.begin(), all.begin() + 15);
  EXPECT_EQ(row0, (std::vector<int>{217, 163, 130, 87, 89, 25, 44, 41, 27, 43, 24, 68, 208, 166,
                                    233}));
}

TEST(Resize, SameSizeIsAnIndependentCopy) {
  Tensor in = random_image(7, 5, 3, 1);
  Tensor out = resize(in, 7, 5, Resample::Bicubic);
  EXPECT_EQ(values(out), values(in));
  EXPECT_NE(out.raw(), in.raw());
}

TEST(Resize, OnlyOneAxisChanges) {
  // A vertical-only resize leaves each column's profile shape; a horizontal-only one each row's.
  Tensor in = random_image(6, 9, 3, 2);
  Tensor tall = resize(in, 13, 9, Resample::Bicubic);
  Tensor wide = resize(in, 6, 20, Resample::Bicubic);
  EXPECT_EQ(tall.shape(), (Shape{13, 9, 3}));
  EXPECT_EQ(wide.shape(), (Shape{6, 20, 3}));
  // Resizing one column alone gives the same column as resizing the whole image vertically.
  Tensor col = Tensor::empty(DType::U8, {6, 1, 3});
  for (int y = 0; y < 6; ++y) std::memcpy(col.data<std::uint8_t>() + 3 * y, in.data<std::uint8_t>() + y * 27 + 12, 3);
  Tensor col_out = resize(col, 13, 1, Resample::Bicubic);
  for (int y = 0; y < 13; ++y) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(col_out.data<std::uint8_t>()[3 * y + c], tall.data<std::uint8_t>()[y * 27 + 12 + c]);
    }
  }
}

TEST(Resize, UpAndDownscaleKeepConstantImages) {
  Tensor flat = Tensor::empty(DType::U8, {10, 12, 3});
  std::memset(flat.raw(), 77, flat.nbytes());
  for (auto [h, w] : {std::pair{1, 1}, {3, 50}, {40, 7}, {9, 11}}) {
    for (Resample r : {Resample::Bicubic, Resample::Bilinear, Resample::Lanczos}) {
      Tensor out = resize(flat, h, w, r);
      for (int v : values(out)) ASSERT_EQ(v, 77) << h << "x" << w << " " << resample_name(r);
    }
  }
}

TEST(Resize, GrayAndRgbaChannelsAreIndependent) {
  Tensor rgba = random_image(8, 8, 4, 3);
  Tensor out = resize(rgba, 5, 11, Resample::Bicubic);
  Tensor gray = Tensor::empty(DType::U8, {8, 8, 1});
  for (int i = 0; i < 64; ++i) gray.data<std::uint8_t>()[i] = rgba.data<std::uint8_t>()[4 * i + 2];
  Tensor gray_out = resize(gray, 5, 11, Resample::Bicubic);
  for (int i = 0; i < 55; ++i) {
    EXPECT_EQ(gray_out.data<std::uint8_t>()[i], out.data<std::uint8_t>()[4 * i + 2]);
  }
}

TEST(Resize, SameBitsForEveryThreadCount) {
  Tensor in = random_image(301, 257, 3, 4);
  Tensor serial = resize(in, 97, 413, Resample::Bicubic);
  for (int threads : {2, 3, 4}) {
    ThreadPool pool(threads);
    Tensor parallel = resize(in, 97, 413, Resample::Bicubic, &pool);
    EXPECT_EQ(std::memcmp(parallel.raw(), serial.raw(), serial.nbytes()), 0) << threads;
  }
}

TEST(Resize, Errors) {
  Tensor in = random_image(4, 4, 3, 5);
  EXPECT_THROW(resize(in, 0, 4, Resample::Bicubic), InvalidArgument);
  EXPECT_THROW(resize(in, 4, -1, Resample::Bicubic), InvalidArgument);
  EXPECT_THROW(resize(in, 2, 2, Resample::Nearest), Unsupported);
  EXPECT_THROW(resize(Tensor::zeros(DType::F32, {4, 4, 3}), 2, 2, Resample::Bicubic), ShapeError);
  EXPECT_THROW(resize(Tensor::zeros(DType::U8, {4, 4}), 2, 2, Resample::Bicubic), ShapeError);
  EXPECT_THROW(resize(Tensor::zeros(DType::U8, {4, 4, 5}), 2, 2, Resample::Bicubic), ShapeError);
  try {
    resize(in, 0, 3, Resample::Bicubic);
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("must be > 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mmembed::vision
