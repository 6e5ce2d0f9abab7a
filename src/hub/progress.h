// Progress of long work on stderr, one display for all of it (embed, fetch, downloads, reduce):
//  - item work: "embed: 1024/2000 items 51%, 37.2 items/s, ETA 00:11" (+ bytes when the work
//    moves bytes, as fetch does: ", 12.3 MB, 1.50 MB/s");
//  - downloads: "model.safetensors: 250 MB / 1.00 GB 25%, 12.3 MB/s, ETA 01:01".
// On a terminal it is one line redrawn at most ~8 times a second; elsewhere (a log file, a
// pipe, CI) plain lines, one every 10 seconds (MMEMBED_PROGRESS_SECONDS) and one at the end of
// work that took longer than that; nothing under --quiet
// (core::LogLevel::kQuiet) or ProgressMode::kNever. Thread-safe.
//
//   hub::ProgressBar bar("images", items.size(), hub::ProgressBar::Unit::kCount,
//                        hub::progress_display(mode), "images");
//   bar.add_done(1); bar.add_bytes(n); ... bar.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace mmembed::hub {

enum class ProgressMode { kAuto, kAlways, kNever };
enum class ProgressDisplay { kOff, kBar, kLines };

// kOff under --quiet (core::LogLevel::kQuiet) or kNever; kBar for kAlways, or kAuto with stderr
// a terminal; kLines for kAuto otherwise. The environment variable MMEMBED_PROGRESS overrides
// kAuto: 0 = kOff, 1 = kBar, lines = kLines.
ProgressDisplay progress_display(ProgressMode mode);
// "auto", "always", "never" (the --progress option's values); InvalidArgument otherwise.
ProgressMode parse_progress_mode(const std::string& name);
// progress_display(mode) != kOff.
bool progress_enabled(ProgressMode mode);

class ProgressBar {
 public:
  enum class Unit { kBytes, kCount };

  // total: expected bytes (kBytes) or items (kCount); 0 if unknown. `items`: what kCount
  // counts ("items", "images", "epochs").
  ProgressBar(std::string label, std::uint64_t total, Unit unit, ProgressDisplay display,
              std::string items = "items");
  // enabled: progress_display(ProgressMode::kAuto), else kOff.
  ProgressBar(std::string label, std::uint64_t total, Unit unit, bool enabled);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void set_total(std::uint64_t total);
  // kCount: the number done so far (for work that reports a position, like epochs).
  void set_done(std::uint64_t done);
  // Another stage of the same work ("umap: knn" -> "umap: epochs"): a new label, total (0 if
  // none) and unit name; the count, rate and time restart. Drawn at once on a terminal.
  void set_stage(std::string label, std::uint64_t total, std::string items);
  // Redraws when due, for a stage that reports nothing for a while (call it from a timer).
  void tick();
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
  ProgressDisplay display_;
  std::string items_;
  std::uint64_t total_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t done_ = 0;
  std::uint64_t failed_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;    // of the stage
  std::chrono::steady_clock::time_point created_;  // of the work
  std::chrono::steady_clock::time_point last_draw_{};
  mutable std::mutex mu_;
};

// "1.5 MB", "12 kB", "830 B" (SI units, like huggingface_hub's tqdm bars).
std::string format_bytes(double bytes);
// "1:02:03" or "02:03".
std::string format_duration(double seconds);

}  // namespace mmembed::hub
