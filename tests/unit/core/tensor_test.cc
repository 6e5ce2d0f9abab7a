#include "core/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "mmembed/error.h"

namespace mmembed {
namespace {

TEST(Shape, NumelAndString) {
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_numel({5, 0, 7}), 0);
  EXPECT_EQ(shape_str({2, 3}), "[2,3]");
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_THROW(shape_numel({-1, 2}), ShapeError);
  std::int64_t big = std::numeric_limits<std::int64_t>::max() / 2;
  EXPECT_THROW(shape_numel({big, 3}), ShapeError);
}

TEST(DType, NamesRoundTrip) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::Bool}) {
    auto parsed = parse_dtype(dtype_name(d));
    ASSERT_TRUE(parsed.has_value()) << dtype_name(d);
    EXPECT_EQ(*parsed, d);
  }
  EXPECT_EQ(parse_dtype("BF16"), DType::BF16);
  EXPECT_EQ(parse_dtype("BOOL"), DType::Bool);
  EXPECT_FALSE(parse_dtype("F8_E4M3").has_value());
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
}

TEST(Tensor, EmptyIsAligned) {
  for (std::int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty(DType::F32, {n});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw()) % kTensorAlignment, 0u);
    EXPECT_EQ(t.numel(), n);
    EXPECT_EQ(t.nbytes(), static_cast<std::size_t>(n) * 4);
    EXPECT_TRUE(t.owns_memory());
  }
}

TEST(Tensor, ZerosFromAndTypedAccess) {
  Tensor z = Tensor::zeros(DType::I64, {2, 2});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(z.data<std::int64_t>()[i], 0);
  Tensor t = Tensor::from<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(t.describe(), "f32[2,3]");
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_THROW(t.dim(2), ShapeError);
  EXPECT_THROW(t.data<std::int64_t>(), ShapeError);
  EXPECT_THROW((Tensor::from<float>({2, 2}, {1, 2, 3})), ShapeError);
}

TEST(Tensor, ShallowCopyCloneReshapeSlice) {
  Tensor t = Tensor::from<float>({3, 2}, {0, 1, 2, 3, 4, 5});
  Tensor alias = t;
  Tensor deep = t.clone();
  t.data<float>()[0] = 42;
  EXPECT_EQ(alias.data<float>()[0], 42);
  EXPECT_EQ(deep.data<float>()[0], 0);

  Tensor r = t.reshape({2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.raw(), t.raw());
  EXPECT_THROW(t.reshape({4, -1}), ShapeError);
  EXPECT_THROW(t.reshape({-1, -1}), ShapeError);

  Tensor rows = t.slice_rows(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 2}));
  EXPECT_EQ(rows.data<float>()[0], 2);
  EXPECT_THROW(t.slice_rows(2, 4), ShapeError);
}

TEST(Tensor, WrapKeepsOwnerAlive) {
  auto buffer = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3});
  std::weak_ptr<std::vector<float>> weak = buffer;
  Tensor t = Tensor::wrap(buffer->data(), DType::F32, {3}, buffer);
  buffer.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(t.data<float>()[2], 3);
  t = Tensor();
  EXPECT_TRUE(weak.expired());
}

TEST(Tensor, BorrowDoesNotOwn) {
  float values[4] = {1, 2, 3, 4};
  Tensor t = Tensor::borrow(values, DType::F32, {2, 2});
  EXPECT_FALSE(t.owns_memory());
  EXPECT_EQ(t.data<float>()[3], 4);
  EXPECT_THROW(Tensor::borrow(static_cast<void*>(nullptr), DType::F32, {2}), InvalidArgument);
}

TEST(Tensor, ToF32ConvertsEveryDtype) {
  std::uint16_t bf[2] = {0x3f80, 0xc040};  // 1.0, -3.0
  Tensor b = Tensor::borrow(bf, DType::BF16, {2}).to_f32();
  EXPECT_EQ(b.data<float>()[0], 1.0f);
  EXPECT_EQ(b.data<float>()[1], -3.0f);
  std::uint16_t h[2] = {0x3c00, 0x4500};  // 1.0, 5.0
  Tensor f = Tensor::borrow(h, DType::F16, {2}).to_f32();
  EXPECT_EQ(f.data<float>()[1], 5.0f);
  Tensor i = Tensor::from<std::int64_t>({2}, {7, -9}).to_f32();
  EXPECT_EQ(i.data<float>()[1], -9.0f);
  Tensor same = Tensor::from<float>({1}, {2.5f});
  EXPECT_EQ(same.to_f32().raw(), same.raw());
}

}  // namespace
}  // namespace mmembed
