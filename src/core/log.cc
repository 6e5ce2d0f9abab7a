#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace mmembed::core {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kNormal};
std::mutex g_mu;

void print(const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "mmembed: %s\n", message.c_str());
  std::fflush(stderr);
}

}  // namespace

void set_log_level(LogLevel level) { g_level.store(level); }
LogLevel log_level() { return g_level.load(); }

void info(const std::string& message) {
  if (log_level() != LogLevel::kQuiet) print(message);
}

void detail(const std::string& message) {
  if (log_level() == LogLevel::kVerbose) print(message);
}

}  // namespace mmembed::core
