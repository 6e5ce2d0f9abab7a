// Internal to the kernels: linear() for short x (a few tokens: one text, a caption), where the
// product is bound by reading the weights once from memory rather than by arithmetic, and for x
// of up to 80 rows (a 77-token text), where it is bound by arithmetic and this path keeps the
// FMA units busier than the backend's packed GEMM.
//
// A BLAS GEMM packs panels of W for every call; with 16 rows of x that packing is a large part of
// the work and oneDNN reaches ~5 GB/s of weight traffic on one core here (about half of what the
// core can stream). This path reads W in its stored [out, in] layout exactly once: x is
// transposed into a small [in, 16 * V] panel (V vectors of 16 rows, zero-padded), and each block
// of 8, 6 or 5 output columns (V <= 3, 4, 5: V x columns accumulators and V vectors of x fill the
// 32 vector registers) keeps its accumulators while it streams the weight rows with software
// prefetch, multiplying each weight by a 16-row vector of x (docs/performance.md, "Short
// inputs"). Results go through a staging buffer of 16-column groups and are written to y by
// 16 x 16 register transposes.
//
// Up to 16 rows a vector holds 8 rows x 2 consecutive k instead, so that one 64-bit broadcast of
// two weights feeds two FMAs (12 columns a block): the weight stream went from ~9-10 to ~11-12
// GB/s on one core.
//
// From 17 rows on, every output element is one FMA chain over k = 0 .. in-1 in order, started
// from its bias (or zero); up to 16 rows it is bias + (chain over the even k + chain over the odd
// k). Either way its value does not depend on the thread count, the column block it falls in or
// the other rows of x within the same class (<= 16 rows, or 17 to 160 through linear()), so 1 and
// 2 threads give the same bits.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace mmembed::kernels::detail {

// Rows of x small_rows_linear takes (one panel of at most 5 vectors of 16 rows).
inline constexpr std::int64_t kSmallRowsMax = 80;
// Rows for which linear() takes the short path, measured by bench/bench_short_linear
// (docs/performance.md, "Short inputs"): from 8 to 48 rows it streams the weights 1.2-1.6x
// faster than oneDNN; below 8, oneDNN's matrix-vector-like path is faster (2 rows: 13-19 GB/s
// against ~9). From 56 to 80 rows (6 and 5 columns a block) it ran at 0.86-1.70x the speed of
// oneDNN over the ten layer shapes (2 of 40 cells below 1.0), and a 77-token BridgeTower-base
// text on one thread ~13% less (docs/performance.md, "BridgeTower: the time besides the GEMMs").
inline constexpr std::int64_t kSmallRowsLinearMin = 8;
inline constexpr std::int64_t kSmallRowsLinear = 80;
// From 81 to 160 rows linear() runs the short path on each half of x (41 to 80 rows, so each
// output is still one FMA chain in k order). A batch of 8 sixteen-token texts (128 rows) ran
// faster end to end than through oneDNN in three of four alternating series (BridgeTower base
// b8 on 1 thread: fastest call 0.160-0.168 s against 0.173-0.203 s; docs/performance.md). At
// 616 rows (8 groups of 77) it was ~20% slower, so taller x stays with the backend.
inline constexpr std::int64_t kSmallRowsGrouped = 160;

// True when this CPU has the instructions the short path is written for (AVX-512F).
bool small_rows_supported();

// y[rows, out] = act(x[rows, in] * w[out, in]^T + bias); 1 <= rows <= kSmallRowsMax, in >= 1,
// out >= 1; bias may be null. Splits the column blocks over the kernels' threads (parallel.h)
// unless called from inside a parallel task. Requires small_rows_supported().
void small_rows_linear(const float* x, const float* w, const float* bias, float* y,
                       std::int64_t rows, std::int64_t in, std::int64_t out, Epilogue epilogue);

}  // namespace mmembed::kernels::detail
