#include "compare.h"

#include <cmath>
#include <sstream>

#include "core/check.h"

namespace mmembed::golden {

CompareResult compare(const std::string& name, const Tensor& ours, const Tensor& ref,
                      const Tolerance& tol) {
  CompareResult r;
  if (ours.shape() != ref.shape()) {
    r.message = str_cat(name, ": shape ", shape_str(ours.shape()), " but the reference has ",
                        shape_str(ref.shape()));
    return r;
  }
  bool exact = !dtype_is_float(ref.dtype()) || !dtype_is_float(ours.dtype());
  double atol = exact ? 0.0 : tol.atol;
  double rtol = exact ? 0.0 : tol.rtol;
  double worst_excess = -1.0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) {
    double a = ours.value_at(i), b = ref.value_at(i);
    double diff = std::fabs(a - b);
    bool bad;
    if (std::isnan(a) || std::isnan(b)) {
      bad = !(std::isnan(a) && std::isnan(b));
      diff = bad ? INFINITY : 0.0;
    } else if (std::isinf(a) || std::isinf(b)) {
      bad = a != b;
      diff = bad ? INFINITY : 0.0;
    } else {
      bad = diff > atol + rtol * std::fabs(b);
    }
    if (diff > r.max_abs_diff) r.max_abs_diff = diff;
    if (bad) {
      ++r.mismatches;
      double excess = diff - (atol + rtol * std::fabs(b));
      if (excess > worst_excess) {
        worst_excess = excess;
        r.worst_index = i;
        r.worst_ours = a;
        r.worst_ref = b;
      }
    }
  }
  r.ok = r.mismatches == 0;
  if (!r.ok) {
    std::ostringstream msg;
    msg.precision(9);
    msg << name << ": " << r.mismatches << " of " << ref.numel() << " elements differ"
        << (exact ? " (exact comparison)" : "") << "; worst at flat index " << r.worst_index
        << ": ours " << r.worst_ours << " reference " << r.worst_ref << " (atol " << atol
        << ", rtol " << rtol << "); max |diff| " << r.max_abs_diff;
    r.message = msg.str();
  }
  return r;
}

}  // namespace mmembed::golden
