#include "kernels/gemm.h"

namespace mmembed::kernels {

void prepare_gemm() {
  // One tiny product through the seam: the backend's kernels are made on the first call.
  float a[16] = {}, b[16] = {}, c[16];
  sgemm(Trans::No, Trans::No, 4, 4, 4, 1.0f, a, 4, b, 4, 0.0f, c, 4);
}

}  // namespace mmembed::kernels
