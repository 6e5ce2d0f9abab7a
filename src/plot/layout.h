// Internals of the scatter plot: tick choice, number formatting, text clean-up, text measurement
// and the layout (where the axes, labels and legend go, and how data maps to the canvas).
// Canvas units are points (1/72 inch); the PNG device has `scale` = dpi / 72 pixels per point.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mmembed/plot.h"

namespace mmembed::plot::detail {

// Axis ranges narrower than this (in data units) are widened to it: below it the steps of
// 10^k would be subnormal and inexact. Points closer together than this coincide in the plot.
inline constexpr double kMinSpan = 1e-300;

// The smallest step of the form {1, 2, 5} x 10^k that divides `span` into at most `target`
// intervals. span > 0 (+inf allowed: a span over DBL_MAX), target >= 1. Steps stay within
// [kMinSpan, DBL_MAX]: where the wanted step is larger than DBL_MAX, the largest finite one
// (1e308) is taken and the span gets more than `target` intervals.
double nice_step(double span, int target);

// The next coarser nice step: 1 -> 2 -> 5 -> 10 (x 10^k); +inf past 1e308.
double next_nice_step(double step);

// The multiples of nice_step(hi - lo, target) inside [lo, hi] (with a tolerance of 1e-9 steps);
// hi - lo may exceed DBL_MAX. No ticks (empty) for a step that is not finite and positive, or
// one that would give more than kMaxTicks of them.
std::vector<double> nice_ticks(double lo, double hi, int target, double* step_out = nullptr);
std::vector<double> ticks_with_step(double lo, double hi, double step);
inline constexpr int kMaxTicks = 1000;

// A tick value with as many decimals as the step needs; "-" as U+2212 (as matplotlib), no "-0".
// Very large or small magnitudes use scientific notation ("1e+07").
std::string format_tick(double value, double step);

// Valid UTF-8 without control characters: invalid sequences become U+FFFD, C0 controls and
// DEL are dropped (tab becomes a space).
std::string sanitize_text(std::string_view text);

// `text` shortened with a trailing ellipsis so that its width at `size` is at most max_width.
std::string ellipsize(const std::string& text, double size, bool bold, double max_width);

std::string base64(std::string_view bytes);

// Text metrics of DejaVu Sans through cairo's font API (hinting of metrics off, so widths
// scale exactly with the size and match every output).
struct TextSize {
  double width = 0, ascent = 0, descent = 0;
};
TextSize measure_text(const std::string& text, double size, bool bold = false);

inline constexpr const char* kFontFamily = "DejaVu Sans";

// Font sizes in points.
inline constexpr double kTitleSize = 13.0;
inline constexpr double kSubtitleSize = 9.0;
inline constexpr double kAxisLabelSize = 10.5;
inline constexpr double kTickSize = 9.0;
inline constexpr double kLegendSize = 9.0;
inline constexpr double kPointTextSize = 7.5;

struct Axis {
  double lo = 0, hi = 1;    // data limits
  double c0 = 0, c1 = 1;    // canvas coordinates of lo and hi (for y, c0 is the bottom)
  double step = 1;
  std::vector<double> ticks;
  // (v - lo) / (hi - lo): limits of opposite signs may be more than DBL_MAX apart, and then the
  // halves are subtracted instead (exact for normal numbers, so the same ratio).
  double fraction(double v) const {
    const double span = hi - lo;
    if (std::isfinite(span)) return (v - lo) / span;
    return (v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5);
  }
  // What a data distance `d` (>= 0) is as a fraction of the axis.
  double length_fraction(double d) const {
    const double span = hi - lo;
    if (std::isfinite(span)) return d / span;
    return (d * 0.5) / (hi * 0.5 - lo * 0.5);
  }
  double to_canvas(double v) const { return c0 + fraction(v) * (c1 - c0); }
};

struct Box {
  double x = 0, y = 0, w = 0, h = 0;
  bool overlaps(const Box& o) const {
    return x < o.x + o.w && o.x < x + w && y < o.y + o.h && o.y < y + h;
  }
};

struct LegendEntry {
  std::string text;  // already ellipsized
  int category = -1; // -1: the "... and N more" line
};

struct Layout {
  double width = 0, height = 0;  // canvas size in points
  double scale = 1;              // PNG pixels per point
  Box plot;                      // the axes frame
  Axis x, y;
  double thumb = 0;              // thumbnail side in points (0: no thumbnails)
  std::vector<std::string> categories;   // distinct, in order of first appearance
  std::vector<int> category_of;          // per point; 0 when there are no categories
  bool show_legend = false;
  Box legend;
  std::string legend_title;
  std::vector<LegendEntry> legend_entries;
  double title_baseline = 0, subtitle_baseline = 0;
  double x_label_baseline = 0, y_label_center_x = 0;
  std::vector<std::string> x_tick_text, y_tick_text;
};

// Validates `data` and `options` (InvalidArgument naming the field) and lays the plot out.
Layout compute_layout(const ScatterData& data, const ScatterOptions& options);

}  // namespace mmembed::plot::detail
