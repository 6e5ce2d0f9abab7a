// GEMM backend: oneDNN's dnnl_sgemm (row-major).
//
// Debian's oneDNN 2.6 uses the OpenMP runtime (libgomp) for its threads. OpenMP's thread count
// is a per-thread setting (the nthreads-var ICV), so a value set once from the main thread would
// not apply to a GEMM issued from another thread: each call applies the requested count to the
// calling thread when it differs.
#include <dnnl.h>

#include <atomic>
#include <string>

#include "core/check.h"
#include "kernels/gemm_backend.h"

// The two OpenMP entry points we need, declared here rather than through <omp.h>, which clang
// does not ship without libomp-dev; the symbols come from libgomp, the runtime oneDNN uses.
extern "C" {
int omp_get_max_threads(void);
void omp_set_num_threads(int);
}

namespace mmembed::kernels {
namespace {

std::atomic<int> g_threads{0};  // 0: leave OpenMP's default

// Set on the kernels' task threads: their sgemm calls run on the calling thread alone.
thread_local bool t_serial = false;

void dnnl_set_thread_serial(bool serial) { t_serial = serial; }

void dnnl_sgemm_call(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
                     float alpha, const float* A, std::int64_t lda, const float* B,
                     std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  int want = t_serial ? 1 : g_threads.load(std::memory_order_relaxed);
  if (want > 0 && omp_get_max_threads() != want) omp_set_num_threads(want);
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                                beta, C, ldc);
  MMEMBED_ASSERT(st == dnnl_success);
}

void dnnl_set_threads(int n) { g_threads.store(n, std::memory_order_relaxed); }

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

std::string dnnl_describe() {
  const dnnl_version_t* v = dnnl_version();
  int threads = g_threads.load(std::memory_order_relaxed);
  return str_cat("oneDNN ", v->major, ".", v->minor, ".", v->patch, " (", v->hash,
                 ") runtime=OpenMP isa=", isa_name(dnnl_get_effective_cpu_isa()),
                 " threads=", threads > 0 ? threads : omp_get_max_threads());
}

}  // namespace

const GemmBackend& gemm_backend_dnnl() {
  static const GemmBackend backend{"dnnl", dnnl_sgemm_call, dnnl_set_threads, dnnl_describe,
                                   dnnl_set_thread_serial};
  return backend;
}

}  // namespace mmembed::kernels
