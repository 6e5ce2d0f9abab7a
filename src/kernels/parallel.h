// Threads used by the kernels: the kernels' task pool and the GEMM backend's own threads.
//
//   kernels::set_num_threads(2);   // --threads 2: two pool threads, GEMM library on two threads
//
// Row kernels split rows into contiguous chunks (core/thread_pool.h's chunk_range) and never
// reduce across chunks, so their results do not depend on the thread count. The pool's caller
// runs tasks itself and waits only for tasks another thread has started, so a worker that the
// OS has not scheduled (a machine busier than its cores) delays nothing; idle workers spin for
// about 100 microseconds, then sleep. Inside a task, sgemm runs on the calling thread alone.
#pragma once

#include <cstdint>
#include <functional>

namespace mmembed::kernels {

// n == 0 means all hardware threads (the default before any call); n < 0 or n > kMaxThreads
// (core/thread_pool.h) throws InvalidArgument. Sets the kernels' pool and the selected GEMM
// backend. Safe to call while kernels run on other threads: a running kernel
// finishes on the pool it started with.
void set_num_threads(int n);
int num_threads();

// Runs fn(begin, end) over [0, n) on the kernels' pool in contiguous chunks of at least `grain`
// items (serially when one chunk suffices). The split depends only on (n, grain, num_threads()).
void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn);

// Runs fn(i) once for every i in [0, n) on the kernels' threads, handing out the next index to
// whichever thread is free (dynamic scheduling: a thread the OS has descheduled, e.g. on a busy
// machine, does not hold the others up). Only for work whose results do not depend on which
// thread runs an index or in which order. Runs serially with one thread or when nested inside a
// parallel_for / parallel_tasks. The first exception thrown stops further indices and is
// rethrown.
void parallel_tasks(std::int64_t n, const std::function<void(std::int64_t)>& fn);

// True while the calling thread runs a parallel_for chunk or a parallel_tasks index (nested calls
// then run serially, and its sgemm calls on this thread alone).
bool in_parallel_task();

// Rows per chunk so that a chunk holds at least ~16K elements of `cols` columns: below that the
// cost of waking a thread exceeds the work.
inline std::int64_t row_grain(std::int64_t cols) {
  constexpr std::int64_t kMinElementsPerChunk = 16384;
  return cols >= kMinElementsPerChunk ? 1 : kMinElementsPerChunk / (cols > 0 ? cols : 1);
}

}  // namespace mmembed::kernels
