#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <stdexcept>
#include <vector>

#include "mmembed/error.h"
#include "test_support.h"

namespace mmembed {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (std::int64_t n : {0, 1, 2, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      pool.parallel_for(n, 1, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)]++;
      });
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<std::size_t>(i)], 1);
    }
  }
}

TEST(ThreadPool, ChunksAreDeterministicAndRespectGrain) {
  ThreadPool pool(4);
  std::mutex m;
  std::set<std::pair<std::int64_t, std::int64_t>> chunks;
  pool.parallel_for(10, 4, [&](std::int64_t b, std::int64_t e) {
    std::lock_guard<std::mutex> lock(m);
    chunks.insert({b, e});
  });
  // 10 items, grain 4 -> at most 3 chunks: [0,4) [4,7) [7,10)
  std::set<std::pair<std::int64_t, std::int64_t>> want = {{0, 4}, {4, 7}, {7, 10}};
  EXPECT_EQ(chunks, want);
}

TEST(ThreadPool, PropagatesExceptionsAndStaysUsable) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(30, 1,
                                 [&](std::int64_t b, std::int64_t) {
                                   if (b > 0) throw std::runtime_error("boom");
                                 }),
               std::runtime_error);
  std::atomic<std::int64_t> sum{0};
  pool.parallel_for(100, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(ThreadPool, NestedCallsRunSerially) {
  ThreadPool pool(2);
  std::atomic<int> total{0};
  pool.parallel_for(4, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      pool.parallel_for(5, 1, [&](std::int64_t b2, std::int64_t e2) { total += int(e2 - b2); });
    }
  });
  EXPECT_EQ(total.load(), 20);
}

TEST(ThreadPool, DefaultUsesHardwareThreads) {
  ThreadPool pool;
  EXPECT_EQ(pool.num_threads(), std::min(ThreadPool::hardware_threads(), kMaxThreads));
}

// Issue #18: --threads 100000 started ~32,000 threads before the process limit stopped it.
TEST(ThreadPool, ThreadCountIsBounded) {
  for (int n : {-1, kMaxThreads + 1, 100000}) {
    const std::string e = testing_support::error_of<InvalidArgument>([n] { ThreadPool pool(n); });
    EXPECT_NE(e.find(std::to_string(n) + " is out of range (0 to 1024"), std::string::npos) << e;
  }
  EXPECT_NO_THROW(check_thread_count(kMaxThreads));
  EXPECT_NO_THROW(check_thread_count(0));
}

}  // namespace
}  // namespace mmembed
