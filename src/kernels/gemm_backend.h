// The interface a GEMM backend implements, and the backends this build can provide.
//
// A backend is a table of plain functions. gemm.cc routes the seam (kernels::sgemm) to the one
// selected by MMEMBED_BLAS; the benchmarks link every backend that was found and call them
// through this table to compare them. To add one (an int8/bf16 path, a GPU library): write
// gemm_<name>.cc defining gemm_backend_<name>(), add its find logic and library to
// src/kernels/CMakeLists.txt, and add the name to MMEMBED_BLAS's list; a kind of product the
// first backends lack gets a new, nullable function pointer here.
#pragma once

#include <cstdint>
#include <string>

namespace mmembed::kernels {

struct GemmBackend {
  const char* name;
  // Same contract as kernels::sgemm (gemm.h), after the seam's argument normalisation:
  // M, N, K >= 1 and every leading dimension valid and >= 1.
  void (*sgemm)(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                float beta, float* C, std::int64_t ldc);
  // Threads the library may use for one sgemm call (>= 1).
  void (*set_num_threads)(int n);
  // Library version and run-time CPU dispatch, e.g. "OpenBLAS 0.3.21 ... core=SkylakeX".
  std::string (*describe)();
  // Optional: true makes the sgemm calls issued from the calling thread run on that thread
  // alone, false restores the configured count. The kernels' task threads set it (parallel.h),
  // so that products split into tiles run one tile per thread; a backend without it (null) is
  // not split (kernels::linear calls its sgemm once).
  void (*set_thread_serial)(bool serial);
  // Optional: C[M,N] = A[M,K] * B[N,K]^T (+ C when accumulate) with A and B bfloat16 (row-major,
  // leading dimensions lda, ldb >= K), products summed in float32. Null: bf16 weights are not
  // available with this backend.
  void (*gemm_bf16)(std::int64_t M, std::int64_t N, std::int64_t K, const std::uint16_t* A,
                    std::int64_t lda, const std::uint16_t* B, std::int64_t ldb, bool accumulate,
                    float* C, std::int64_t ldc);
  // Optional: C[M,N] = A[M,K] * B[N,K]^T with A and B int8 (row-major), C int32. Null: int8
  // weights are not available with this backend.
  void (*gemm_s8)(std::int64_t M, std::int64_t N, std::int64_t K, const std::int8_t* A,
                  std::int64_t lda, const std::int8_t* B, std::int64_t ldb, std::int32_t* C,
                  std::int64_t ldc);
};

// Each is defined only when that backend was found at configure time (mmembed_gemm_<name>).
const GemmBackend& gemm_backend_openblas();
const GemmBackend& gemm_backend_blis();
const GemmBackend& gemm_backend_dnnl();

// The backend behind kernels::sgemm.
const GemmBackend& selected_gemm_backend();

}  // namespace mmembed::kernels
