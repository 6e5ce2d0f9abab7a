#include "hub/progress.h"

#include "core/check.h"
#include "core/log.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mmembed::hub {

ProgressDisplay progress_display(ProgressMode mode) {
  if (core::log_level() == core::LogLevel::kQuiet) return ProgressDisplay::kOff;  // --quiet wins
  if (mode == ProgressMode::kAlways) return ProgressDisplay::kBar;
  if (mode == ProgressMode::kNever) return ProgressDisplay::kOff;
  if (const char* v = std::getenv("MMEMBED_PROGRESS"); v && *v) {
    if (std::strcmp(v, "0") == 0) return ProgressDisplay::kOff;
    if (std::strcmp(v, "lines") == 0) return ProgressDisplay::kLines;
    return ProgressDisplay::kBar;
  }
  return ::isatty(STDERR_FILENO) == 1 ? ProgressDisplay::kBar : ProgressDisplay::kLines;
}

bool progress_enabled(ProgressMode mode) { return progress_display(mode) != ProgressDisplay::kOff; }

namespace {
// Seconds between two lines of the kLines display: $MMEMBED_PROGRESS_SECONDS (0 to 3600), else 10.
double lines_seconds() {
  static const double seconds = [] {
    const char* v = std::getenv("MMEMBED_PROGRESS_SECONDS");
    if (v == nullptr || *v == '\0') return 10.0;
    char* end = nullptr;
    const double s = std::strtod(v, &end);
    return end != v && *end == '\0' && s >= 0 && s <= 3600 ? s : 10.0;
  }();
  return seconds;
}

// "37.2 items/s", "1.50 items/s", "830 items/s".
std::string format_rate(double per_second, const std::string& items) {
  char buf[48];
  std::snprintf(buf, sizeof buf, per_second < 10 ? "%.2f" : per_second < 100 ? "%.1f" : "%.0f",
                per_second);
  return std::string(buf) + " " + items + "/s";
}
}  // namespace

ProgressMode parse_progress_mode(const std::string& name) {
  if (name == "auto") return ProgressMode::kAuto;
  if (name == "always") return ProgressMode::kAlways;
  if (name == "never") return ProgressMode::kNever;
  throw InvalidArgument(str_cat("--progress '", name, "' is not auto, always or never"));
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

ProgressBar::ProgressBar(std::string label, std::uint64_t total, Unit unit,
                         ProgressDisplay display, std::string items)
    : label_(std::move(label)),
      unit_(unit),
      display_(display),
      items_(std::move(items)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      created_(start_) {
  last_draw_ = start_;  // lines: the first one after the interval, not at once
}

ProgressBar::ProgressBar(std::string label, std::uint64_t total, Unit unit, bool enabled)
    : ProgressBar(std::move(label), total, unit,
                  enabled ? progress_display(ProgressMode::kAuto) : ProgressDisplay::kOff) {}

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

void ProgressBar::set_done(std::uint64_t done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = done;
  }
  maybe_draw(false);
}

void ProgressBar::set_stage(std::string label, std::uint64_t total, std::string items) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    label_ = std::move(label);
    total_ = total;
    items_ = std::move(items);
    done_ = failed_ = bytes_ = 0;
    start_ = std::chrono::steady_clock::now();
  }
  if (display_ == ProgressDisplay::kBar) maybe_draw(true);
}

void ProgressBar::tick() { maybe_draw(false); }

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
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = label_ + ": ";
  if (unit_ == Unit::kCount && total_ == 0 && done_ == 0) {
    return line + format_duration(elapsed);  // a stage without a count: its time so far
  }
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
    line += " " + items_;
  }
  if (fraction >= 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " %.0f%%", std::min(fraction, 1.0) * 100.0);
    line += pct;
  }
  if (unit_ == Unit::kCount) {
    if (failed_ > 0) line += " (" + std::to_string(failed_) + " failed)";
    line += ", " + format_rate(elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0, items_);
    if (bytes_ > 0) line += ", " + format_bytes(static_cast<double>(bytes_));
  }
  if (unit_ == Unit::kBytes || bytes_ > 0) {
    line += ", " + format_bytes(elapsed > 0 ? static_cast<double>(bytes_) / elapsed : 0.0) + "/s";
  }
  if (fraction > 0 && fraction < 1 && elapsed > 0) {
    line += ", ETA " + format_duration(elapsed * (1.0 - fraction) / fraction);
  } else if (finished_ || fraction >= 1) {
    line += ", " + format_duration(elapsed);
  }
  return line;
}

void ProgressBar::maybe_draw(bool force) {
  if (display_ == ProgressDisplay::kOff) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  const auto interval = display_ == ProgressDisplay::kBar
                            ? std::chrono::milliseconds(125)
                            : std::chrono::milliseconds(static_cast<std::int64_t>(lines_seconds() * 1000));
  if (!force && now - last_draw_ < interval) return;
  last_draw_ = now;
  const std::string line = render_locked();
  if (display_ == ProgressDisplay::kBar) {
    std::fprintf(stderr, "\r%-79s", line.c_str());
  } else {
    std::fprintf(stderr, "mmembed: %s\n", line.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
  }
  if (display_ == ProgressDisplay::kOff) return;
  // Lines: the last state when the work was long enough to be reported on the way (a job of a
  // few seconds ends with its own summary line instead).
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count();
  if (display_ == ProgressDisplay::kLines && elapsed < lines_seconds()) return;
  maybe_draw(true);
  if (display_ == ProgressDisplay::kBar) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
  }
}

}  // namespace mmembed::hub
