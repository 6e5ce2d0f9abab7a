#include "models/stages.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace mmembed::models {

StageReporter::StageReporter(const StageFn& hook) : hook_(hook) {
  dump_ = hook_ == nullptr && std::getenv("MMEMBED_DUMP") != nullptr;
}

void StageReporter::operator()(const std::string& name, const Tensor& value) const {
  if (hook_) {
    hook_(name, value);
    return;
  }
  if (!dump_) return;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  const std::int64_t n = value.numel();
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = value.value_at(i);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  std::fprintf(stderr, "mmembed dump %-32s %-16s min %+.6e max %+.6e mean %+.6e\n", name.c_str(),
               shape_str(value.shape()).c_str(), lo, hi, n ? sum / static_cast<double>(n) : 0.0);
}

}  // namespace mmembed::models
