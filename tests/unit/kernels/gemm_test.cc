// The GEMM seam and every backend found, against the double-precision reference.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "core/check.h"
#include "kernels/gemm.h"
#include "kernels/gemm_backend.h"
#include "kernels/parallel.h"
#include "kernel_test_util.h"

namespace mmembed::kernels {
namespace {

using testing::all_close;
using testing::random_vector;

constexpr double kUnit = 1.0 / (1 << 24);  // float unit roundoff 2^-24

using SgemmFn = void (*)(Trans, Trans, std::int64_t, std::int64_t, std::int64_t, float,
                         const float*, std::int64_t, const float*, std::int64_t, float, float*,
                         std::int64_t);

struct Case {
  bool ta, tb;
  std::int64_t M, N, K;
  std::int64_t pad;  // extra columns in every leading dimension (ld > cols)
  float alpha, beta;
};

// Runs `fn` and the reference on one case and compares them with the classical error bound of a
// float dot product of length K: |c - c_ref| <= (K + 2) u (|alpha| sum|a||b| + |beta c0|)
// (docs/numerics.md, "Kernels").
::testing::AssertionResult check_case(const Case& c, SgemmFn fn, std::uint32_t seed) {
  const std::int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const std::int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const std::int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  auto A = random_vector(static_cast<std::size_t>(a_rows * lda), seed);
  auto B = random_vector(static_cast<std::size_t>(b_rows * ldb), seed + 1);
  auto C0 = random_vector(static_cast<std::size_t>(c.M * ldc), seed + 2);
  if (c.beta == 0.0f) {  // beta == 0 must not read C: poison it
    for (float& x : C0) x = std::numeric_limits<float>::quiet_NaN();
  }
  std::vector<float> got = C0, want = C0;
  const Trans ta = c.ta ? Trans::Yes : Trans::No, tb = c.tb ? Trans::Yes : Trans::No;
  fn(ta, tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, got.data(), ldc);
  ref::sgemm(ta, tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, want.data(),
             ldc);
  // sum |a||b| per element, for the bound.
  std::vector<float> absA(A.size()), absB(B.size());
  for (std::size_t i = 0; i < A.size(); ++i) absA[i] = std::fabs(A[i]);
  for (std::size_t i = 0; i < B.size(); ++i) absB[i] = std::fabs(B[i]);
  std::vector<float> mag(static_cast<std::size_t>(c.M * ldc), 0.0f);
  ref::sgemm(ta, tb, c.M, c.N, c.K, 1.0f, absA.data(), lda, absB.data(), ldb, 0.0f, mag.data(),
             ldc);
  for (std::int64_t i = 0; i < c.M; ++i) {
    for (std::int64_t j = 0; j < ldc; ++j) {
      const std::size_t at = static_cast<std::size_t>(i * ldc + j);
      if (j >= c.N) {  // padding columns of C are never touched
        bool same = std::isnan(C0[at]) ? std::isnan(got[at]) : got[at] == C0[at];
        if (!same) return ::testing::AssertionFailure() << "padding C[" << i << "," << j << "] written";
        continue;
      }
      const double bound =
          (static_cast<double>(c.K) + 2.0) * kUnit *
              (std::fabs(c.alpha) * mag[at] + (c.beta == 0.0f ? 0.0 : std::fabs(c.beta * C0[at]))) +
          1e-30;
      const double err = std::fabs(static_cast<double>(got[at]) - want[at]);
      if (!(err <= bound)) {
        return ::testing::AssertionFailure()
               << "C[" << i << "," << j << "] got " << got[at] << " want " << want[at]
               << " err " << err << " > bound " << bound;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const std::int64_t dims[][3] = {{1, 1, 1},    {1, 17, 33},  {15, 16, 17},  {16, 31, 32},
                                  {33, 63, 64}, {65, 15, 1},  {7, 64, 325},  {77, 65, 64},
                                  {2, 442, 33}, {31, 33, 768}};
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (const auto& d : dims) {
        out.push_back({ta, tb, d[0], d[1], d[2], 0, 1.0f, 0.0f});
        out.push_back({ta, tb, d[0], d[1], d[2], 5, 0.5f, 1.0f});
        out.push_back({ta, tb, d[0], d[1], d[2], 3, -2.0f, 0.25f});
      }
    }
  }
  return out;
}

void seam_sgemm(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                float* C, std::int64_t ldc) {
  sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

TEST(GemmSeam, AllTransposesSizesAndLeadingDimensions) {
  std::uint32_t seed = 1;
  for (const Case& c : cases()) {
    SCOPED_TRACE(::testing::Message() << "ta=" << c.ta << " tb=" << c.tb << " M=" << c.M
                                      << " N=" << c.N << " K=" << c.K << " pad=" << c.pad
                                      << " alpha=" << c.alpha << " beta=" << c.beta);
    EXPECT_TRUE(check_case(c, seam_sgemm, seed += 3));
  }
}

TEST(GemmSeam, DegenerateSizes) {
  std::vector<float> C = {1, 2, 3, 4};
  float A[1] = {7}, B[1] = {9};
  sgemm(Trans::No, Trans::No, 0, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C.data(), 2);  // M = 0: no-op
  EXPECT_EQ(C, (std::vector<float>{1, 2, 3, 4}));
  sgemm(Trans::No, Trans::No, 2, 2, 0, 1.0f, A, 0, B, 2, 0.5f, C.data(), 2);  // K = 0: C *= beta
  EXPECT_EQ(C, (std::vector<float>{0.5f, 1, 1.5f, 2}));
  std::vector<float> nan(4, std::numeric_limits<float>::quiet_NaN());
  sgemm(Trans::No, Trans::No, 2, 2, 0, 1.0f, A, 0, B, 2, 0.0f, nan.data(), 2);  // beta = 0
  EXPECT_EQ(nan, (std::vector<float>{0, 0, 0, 0}));
}

TEST(GemmSeam, LinearMatchesReference) {
  for (std::int64_t rows : {1, 7, 77}) {
    for (auto [in, out] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {33, 17}, {64, 65},
                           {768, 31}}) {
      auto x = random_vector(static_cast<std::size_t>(rows * in), 11);
      auto w = random_vector(static_cast<std::size_t>(out * in), 12);
      auto b = random_vector(static_cast<std::size_t>(out), 13);
      for (const float* bias : {static_cast<const float*>(nullptr), static_cast<const float*>(b.data())}) {
        std::vector<float> got(static_cast<std::size_t>(rows * out)), want(got.size());
        linear(x.data(), w.data(), bias, got.data(), rows, in, out);
        ref::linear(x.data(), w.data(), bias, want.data(), rows, in, out);
        // |x|,|w| <= 1: sum |x||w| <= in, plus |b| <= 1 (docs/numerics.md).
        EXPECT_TRUE(all_close(got, want, (in + 3) * kUnit * (in + 1), 0.0))
            << rows << "x" << in << "->" << out << (bias ? " with bias" : "");
      }
    }
  }
}

TEST(GemmSeam, BackendIsNamedAndDescribed) {
  const std::string name = gemm_backend_name();
  EXPECT_TRUE(name == "openblas" || name == "blis" || name == "dnnl") << name;
  EXPECT_FALSE(gemm_backend_description().empty());
  std::printf("GEMM backend: %s\n", gemm_backend_description().c_str());
}

// Each backend compiled into this test, through the backend table (normalized arguments only).
class Backend : public ::testing::TestWithParam<const GemmBackend*> {};

const GemmBackend* g_backend = nullptr;
void table_sgemm(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                 float* C, std::int64_t ldc) {
  g_backend->sgemm(ta == Trans::Yes, tb == Trans::Yes, M, N, K, alpha, A, lda, B, ldb, beta, C,
                   ldc);
}

TEST_P(Backend, MatchesReference) {
  g_backend = GetParam();
  for (int threads : {1, 2}) {
    g_backend->set_num_threads(threads);
    std::uint32_t seed = 100;
    for (const Case& c : cases()) {
      SCOPED_TRACE(::testing::Message() << g_backend->name << " threads=" << threads
                                        << " ta=" << c.ta << " tb=" << c.tb << " M=" << c.M
                                        << " N=" << c.N << " K=" << c.K << " pad=" << c.pad);
      EXPECT_TRUE(check_case(c, table_sgemm, seed += 3));
    }
  }
  g_backend->set_num_threads(num_threads());
}

// When OpenBLAS and BLIS are linked into one program both export cblas_sgemm; the OpenBLAS
// backend must reach OpenBLAS's (BLIS is called through its own bli_sgemm).
TEST(GemmBackends, CblasSymbolComesFromOpenBlas) {
#if defined(MMEMBED_HAVE_GEMM_OPENBLAS)
  void* sym = dlsym(RTLD_DEFAULT, "cblas_sgemm");
  ASSERT_NE(sym, nullptr);
  Dl_info info{};
  ASSERT_NE(dladdr(sym, &info), 0);
  EXPECT_NE(std::string(info.dli_fname).find("openblas"), std::string::npos) << info.dli_fname;
#else
  GTEST_SKIP() << "OpenBLAS not built";
#endif
}

std::vector<const GemmBackend*> compiled_backends() {
  std::vector<const GemmBackend*> out;
#if defined(MMEMBED_HAVE_GEMM_OPENBLAS)
  out.push_back(&gemm_backend_openblas());
#endif
#if defined(MMEMBED_HAVE_GEMM_BLIS)
  out.push_back(&gemm_backend_blis());
#endif
#if defined(MMEMBED_HAVE_GEMM_DNNL)
  out.push_back(&gemm_backend_dnnl());
#endif
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, Backend, ::testing::ValuesIn(compiled_backends()),
                         [](const ::testing::TestParamInfo<const GemmBackend*>& info) {
                           return std::string(info.param->name);
                         });

}  // namespace
}  // namespace mmembed::kernels

namespace mmembed::kernels {
namespace {

// Whether a backend gives the same bits with 1 and 2 threads on the shapes attention and the
// linear layers use. Recorded in docs/numerics.md; not a requirement on the backend.
bool backend_thread_deterministic(const GemmBackend& be, std::string* detail) {
  struct Shape {
    bool tb;
    std::int64_t M, N, K;
  };
  const Shape shapes[] = {{true, 77, 77, 64},   {false, 77, 64, 77},   {true, 77, 768, 768},
                          {true, 442, 3072, 768}, {true, 8, 768, 3072}, {false, 442, 64, 442}};
  bool all = true;
  for (const Shape& s : shapes) {
    auto A = testing::random_vector(static_cast<std::size_t>(s.M * s.K), 1);
    auto B = testing::random_vector(static_cast<std::size_t>(s.K * s.N), 2);
    std::vector<float> one(static_cast<std::size_t>(s.M * s.N)), two(one.size());
    const std::int64_t ldb = s.tb ? s.K : s.N;
    be.set_num_threads(1);
    be.sgemm(false, s.tb, s.M, s.N, s.K, 1.0f, A.data(), s.K, B.data(), ldb, 0.0f, one.data(), s.N);
    be.set_num_threads(2);
    be.sgemm(false, s.tb, s.M, s.N, s.K, 1.0f, A.data(), s.K, B.data(), ldb, 0.0f, two.data(), s.N);
    const bool same = testing::same_bits(one, two);
    *detail += str_cat(s.M, "x", s.N, "x", s.K, s.tb ? "(NT)" : "(NN)", same ? ":same " : ":DIFF ");
    all = all && same;
  }
  be.set_num_threads(num_threads());
  return all;
}

TEST_P(Backend, ThreadCountDeterminismIsRecorded) {
  std::string detail;
  bool det = backend_thread_deterministic(*GetParam(), &detail);
  std::printf("%s 1 vs 2 threads: %s -> %s\n", GetParam()->name, detail.c_str(),
              det ? "deterministic" : "NOT deterministic");
}

}  // namespace
}  // namespace mmembed::kernels
