// Helpers shared by the test binaries (every mmembed_add_test target has tests/support on its
// include path).
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <exception>
#include <functional>
#include <string>

#include "core/tensor.h"

namespace mmembed::testing_support {

// Runs `f`, which must throw exactly E (or a subclass), and returns the message; records a
// failure otherwise.
template <typename E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// A tiny model folder under tests/data/models and which of its weight files to load.
struct WeightsCase {
  std::string model;    // e.g. "bridgetower-large-tiny"
  std::string weights;  // "model.safetensors" or "pytorch_model.bin"
};

// gtest parameter name: the case with every non-alphanumeric character replaced by '_'.
inline std::string weights_case_name(const ::testing::TestParamInfo<WeightsCase>& info) {
  std::string s = info.param.model + "_" + info.param.weights;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

// rows[i % rows] of x for i < n: a batch of n items made from a golden batch's items.
inline Tensor repeat_rows(const Tensor& x, std::int64_t n) {
  Shape shape = x.shape();
  const std::int64_t rows = shape[0];
  shape[0] = n;
  Tensor out = Tensor::empty(x.dtype(), shape);
  const std::size_t row_bytes = x.nbytes() / static_cast<std::size_t>(rows);
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(static_cast<char*>(out.raw()) + i * row_bytes,
                static_cast<const char*>(x.raw()) + (i % rows) * row_bytes, row_bytes);
  }
  return out;
}

// Every element of f32 `two` within `tolerance` of `one`'s.
inline void expect_within(const Tensor& one, const Tensor& two, double tolerance,
                          const char* what) {
  ASSERT_EQ(one.shape(), two.shape()) << what;
  for (std::int64_t i = 0; i < one.numel(); ++i) {
    ASSERT_NEAR(one.data<float>()[i], two.data<float>()[i], tolerance)
        << what << " element " << i;
  }
}

// Batch independence of embeddings: within 1e-6.
inline void expect_within_1e6(const Tensor& one, const Tensor& two, const char* what) {
  expect_within(one, two, 1e-6, what);
}

}  // namespace mmembed::testing_support
