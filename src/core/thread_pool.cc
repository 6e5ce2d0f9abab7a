#include "core/thread_pool.h"

#include <algorithm>

#include "core/check.h"

namespace mmembed {

namespace {
thread_local bool t_in_worker = false;
}

int ThreadPool::hardware_threads() noexcept {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void check_thread_count(int n, const char* what) {
  MMEMBED_CHECK(n >= 0 && n <= kMaxThreads, InvalidArgument, what, " ", n,
                " is out of range (0 to ", kMaxThreads, "; 0 = all hardware threads)");
}

ThreadPool::ThreadPool(int num_threads) {
  check_thread_count(num_threads);
  num_threads_ = num_threads > 0 ? num_threads : std::min(hardware_threads(), kMaxThreads);
  workers_.reserve(static_cast<std::size_t>(num_threads_ - 1));
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  t_in_worker = true;
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(std::int64_t, std::int64_t)>* job;
    std::int64_t n;
    int chunks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      chunks = job_chunks_;
    }
    if (index < chunks) {
      std::exception_ptr err;
      try {
        std::int64_t b, e;
        chunk_range(n, chunks, index, &b, &e);
        (*job)(b, e);
      } catch (...) {
        err = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(std::int64_t n, std::int64_t grain,
                              const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  std::int64_t max_chunks = (n + grain - 1) / grain;
  int chunks = static_cast<int>(std::min<std::int64_t>(num_threads_, max_chunks));
  if (chunks <= 1 || t_in_worker) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    pending_ = chunks - 1;
    error_ = nullptr;
    ++generation_;
  }
  work_cv_.notify_all();
  std::exception_ptr own_error;
  try {
    std::int64_t b, e;
    chunk_range(n, chunks, 0, &b, &e);
    bool was_worker = t_in_worker;
    t_in_worker = true;  // nested calls from this chunk run serially
    try {
      fn(b, e);
    } catch (...) {
      t_in_worker = was_worker;
      throw;
    }
    t_in_worker = was_worker;
  } catch (...) {
    own_error = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
  std::exception_ptr err = own_error ? own_error : error_;
  error_ = nullptr;
  lock.unlock();
  if (err) std::rethrow_exception(err);
}

}  // namespace mmembed
