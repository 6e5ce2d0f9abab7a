#include "kernels/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/gemm_backend.h"

namespace mmembed::kernels {
namespace {

// True on the pool's workers, and on a caller while it runs a job's tasks: a parallel_for /
// parallel_tasks issued there runs serially.
thread_local bool t_in_task = false;

// A job: tasks [0, n) claimed one at a time by whichever thread is free. Shared by the caller
// and the workers (a worker that wakes late may still hold it after the caller has returned; it
// then finds nothing to claim and never touches `body`).
struct Job {
  const std::function<void(std::int64_t)>* body = nullptr;
  std::int64_t n = 0;
  std::atomic<std::int64_t> next{0};  // next unclaimed task
  std::atomic<std::int64_t> done{0};  // tasks finished (or skipped after an error)
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::condition_variable finished;
  std::exception_ptr error;  // the first exception thrown by a task

  // Claims and runs tasks until none are left; returns after finishing the last task overall.
  void work() {
    for (;;) {
      const std::int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      if (!failed.load(std::memory_order_relaxed)) {
        try {
          (*body)(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!error) error = std::current_exception();
          failed.store(true, std::memory_order_relaxed);
        }
      }
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }
};

// sgemm calls from the calling thread run on it alone (inside a task) or on the configured
// threads (GemmBackend::set_thread_serial; backends without it are left alone).
void set_gemm_serial(bool serial) {
  const GemmBackend& backend = selected_gemm_backend();
  if (backend.set_thread_serial != nullptr) backend.set_thread_serial(serial);
}

// The kernels' threads. Unlike a pool that hands each thread a fixed share and waits for every
// thread, the caller claims tasks itself and waits only for tasks another thread has already
// started: on a machine busier than its cores, a worker the OS has not scheduled yet delays
// nothing (the caller simply runs its tasks). Idle workers spin briefly, then sleep on a
// condition variable: they never keep a core busy between calls.
class TaskPool {
 public:
  explicit TaskPool(int threads) : threads_(std::max(1, threads)) {
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ~TaskPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  int num_threads() const { return threads_; }

  // Runs body(i) for every i in [0, n); rethrows the first exception after all have finished.
  void run(std::int64_t n, const std::function<void(std::int64_t)>& body) {
    auto job = std::make_shared<Job>();
    job->body = &body;
    job->n = n;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    t_in_task = true;
    set_gemm_serial(true);
    job->work();
    set_gemm_serial(false);
    t_in_task = false;
    // Wait for the tasks other threads have claimed: spin a little, then sleep.
    for (int spin = 0; spin < kSpins && job->done.load(std::memory_order_acquire) < n; ++spin) {
      std::this_thread::yield();
    }
    if (job->done.load(std::memory_order_acquire) < n) {
      std::unique_lock<std::mutex> lock(job->mutex);
      job->finished.wait(lock, [&] { return job->done.load(std::memory_order_acquire) >= n; });
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (job_ == job) job_.reset();
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  static constexpr int kSpins = 64;  // yields while waiting for claimed tasks
  static constexpr std::chrono::microseconds kIdleSpin{100};

  void worker_loop() {
    t_in_task = true;
    set_gemm_serial(true);
    std::uint64_t seen = 0;
    for (;;) {
      // A short spin (about kIdleSpin) catches back-to-back calls (a transformer layer issues
      // many) without a sleep/wake round trip; then sleep until the next job.
      const auto spin_end = std::chrono::steady_clock::now() + kIdleSpin;
      for (int i = 1;; ++i) {
        if (generation_.load(std::memory_order_acquire) != seen || stop_.load()) break;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (i % 64 == 0 && std::chrono::steady_clock::now() >= spin_end) break;
      }
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] {
          return stop_.load() || generation_.load(std::memory_order_relaxed) != seen;
        });
        if (stop_.load()) return;
        seen = generation_.load(std::memory_order_relaxed);
        job = job_;
      }
      if (job) job->work();
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> generation_{0};
  std::shared_ptr<Job> job_;
  std::atomic<bool> stop_{false};
};

struct State {
  std::mutex mutex;
  std::shared_ptr<TaskPool> pool;  // null until first use
  std::mutex run_mutex;            // one job at a time on the pool: concurrent callers queue
};

State& state() {
  static State s;
  return s;
}

// Caller holds s.mutex.
void configure_locked(State& s, int n) {
  if (n <= 0) n = std::min(ThreadPool::hardware_threads(), kMaxThreads);
  s.pool = std::make_shared<TaskPool>(n);
  selected_gemm_backend().set_num_threads(n);
}

std::shared_ptr<TaskPool> current_pool() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.pool) configure_locked(s, 0);
  return s.pool;
}

// Runs the tasks on the pool, or serially when nested or when one thread is configured.
void run_tasks(std::int64_t n, const std::function<void(std::int64_t)>& body) {
  if (n <= 0) return;
  std::shared_ptr<TaskPool> pool;
  if (!t_in_task && n > 1) pool = current_pool();
  if (!pool || pool->num_threads() <= 1) {
    const bool was = t_in_task;
    t_in_task = true;  // nested calls from a task stay serial, as on the pool
    try {
      for (std::int64_t i = 0; i < n; ++i) body(i);
    } catch (...) {
      t_in_task = was;
      throw;
    }
    t_in_task = was;
    return;
  }
  std::lock_guard<std::mutex> lock(state().run_mutex);
  pool->run(n, body);
}

}  // namespace

void set_num_threads(int n) {
  check_thread_count(n);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  configure_locked(s, n);
}

int num_threads() { return current_pool()->num_threads(); }

bool in_parallel_task() { return t_in_task; }

void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  if (grain >= n || t_in_task) {  // one chunk, or nested: no pool
    fn(0, n);
    return;
  }
  // The split depends only on (n, grain, thread count); which thread runs a chunk does not
  // matter, so chunks are claimed like any task.
  grain = std::max<std::int64_t>(grain, 1);
  const int chunks =
      static_cast<int>(std::min<std::int64_t>(num_threads(), (n + grain - 1) / grain));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  run_tasks(chunks, [&](std::int64_t c) {
    std::int64_t b, e;
    chunk_range(n, chunks, static_cast<int>(c), &b, &e);
    fn(b, e);
  });
}

void parallel_tasks(std::int64_t n, const std::function<void(std::int64_t)>& fn) {
  run_tasks(n, fn);
}

}  // namespace mmembed::kernels
