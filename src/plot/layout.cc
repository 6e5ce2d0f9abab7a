#include "plot/layout.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_map>

#include "core/check.h"

namespace mmembed::plot::detail {

double nice_step(double span, int target) {
  MMEMBED_ASSERT(span > 0 && target >= 1);
  constexpr double kMax = std::numeric_limits<double>::max();
  const double raw = std::clamp(span / target, kMinSpan, kMax);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double finite = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    const double step = m * mag;
    if (!std::isfinite(step)) return finite;  // 1e308: the largest nice step a double holds
    if (step >= raw * (1 - 1e-12)) return step;
    finite = step;
  }
  return finite;
}

double next_nice_step(double step) {
  const double mag = std::pow(10.0, std::floor(std::log10(step) + 1e-9));
  const double m = step / mag;
  return (m < 1.5 ? 2 : m < 3.5 ? 5 : 10) * mag;
}

std::vector<double> nice_ticks(double lo, double hi, int target, double* step_out) {
  const double step = nice_step(hi - lo, target);
  if (step_out) *step_out = step;
  return ticks_with_step(lo, hi, step);
}

std::vector<double> ticks_with_step(double lo, double hi, double step) {
  if (!(step > 0) || !std::isfinite(step)) return {};
  const double first = std::ceil(lo / step - 1e-9);
  const double last = std::floor(hi / step + 1e-9);
  // Also false for NaN; keeps the indices exact in a double and the list short.
  if (!(last - first < kMaxTicks) || !(std::fabs(first) < 0x1p52) || !(std::fabs(last) < 0x1p52))
    return {};
  std::vector<double> ticks;
  for (double i = first; i <= last; ++i) ticks.push_back(i * step);
  return ticks;
}

std::string format_tick(double value, double step) {
  if (value == 0 || std::fabs(value) < step * 1e-9) return "0";
  char buf[64];
  const double mag = std::fabs(value);
  if (mag >= 1e6 || step < 1e-4) {
    const int digits = static_cast<int>(std::floor(std::log10(mag)) -
                                        std::floor(std::log10(step) + 1e-9)) + 1;
    std::snprintf(buf, sizeof(buf), "%.*g", std::clamp(digits, 1, 17), value);
  } else {
    const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  }
  std::string s = buf;
  if (!s.empty() && s[0] == '-') s = "\u2212" + s.substr(1);
  return s;
}

std::string sanitize_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  auto cont = [&](std::size_t i) { return i < n && (s[i] & 0xC0) == 0x80; };
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = s[i];
    if (c < 0x80) {
      if (c == '\t') out += ' ';
      else if (c >= 0x20 && c != 0x7F) out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::size_t len = 0;
    bool ok = false;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      ok = cont(i + 1);
      if (ok && c == 0xC2 && s[i + 1] < 0xA0) {  // U+0080..U+009F: C1 controls, dropped
        i += 2;
        continue;
      }
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      ok = i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi && cont(i + 2);
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      ok = i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi && cont(i + 2) && cont(i + 3);
    }
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\uFFFD";
      ++i;
    }
  }
  return out;
}

namespace {

// One measuring context per thread: a 1x1 image surface is enough for text extents.
struct Measurer {
  cairo_surface_t* surface = nullptr;
  cairo_t* cr = nullptr;
  Measurer() {
    surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    cr = cairo_create(surface);
    cairo_font_options_t* fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
  }
  ~Measurer() {
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
  }
  Measurer(const Measurer&) = delete;
  Measurer& operator=(const Measurer&) = delete;
};

}  // namespace

TextSize measure_text(const std::string& text, double size, bool bold) {
  thread_local Measurer m;
  cairo_select_font_face(m.cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(m.cr, size);
  cairo_font_extents_t fe;
  cairo_font_extents(m.cr, &fe);
  cairo_text_extents_t te;
  cairo_text_extents(m.cr, text.c_str(), &te);
  MMEMBED_ASSERT(cairo_status(m.cr) == CAIRO_STATUS_SUCCESS);
  return {te.x_advance, fe.ascent, fe.descent};
}

std::string ellipsize(const std::string& text, double size, bool bold, double max_width) {
  if (measure_text(text, size, bold).width <= max_width) return text;
  std::string s = text;
  while (!s.empty()) {
    s.pop_back();
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
    if (measure_text(s + "\u2026", size, bold).width <= max_width) break;
  }
  return s + "\u2026";
}

std::string base64(std::string_view bytes) {
  static const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16 |
                            static_cast<std::uint8_t>(bytes[i + 1]) << 8 |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

void validate(const ScatterData& d, const ScatterOptions& o) {
  const std::size_t n = d.x.size();
  MMEMBED_CHECK(n > 0, InvalidArgument, "scatter plot: no points to plot");
  MMEMBED_CHECK(d.y.size() == n, InvalidArgument, "scatter plot: ", n, " x values but ",
                d.y.size(), " y values");
  for (std::size_t i = 0; i < n; ++i) {
    MMEMBED_CHECK(std::isfinite(d.x[i]), InvalidArgument, "scatter plot: x[", i, "] is ", d.x[i],
                  "; coordinates must be finite");
    MMEMBED_CHECK(std::isfinite(d.y[i]), InvalidArgument, "scatter plot: y[", i, "] is ", d.y[i],
                  "; coordinates must be finite");
  }
  auto per_point = [n](std::size_t size, const char* what) {
    MMEMBED_CHECK(size == 0 || size == n, InvalidArgument, "scatter plot: ", what, " has ", size,
                  " entries for ", n, " points (give none or one per point)");
  };
  per_point(d.categories.size(), "categories");
  per_point(d.texts.size(), "texts");
  per_point(d.captions.size(), "captions");
  per_point(d.ids.size(), "ids");
  per_point(d.thumbnails.size(), "thumbnails");
  for (std::size_t i = 0; i < d.thumbnails.size(); ++i) {
    const Image& im = d.thumbnails[i];
    if (im.empty()) continue;
    const std::size_t want = static_cast<std::size_t>(im.width) * im.height * 3;
    MMEMBED_CHECK(im.rgb.size() == want, InvalidArgument, "scatter plot: thumbnails[", i, "] has ",
                  im.rgb.size(), " bytes for ", im.width, "x", im.height, " RGB (expected ", want,
                  ")");
  }
  MMEMBED_CHECK(o.width >= 64 && o.width <= 16384 && o.height >= 64 && o.height <= 16384,
                InvalidArgument, "scatter plot: size ", o.width, "x", o.height,
                " px is outside 64..16384");
  MMEMBED_CHECK(o.dpi >= 10 && o.dpi <= 1200, InvalidArgument, "scatter plot: dpi ", o.dpi,
                " is outside 10..1200");
  MMEMBED_CHECK(std::isfinite(o.point_size) && o.point_size > 0 && o.point_size <= 200,
                InvalidArgument, "scatter plot: point size ", o.point_size,
                " is outside (0, 200] points");
  MMEMBED_CHECK(o.alpha >= 0 && o.alpha <= 1, InvalidArgument, "scatter plot: alpha ", o.alpha,
                " is outside [0, 1]");
  MMEMBED_CHECK(o.thumbnail_size >= 4 && o.thumbnail_size <= 1024, InvalidArgument,
                "scatter plot: thumbnail size ", o.thumbnail_size, " is outside 4..1024 px");
  MMEMBED_CHECK(o.hover_thumbnail_size >= 16 && o.hover_thumbnail_size <= 1024, InvalidArgument,
                "scatter plot: hover thumbnail size ", o.hover_thumbnail_size,
                " is outside 16..1024 px");
}

// Data limits so that [min, max] lands `inset` points inside a `length`-point axis. Any finite
// data: limits beyond +-DBL_MAX are clamped to it (the extreme points then sit nearer the
// frame than `inset`), and a range more than DBL_MAX wide is handled through its halves.
void fit_axis(Axis& a, const std::vector<double>& v, double c0, double c1, double inset,
              int tick_target) {
  auto clamp_finite = [](double x) {
    return std::clamp(x, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max());
  };
  double lo = *std::min_element(v.begin(), v.end());
  double hi = *std::max_element(v.begin(), v.end());
  // All equal (or within 1e-12 of their magnitude, or kMinSpan): a range around them. The test
  // is relative to the data's own magnitude, so data that varies only by 1e-13 near 0 still
  // spreads over the axis.
  const double mag = std::max(std::fabs(lo), std::fabs(hi));
  if (hi * 0.5 - lo * 0.5 <= std::max(0.5e-12 * mag, 0.5 * kMinSpan)) {
    const double half = mag == 0 ? 0.5 : std::max(mag * 0.05, kMinSpan);
    lo = clamp_finite(lo - half);
    hi = clamp_finite(hi + half);
  }
  const double length = std::fabs(c1 - c0);
  inset = std::min(inset, 0.3 * length);
  const double frac = inset / (length - 2 * inset);
  if (std::isfinite(hi - lo)) {
    const double pad = (hi - lo) * frac;
    a.lo = clamp_finite(lo - pad);
    a.hi = clamp_finite(hi + pad);
  } else {
    const double half_pad = (hi * 0.5 - lo * 0.5) * frac;
    a.lo = clamp_finite(2 * (lo * 0.5 - half_pad));
    a.hi = clamp_finite(2 * (hi * 0.5 + half_pad));
  }
  a.c0 = c0;
  a.c1 = c1;
  a.ticks = nice_ticks(a.lo, a.hi, tick_target, &a.step);
  // A finer step (5 -> 2 -> 1 -> 0.5) until two ticks show. The range is at least kMinSpan
  // and 1e-12 of its magnitude, so this ends after a few steps; the bound is a guard.
  for (int k = 0; a.ticks.size() < 2 && k < 64; ++k) {
    const double mag10 = std::pow(10.0, std::floor(std::log10(a.step) + 1e-9));
    const double m = a.step / mag10;
    a.step = (m > 3.5 ? 2 : m > 1.5 ? 1 : 0.5) * mag10;
    a.ticks = ticks_with_step(a.lo, a.hi, a.step);
  }
}

}  // namespace

Layout compute_layout(const ScatterData& d, const ScatterOptions& o) {
  validate(d, o);
  Layout L;
  L.scale = o.dpi / 72.0;
  L.width = o.width / L.scale;
  L.height = o.height / L.scale;
  const std::size_t n = d.x.size();

  L.category_of.assign(n, 0);
  if (!d.categories.empty()) {
    std::unordered_map<std::string, int> index;
    for (std::size_t i = 0; i < n; ++i) {
      auto [it, added] = index.emplace(d.categories[i], static_cast<int>(L.categories.size()));
      if (added) L.categories.push_back(sanitize_text(d.categories[i]));
      L.category_of[i] = it->second;
    }
  }
  bool any_thumb = false;
  for (const Image& im : d.thumbnails) any_thumb = any_thumb || !im.empty();
  L.thumb = any_thumb ? o.thumbnail_size / L.scale : 0;

  const double pad = 8;
  double top = pad;
  if (!o.title.empty()) {
    const TextSize t = measure_text("Hg", kTitleSize, true);
    L.title_baseline = top + t.ascent;
    top += t.ascent + t.descent + 2;
  }
  if (!o.subtitle.empty()) {
    const TextSize t = measure_text("Hg", kSubtitleSize);
    L.subtitle_baseline = top + t.ascent;
    top += t.ascent + t.descent;
  }
  top += 8;

  const TextSize tick = measure_text("0", kTickSize);
  const double tick_len = 4, tick_gap = 3;
  double bottom = pad + tick.ascent + tick_gap + tick_len;
  if (!o.x_label.empty()) {
    const TextSize t = measure_text("Hg", kAxisLabelSize);
    L.x_label_baseline = L.height - pad - t.descent;
    bottom += t.ascent + t.descent + 4;
  }

  // Legend: outside the axes on the right, top-aligned; as many rows as fit.
  double right = pad + 12;
  L.show_legend = o.legend && !L.categories.empty();
  if (L.show_legend) {
    const double row = kLegendSize * 1.55;
    L.legend_title = ellipsize(sanitize_text(o.legend_title), kLegendSize, true, 0.28 * L.width);
    const double avail = L.height - top - pad - 12 - (L.legend_title.empty() ? 0 : row);
    const std::size_t fit = static_cast<std::size_t>(std::max(1.0, std::floor(avail / row)));
    const std::size_t shown = L.categories.size() <= fit ? L.categories.size() : fit - 1;
    double text_w = L.legend_title.empty() ? 0 : measure_text(L.legend_title, kLegendSize, true).width;
    for (std::size_t c = 0; c < shown; ++c) {
      LegendEntry e{ellipsize(L.categories[c], kLegendSize, false, 0.25 * L.width),
                    static_cast<int>(c)};
      text_w = std::max(text_w, measure_text(e.text, kLegendSize).width);
      L.legend_entries.push_back(std::move(e));
    }
    if (shown < L.categories.size()) {
      LegendEntry e{str_cat("\u2026 and ", L.categories.size() - shown, " more"), -1};
      text_w = std::max(text_w, measure_text(e.text, kLegendSize).width);
      L.legend_entries.push_back(std::move(e));
    }
    const double rows = static_cast<double>(L.legend_entries.size()) +
                        (L.legend_title.empty() ? 0 : 1);
    L.legend.w = 8 + 10 + 6 + text_w + 8;
    L.legend.h = 6 + rows * row + 4;
    right = pad + L.legend.w + 12;
  }

  L.plot.y = top;
  L.plot.h = L.height - top - bottom;
  MMEMBED_CHECK(L.plot.h >= 40, InvalidArgument, "scatter plot: ", o.width, "x", o.height,
                " px at ", o.dpi, " dpi leaves no room for the axes; make it larger");
  const double inset_base = std::max(o.point_size / 2 + 2, L.thumb / 2 + 2);
  fit_axis(L.y, d.y, L.plot.y + L.plot.h, L.plot.y, std::max(0.05 * L.plot.h, inset_base),
           std::clamp(static_cast<int>(L.plot.h / 40), 3, 10));
  double y_tick_w = 0;
  for (double v : L.y.ticks) {
    L.y_tick_text.push_back(format_tick(v, L.y.step));
    y_tick_w = std::max(y_tick_w, measure_text(L.y_tick_text.back(), kTickSize).width);
  }
  double left = pad + y_tick_w + tick_gap + tick_len;
  if (!o.y_label.empty()) {
    const TextSize t = measure_text("Hg", kAxisLabelSize);
    L.y_label_center_x = pad + t.ascent;
    left += t.ascent + t.descent + 4;
  }
  L.plot.x = left;
  L.plot.w = L.width - left - right;
  MMEMBED_CHECK(L.plot.w >= 40, InvalidArgument, "scatter plot: ", o.width, "x", o.height,
                " px at ", o.dpi, " dpi leaves no room for the axes; make it wider");
  fit_axis(L.x, d.x, L.plot.x, L.plot.x + L.plot.w, std::max(0.05 * L.plot.w, inset_base),
           std::clamp(static_cast<int>(L.plot.w / 50), 3, 10));
  // Coarser x steps (1, 2, 5 x 10^k in turn) while the labels would touch, keeping >= 2 ticks.
  auto label_x = [&] {
    L.x_tick_text.clear();
    double widest = 0;
    for (double v : L.x.ticks) {
      L.x_tick_text.push_back(format_tick(v, L.x.step));
      widest = std::max(widest, measure_text(L.x_tick_text.back(), kTickSize).width);
    }
    return widest;
  };
  while (label_x() + 8 > L.plot.w * L.x.length_fraction(L.x.step)) {
    const double step = next_nice_step(L.x.step);
    std::vector<double> ticks = ticks_with_step(L.x.lo, L.x.hi, step);
    if (ticks.size() < 2) break;
    L.x.step = step;
    L.x.ticks = std::move(ticks);
  }
  if (L.show_legend) {
    L.legend.x = L.plot.x + L.plot.w + 12;
    L.legend.y = L.plot.y;
  }
  return L;
}

}  // namespace mmembed::plot::detail

// fontconfig (under cairo's font API) keeps its configuration in allocations that LeakSanitizer
// reports at exit; they are fontconfig's, not ours (Chromium suppresses them the same way).
// Linked into every binary that uses the plot layer, since layout.cc always is.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif
