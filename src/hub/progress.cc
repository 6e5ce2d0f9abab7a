#include "hub/progress.h"

#include "core/log.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mmembed::hub {

bool progress_enabled(ProgressMode mode) {
  if (core::log_level() == core::LogLevel::kQuiet) return false;  // --quiet wins
  if (mode == ProgressMode::kAlways) return true;
  if (mode == ProgressMode::kNever) return false;
  if (const char* v = std::getenv("MMEMBED_PROGRESS"); v && *v) return std::strcmp(v, "0") != 0;
  return ::isatty(STDERR_FILENO) == 1;
}

std::string format_bytes(double bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000.0 && u < 4) {
    bytes /= 1000.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%.0f %s", bytes, kUnits[u]);
  } else {
    std::snprintf(buf, sizeof buf, bytes < 10 ? "%.2f %s" : bytes < 100 ? "%.1f %s" : "%.0f %s",
                  bytes, kUnits[u]);
  }
  return buf;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, std::uint64_t total, Unit unit, bool enabled)
    : label_(std::move(label)),
      unit_(unit),
      enabled_(enabled),
      total_(total),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::set_total(std::uint64_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ = total;
}

void ProgressBar::set_bytes(std::uint64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_ = bytes;
  }
  maybe_draw(false);
}

void ProgressBar::add_bytes(std::uint64_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes_ += bytes;
  }
  maybe_draw(false);
}

void ProgressBar::add_done(std::uint64_t items, std::uint64_t failed) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ += items;
    failed_ += failed;
  }
  maybe_draw(false);
}

std::string ProgressBar::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  return render_locked();
}

std::string ProgressBar::render_locked() const {
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(bytes_) / elapsed : 0.0;
  std::string line = label_ + ": ";
  double fraction = -1;
  if (unit_ == Unit::kBytes) {
    line += format_bytes(static_cast<double>(bytes_));
    if (total_ > 0) {
      line += " / " + format_bytes(static_cast<double>(total_));
      fraction = static_cast<double>(bytes_) / static_cast<double>(total_);
    }
  } else {
    line += std::to_string(done_);
    if (total_ > 0) {
      line.append("/").append(std::to_string(total_));
      fraction = static_cast<double>(done_) / static_cast<double>(total_);
    }
    if (failed_ > 0) line += " (" + std::to_string(failed_) + " failed)";
    line += ", " + format_bytes(static_cast<double>(bytes_));
  }
  if (fraction >= 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " %.0f%%", std::min(fraction, 1.0) * 100.0);
    line = line + pct;
  }
  line += ", " + format_bytes(rate) + "/s";
  if (fraction > 0 && fraction < 1 && elapsed > 0) {
    line += ", ETA " + format_duration(elapsed * (1.0 - fraction) / fraction);
  } else if (finished_ || fraction >= 1) {
    line += ", " + format_duration(elapsed);
  }
  return line;
}

void ProgressBar::maybe_draw(bool force) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(125)) return;
  last_draw_ = now;
  std::string line = render_locked();
  std::fprintf(stderr, "\r%-79s", line.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
  }
  if (!enabled_) return;
  maybe_draw(true);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace mmembed::hub
