// A one-line progress bar on stderr: done/total, bytes, rate and ETA, redrawn at most ~8 times a
// second. Drawn only when enabled (by default: when stderr is a terminal); thread-safe.
//
//   hub::ProgressBar bar("images", items.size(), hub::ProgressBar::Unit::kCount);
//   bar.add_done(1); bar.add_bytes(n); ... bar.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace mmembed::hub {

enum class ProgressMode { kAuto, kAlways, kNever };

// True when a bar should be drawn: kAlways, or kAuto with stderr a terminal; the environment
// variable MMEMBED_PROGRESS=1/0 overrides kAuto; never at core::LogLevel::kQuiet.
bool progress_enabled(ProgressMode mode);

class ProgressBar {
 public:
  enum class Unit { kBytes, kCount };

  // total: expected bytes (kBytes) or items (kCount); 0 if unknown.
  ProgressBar(std::string label, std::uint64_t total, Unit unit, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void set_total(std::uint64_t total);
  // kBytes: set the byte count; kCount: bytes moved (for the rate display).
  void set_bytes(std::uint64_t bytes);
  void add_bytes(std::uint64_t bytes);
  void add_done(std::uint64_t items, std::uint64_t failed = 0);  // kCount only
  // Draws the final state and ends the line (idempotent).
  void finish();

  // The line as it would be drawn now (for tests).
  std::string render() const;

 private:
  void maybe_draw(bool force);
  std::string render_locked() const;

  std::string label_;
  Unit unit_;
  bool enabled_;
  std::uint64_t total_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t done_ = 0;
  std::uint64_t failed_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  mutable std::mutex mu_;
};

// "1.5 MB", "12 kB", "830 B" (SI units, like huggingface_hub's tqdm bars).
std::string format_bytes(double bytes);
// "1:02:03" or "02:03".
std::string format_duration(double seconds);

}  // namespace mmembed::hub
