// Reporting of named intermediates ("stages") of a forward pass, shared by the model families
// that do not have their own: calls the caller's hook, or, when there is none and the
// environment variable MMEMBED_DUMP is set, prints one summary line per stage to stderr.
//
//   const models::StageReporter stage(options.on_stage);
//   stage("text/layer_0", hidden);     // hook(name, tensor) / "mmembed dump text/layer_0 ..."
//   if (stage.active()) { ... }        // skip work done only for reporting
#pragma once

#include <functional>
#include <string>

#include "core/tensor.h"

namespace mmembed::models {

using StageFn = std::function<void(const std::string& name, const Tensor& value)>;

class StageReporter {
 public:
  explicit StageReporter(const StageFn& hook);
  // True when stages go somewhere (a hook or MMEMBED_DUMP).
  bool active() const { return hook_ != nullptr || dump_; }
  // Any dtype; the summary converts values to double.
  void operator()(const std::string& name, const Tensor& value) const;

 private:
  const StageFn& hook_;
  bool dump_ = false;
};

}  // namespace mmembed::models
