// Helpers shared by the test binaries (every mmembed_add_test target has tests/support on its
// include path).
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <exception>
#include <functional>
#include <string>

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

}  // namespace mmembed::testing_support
