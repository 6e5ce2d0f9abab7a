// A fixed-size pool of worker threads and a deterministic parallel_for.
//
//   ThreadPool pool(4);                       // 4 threads in all: the caller + 3 workers
//   pool.parallel_for(n, 64, [&](std::int64_t begin, std::int64_t end) { ... });
//
// parallel_for splits [0, n) into at most num_threads() contiguous chunks of at least `grain`
// items; the split depends only on (n, grain, num_threads()), never on timing, so results that
// are reduced per chunk are reproducible. The calling thread runs the first chunk. A
// parallel_for issued from inside a worker (nested) runs serially on that thread. One
// parallel_for at a time per pool: concurrent callers are serialized. The first exception thrown
// by a chunk is rethrown in the caller after every chunk has finished.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mmembed {

// The most threads mmembed starts for one pool. A fixed number, not a multiple of the hardware
// threads, so that a command line means the same everywhere; 1024 is above the largest machines'
// thread counts (2 x 192-core CPUs with SMT have 768) and far below the process limits a typo
// such as --threads 100000 runs into (each thread also reserves a stack).
inline constexpr int kMaxThreads = 1024;

// InvalidArgument naming `what` unless 0 <= n <= kMaxThreads (0 = all hardware threads).
void check_thread_count(int n, const char* what = "thread count");

class ThreadPool {
 public:
  // num_threads 0 means all hardware threads; above kMaxThreads or negative: InvalidArgument.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const noexcept { return num_threads_; }

  void parallel_for(std::int64_t n, std::int64_t grain,
                    const std::function<void(std::int64_t, std::int64_t)>& fn);

  // Number of hardware threads (at least 1).
  static int hardware_threads() noexcept;

 private:
  void worker_loop(int index);

  int num_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serializes parallel_for calls

  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  const std::function<void(std::int64_t, std::int64_t)>* job_ = nullptr;
  std::int64_t job_n_ = 0;
  int job_chunks_ = 0;
  int pending_ = 0;
  std::exception_ptr error_;
};

// Splits [0, n) into `chunks` nearly equal contiguous ranges; returns the bounds of chunk `i`.
inline void chunk_range(std::int64_t n, int chunks, int i, std::int64_t* begin, std::int64_t* end) {
  std::int64_t base = n / chunks, extra = n % chunks;
  *begin = i * base + (i < extra ? i : extra);
  *end = *begin + base + (i < extra ? 1 : 0);
}

}  // namespace mmembed
