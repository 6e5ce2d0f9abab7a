// Helpers shared by the one-case-per-process end-to-end benchmarks (bench_bridgetower,
// bench_models): wall and CPU clocks, the median of the timed calls, peak RSS, the JSON list of
// times, a model folder's name.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace mmembed::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// User + system CPU seconds of this process so far (all threads).
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * t.tv_usec; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// This process's peak resident set size (ru_maxrss) in MiB.
inline double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  if (n == 0) return 0.0;
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// "0.123456, 0.234567": the body of a JSON array of the times.
inline std::string json_list(const std::vector<double>& v) {
  std::string list;
  for (double t : v) list += (list.empty() ? "" : ", ") + std::to_string(t);
  return list;
}

// The last component of a folder path ("a/b/model/" -> "model").
inline std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace mmembed::bench
