#include "kernels/parallel.h"

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

void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& fn) {
  if (n <= 0) return;
  if (grain >= n) {  // one chunk: skip the pool (and its lock) entirely
    fn(0, n);
    return;
  }
  current_pool()->parallel_for(n, grain, fn);
}

}  // namespace mmembed::kernels
