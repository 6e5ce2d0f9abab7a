// Row-wise softmax on [rows, cols] row-major f32 arrays. y may equal x (in place). Each row is
// computed by one thread, so results do not depend on the thread count.
//
//   kernels::softmax(scores, scores, Tq, Tk, key_mask);   // key_mask[Tk]: 0 or a large negative
#pragma once

#include <cstdint>

namespace mmembed::kernels {

// y[r, :] = softmax(x[r, :] + mask), max-subtracted; mask ([cols], added to every row) may be
// null. As in PyTorch, a row whose entries are all -inf gives NaN; a mask of the lowest finite
// float (the Hugging Face convention) instead gives those entries probability 0, or a uniform row
// when every entry of the row is masked.
void softmax(const float* x, float* y, std::int64_t rows, std::int64_t cols,
             const float* mask = nullptr);

namespace ref {
void softmax(const float* x, float* y, std::int64_t rows, std::int64_t cols,
             const float* mask = nullptr);
}  // namespace ref

}  // namespace mmembed::kernels
