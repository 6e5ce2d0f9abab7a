#include "kernels/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>

#include "core/thread_pool.h"
#include "kernels/gemm_backend.h"

namespace mmembed::kernels {
namespace {

struct State {
  std::mutex mutex;
  std::shared_ptr<ThreadPool> pool;  // null until first use
};

State& state() {
  static State s;
  return s;
}

// Caller holds s.mutex.
void configure_locked(State& s, int n) {
  if (n <= 0) n = ThreadPool::hardware_threads();
  s.pool = std::make_shared<ThreadPool>(n);
  selected_gemm_backend().set_num_threads(n);
}

std::shared_ptr<ThreadPool> current_pool() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.pool) configure_locked(s, 0);
  return s.pool;
}

}  // namespace

void set_num_threads(int n) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  configure_locked(s, n);
}

int num_threads() { return current_pool()->num_threads(); }

namespace {

// A parallel_for handed to the GEMM library's threads (GemmBackend::parallel).
struct LibraryJob {
  std::int64_t n;
  int chunks;
  const std::function<void(std::int64_t, std::int64_t)>* fn;
  std::mutex mutex;
  std::exception_ptr error;  // the first exception thrown by a chunk
};

void run_library_chunk(void* context, int chunk) {
  LibraryJob& job = *static_cast<LibraryJob*>(context);
  try {
    std::int64_t b, e;
    chunk_range(job.n, job.chunks, chunk, &b, &e);
    (*job.fn)(b, e);
  } catch (...) {
    std::lock_guard<std::mutex> lock(job.mutex);
    if (!job.error) job.error = std::current_exception();
  }
}

}  // namespace

void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  if (grain >= n) {  // one chunk: skip the pool (and its lock) entirely
    fn(0, n);
    return;
  }
  std::shared_ptr<ThreadPool> pool = current_pool();
  const GemmBackend& backend = selected_gemm_backend();
  if (backend.parallel == nullptr) {
    pool->parallel_for(n, grain, fn);
    return;
  }
  // The same split as ThreadPool::parallel_for (it depends only on n, grain and the thread
  // count), run on the GEMM library's threads.
  grain = std::max<std::int64_t>(grain, 1);
  const int chunks =
      static_cast<int>(std::min<std::int64_t>(pool->num_threads(), (n + grain - 1) / grain));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  LibraryJob job{n, chunks, &fn, {}, {}};
  backend.parallel(chunks, run_library_chunk, &job);
  if (job.error) std::rethrow_exception(job.error);
}

namespace {

struct TaskJob {
  std::int64_t n;
  const std::function<void(std::int64_t)>* fn;
  std::atomic<std::int64_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
};

void run_tasks(TaskJob& job) {
  for (;;) {
    const std::int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.n) return;
    try {
      (*job.fn)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.mutex);
      if (!job.error) job.error = std::current_exception();
      job.next.store(job.n, std::memory_order_relaxed);  // hand out nothing more
      return;
    }
  }
}

void run_task_chunk(void* context, int /*chunk*/) { run_tasks(*static_cast<TaskJob*>(context)); }

}  // namespace

void parallel_tasks(std::int64_t n, const std::function<void(std::int64_t)>& fn) {
  if (n <= 0) return;
  std::shared_ptr<ThreadPool> pool = current_pool();
  const int threads = static_cast<int>(std::min<std::int64_t>(pool->num_threads(), n));
  if (threads <= 1) {
    for (std::int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  TaskJob job;
  job.n = n;
  job.fn = &fn;
  const GemmBackend& backend = selected_gemm_backend();
  if (backend.parallel != nullptr) {
    backend.parallel(threads, run_task_chunk, &job);
  } else {
    // One chunk per thread, each taking indices until none are left (nested: one chunk).
    pool->parallel_for(threads, 1, [&](std::int64_t, std::int64_t) { run_tasks(job); });
  }
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace mmembed::kernels
