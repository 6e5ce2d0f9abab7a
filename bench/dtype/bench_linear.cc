// One linear layer's product in each precision (issue #22): kernels::linear (fp32),
// linear_bf16 and linear_int8 on the same shape, GFLOP/s as 2 * rows * in * out / seconds
// (the int8 call's time includes quantizing its input, as in a model).
//
//   bench_linear_dtype [--rows 3536] [--in 1024] [--out 4096] [--threads 2] [--reps 5]
// Prints one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/parallel.h"

using namespace mmembed::kernels;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::int64_t rows = 3536, in = 1024, out = 4096;
  int threads = 2, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long long v = std::stoll(argv[i + 1]);
    if (a == "--rows") rows = v;
    else if (a == "--in") in = v;
    else if (a == "--out") out = v;
    else if (a == "--threads") threads = static_cast<int>(v);
    else if (a == "--reps") reps = static_cast<int>(v);
    else {
      std::fprintf(stderr, "bench_linear_dtype: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  set_num_threads(threads);
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(rows * in), w(out * in), bias(out), y(rows * out);
  for (float& v : x) v = g(rng);
  for (float& v : w) v = g(rng) * 0.05f;
  for (float& v : bias) v = g(rng);
  std::vector<std::uint16_t> wb(w.size());
  to_bf16(w.data(), wb.data(), static_cast<std::int64_t>(w.size()));
  std::vector<std::int8_t> wq(w.size());
  std::vector<float> ws(out);
  quantize_rows_s8(w.data(), out, in, wq.data(), ws.data());
  auto best = [&](auto&& f) {
    f();  // warm-up (oneDNN generates its kernels on the first call)
    double b = 1e300;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      f();
      b = std::min(b, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return b;
  };
  const double flop = 2.0 * double(rows) * double(in) * double(out);
  const double f32 = best([&] { linear(x.data(), w.data(), bias.data(), y.data(), rows, in, out); });
  const double b16 = best([&] {
    linear_bf16(x.data(), wb.data(), bias.data(), y.data(), rows, in, out, Epilogue::None);
  });
  const double i8 = best([&] {
    linear_int8(x.data(), wq.data(), ws.data(), bias.data(), y.data(), rows, in, out,
                Epilogue::None);
  });
  std::printf(
      "{\"rows\": %lld, \"in\": %lld, \"out\": %lld, \"threads\": %d, \"fp32_gflops\": %.1f, "
      "\"bf16_gflops\": %.1f, \"int8_gflops\": %.1f}\n",
      static_cast<long long>(rows), static_cast<long long>(in), static_cast<long long>(out),
      threads, flop / f32 / 1e9, flop / b16 / 1e9, flop / i8 / 1e9);
  return 0;
}
