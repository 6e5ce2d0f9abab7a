// GEMM backend: oneDNN's dnnl_sgemm (row-major).
//
// Debian's oneDNN 2.6 uses the OpenMP runtime (libgomp) for its threads. OpenMP's thread count
// is a per-thread setting (the nthreads-var ICV), so a value set once from the main thread would
// not apply to a GEMM issued from another thread: each call applies the requested count to the
// calling thread when it differs.
#include <dnnl.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "core/check.h"
#include "kernels/gemm_backend.h"
#include "mmembed/error.h"

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

void dnnl_set_thread_serial(bool serial) {
  t_serial = serial;
}

void dnnl_sgemm_call(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                     const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                     float* C, std::int64_t ldc) {
  int want = t_serial ? 1 : g_threads.load(std::memory_order_relaxed);
  if (want > 0 && omp_get_max_threads() != want) omp_set_num_threads(want);
  dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  MMEMBED_ASSERT(st == dnnl_success);
}

void dnnl_set_threads(int n) {
  g_threads.store(n, std::memory_order_relaxed);
}

void dnnl_gemm_s8_call(std::int64_t M, std::int64_t N, std::int64_t K, const std::int8_t* A,
                       std::int64_t lda, const std::int8_t* B, std::int64_t ldb, std::int32_t* C,
                       std::int64_t ldc) {
  int want = t_serial ? 1 : g_threads.load(std::memory_order_relaxed);
  if (want > 0 && omp_get_max_threads() != want) omp_set_num_threads(want);
  const std::int32_t zero = 0;
  dnnl_status_t st =
      dnnl_gemm_s8s8s32('N', 'T', 'F', M, N, K, 1.0f, A, lda, 0, B, ldb, 0, 0.0f, C, ldc, &zero);
  MMEMBED_ASSERT(st == dnnl_success);
}

// ---- bf16 x bf16 -> f32 through oneDNN's matmul primitive (AVX-512 BF16 / AMX kernels where
// the CPU has them). A primitive is made once per shape and thread, then run with the caller's
// buffers.

#define MMEMBED_DNNL_OK(call)                                                            \
  do {                                                                                   \
    const dnnl_status_t st_ = (call);                                                    \
    MMEMBED_CHECK(st_ == dnnl_success, Unsupported, "oneDNN: " #call " failed (status ", \
                  static_cast<int>(st_), ")");                                           \
  } while (0)

dnnl_engine_t cpu_engine() {
  static dnnl_engine_t engine = [] {
    dnnl_engine_t e = nullptr;
    MMEMBED_DNNL_OK(dnnl_engine_create(&e, dnnl_cpu, 0));
    return e;
  }();
  return engine;
}

struct Bf16Matmul {
  dnnl_primitive_t primitive = nullptr;
  dnnl_memory_t src = nullptr, weights = nullptr, dst = nullptr;
};

// One thread's primitives and stream (oneDNN primitives may run concurrently, but the memory
// objects carry the buffers of one call).
struct Bf16Cache {
  std::map<std::array<std::int64_t, 7>, Bf16Matmul> by_shape;
  dnnl_stream_t stream = nullptr;
  void clear() {
    for (auto& [key, m] : by_shape) {
      dnnl_memory_destroy(m.src);
      dnnl_memory_destroy(m.weights);
      dnnl_memory_destroy(m.dst);
      dnnl_primitive_destroy(m.primitive);
    }
    by_shape.clear();
  }
  ~Bf16Cache() {
    clear();
    if (stream != nullptr) dnnl_stream_destroy(stream);
  }
};

Bf16Matmul make_bf16_matmul(std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t lda,
                            std::int64_t ldb, bool accumulate, std::int64_t ldc) {
  dnnl_memory_desc_t src_md, weights_md, dst_md;
  const dnnl_dims_t src_dims = {M, K}, src_strides = {lda, 1};
  const dnnl_dims_t w_dims = {K, N}, w_strides = {1, ldb};  // B [N, K] row-major read as [K, N]
  const dnnl_dims_t dst_dims = {M, N}, dst_strides = {ldc, 1};
  MMEMBED_DNNL_OK(dnnl_memory_desc_init_by_strides(&src_md, 2, src_dims, dnnl_bf16, src_strides));
  MMEMBED_DNNL_OK(dnnl_memory_desc_init_by_strides(&weights_md, 2, w_dims, dnnl_bf16, w_strides));
  MMEMBED_DNNL_OK(dnnl_memory_desc_init_by_strides(&dst_md, 2, dst_dims, dnnl_f32, dst_strides));
  dnnl_matmul_desc_t desc;
  MMEMBED_DNNL_OK(dnnl_matmul_desc_init(&desc, &src_md, &weights_md, nullptr, &dst_md));
  dnnl_primitive_attr_t attr = nullptr;
  MMEMBED_DNNL_OK(dnnl_primitive_attr_create(&attr));
  dnnl_post_ops_t post_ops = nullptr;
  if (accumulate) {
    MMEMBED_DNNL_OK(dnnl_post_ops_create(&post_ops));
    MMEMBED_DNNL_OK(dnnl_post_ops_append_sum(post_ops, 1.0f));
    MMEMBED_DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, post_ops));
  }
  dnnl_primitive_desc_t pd = nullptr;
  const dnnl_status_t made = dnnl_primitive_desc_create(&pd, &desc, attr, cpu_engine(), nullptr);
  if (post_ops != nullptr) dnnl_post_ops_destroy(post_ops);
  dnnl_primitive_attr_destroy(attr);
  MMEMBED_CHECK(made == dnnl_success, Unsupported,
                "oneDNN has no bf16 matrix product for this CPU (status ", static_cast<int>(made),
                ")");
  Bf16Matmul m;
  const dnnl_status_t created = dnnl_primitive_create(&m.primitive, pd);
  dnnl_primitive_desc_destroy(pd);
  MMEMBED_DNNL_OK(created);
  MMEMBED_DNNL_OK(dnnl_memory_create(&m.src, &src_md, cpu_engine(), DNNL_MEMORY_NONE));
  MMEMBED_DNNL_OK(dnnl_memory_create(&m.weights, &weights_md, cpu_engine(), DNNL_MEMORY_NONE));
  MMEMBED_DNNL_OK(dnnl_memory_create(&m.dst, &dst_md, cpu_engine(), DNNL_MEMORY_NONE));
  return m;
}

void dnnl_gemm_bf16_call(std::int64_t M, std::int64_t N, std::int64_t K, const std::uint16_t* A,
                         std::int64_t lda, const std::uint16_t* B, std::int64_t ldb,
                         bool accumulate, float* C, std::int64_t ldc) {
  int want = t_serial ? 1 : g_threads.load(std::memory_order_relaxed);
  if (want > 0 && omp_get_max_threads() != want) omp_set_num_threads(want);
  thread_local Bf16Cache cache;
  if (cache.stream == nullptr) {
    MMEMBED_DNNL_OK(dnnl_stream_create(&cache.stream, cpu_engine(), dnnl_stream_default_flags));
  }
  if (cache.by_shape.size() > 512) cache.clear();  // shapes seen by a long-lived process
  const std::array<std::int64_t, 7> key = {M, N, K, lda, ldb, ldc, accumulate ? 1 : 0};
  auto it = cache.by_shape.find(key);
  if (it == cache.by_shape.end()) {
    it = cache.by_shape.emplace(key, make_bf16_matmul(M, N, K, lda, ldb, accumulate, ldc)).first;
  }
  Bf16Matmul& m = it->second;
  MMEMBED_DNNL_OK(dnnl_memory_set_data_handle(m.src, const_cast<std::uint16_t*>(A)));
  MMEMBED_DNNL_OK(dnnl_memory_set_data_handle(m.weights, const_cast<std::uint16_t*>(B)));
  MMEMBED_DNNL_OK(dnnl_memory_set_data_handle(m.dst, C));
  const dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, m.src}, {DNNL_ARG_WEIGHTS, m.weights}, {DNNL_ARG_DST, m.dst}};
  MMEMBED_DNNL_OK(dnnl_primitive_execute(m.primitive, cache.stream, 3, args));
  MMEMBED_DNNL_OK(dnnl_stream_wait(cache.stream));
}

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
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
  static const GemmBackend backend{"dnnl",           dnnl_sgemm_call,        dnnl_set_threads,
                                   dnnl_describe,    dnnl_set_thread_serial, dnnl_gemm_bf16_call,
                                   dnnl_gemm_s8_call};
  return backend;
}

}  // namespace mmembed::kernels
