#include <cairo-pdf.h>
#include <cairo.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "core/check.h"
#include "mmembed/plot.h"
#include "plot/canvas.h"
#include "plot/html.h"
#include "plot/layout.h"

namespace mmembed::plot {

Rgb palette_colour(std::size_t i) {
  // seaborn.color_palette("bright")
  static constexpr Rgb kBright[10] = {
      {0x02, 0x3e, 0xff}, {0xff, 0x7c, 0x00}, {0x1a, 0xc9, 0x38}, {0xe8, 0x00, 0x0b},
      {0x8b, 0x2b, 0xe2}, {0x9f, 0x48, 0x00}, {0xf1, 0x4c, 0xc1}, {0xa3, 0xa3, 0xa3},
      {0xff, 0xc4, 0x00}, {0x00, 0xd7, 0xff}};
  return kBright[i % 10];
}

Rgb category_colour(std::size_t i, std::size_t count) {
  if (count <= 10) return palette_colour(i);
  // Evenly spaced hues (HSV, s 0.8, v 0.9), starting at blue-ish as the bright palette does.
  const double h = std::fmod(0.62 + static_cast<double>(i) / count, 1.0) * 6, s = 0.8, v = 0.9;
  const int sector = static_cast<int>(h) % 6;
  const double f = h - std::floor(h), p = v * (1 - s), q = v * (1 - s * f),
               t = v * (1 - s * (1 - f));
  double r = 0, g = 0, b = 0;
  switch (sector) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
  auto byte = [](double x) { return static_cast<std::uint8_t>(std::lround(x * 255)); };
  return {byte(r), byte(g), byte(b)};
}

Format format_from_path(const std::string& path) {
  const std::size_t dot = path.find_last_of('.');
  const std::size_t slash = path.find_last_of('/');
  std::string ext;
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    ext = path.substr(dot + 1);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (ext == "png") return Format::Png;
  if (ext == "svg") return Format::Svg;
  if (ext == "pdf") return Format::Pdf;
  if (ext == "html" || ext == "htm") return Format::Html;
  throw InvalidArgument(str_cat(path, ": unknown plot format '", ext,
                                "' (expected .png, .svg, .pdf or .html)"));
}

const char* format_name(Format format) {
  switch (format) {
    case Format::Png: return "png";
    case Format::Svg: return "svg";
    case Format::Pdf: return "pdf";
    case Format::Html: return "html";
  }
  return "?";
}

Image make_thumbnail(const std::uint8_t* rgb, int width, int height, int max_side) {
  MMEMBED_CHECK(width > 0 && height > 0 && max_side > 0, InvalidArgument,
                "make_thumbnail: size ", width, "x", height, ", max side ", max_side);
  Image out;
  if (std::max(width, height) <= max_side) {
    out.width = width;
    out.height = height;
    out.rgb.assign(rgb, rgb + static_cast<std::size_t>(width) * height * 3);
    return out;
  }
  const double s = static_cast<double>(max_side) / std::max(width, height);
  out.width = std::max(1, static_cast<int>(std::lround(width * s)));
  out.height = std::max(1, static_cast<int>(std::lround(height * s)));
  // Box filter: each output pixel averages the source area it covers, partial pixels weighted.
  struct Tap {
    int index;
    double weight;
  };
  auto taps = [](int src, int dst) {
    std::vector<std::vector<Tap>> t(dst);
    const double ratio = static_cast<double>(src) / dst;
    for (int o = 0; o < dst; ++o) {
      const double a = o * ratio, b = (o + 1) * ratio;
      for (int i = static_cast<int>(a); i < src && i < b; ++i) {
        const double w = std::min<double>(i + 1, b) - std::max<double>(i, a);
        if (w > 1e-12) t[o].push_back({i, w / ratio});
      }
    }
    return t;
  };
  const auto tx = taps(width, out.width), ty = taps(height, out.height);
  out.rgb.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  std::vector<double> row(static_cast<std::size_t>(out.width) * 3);
  for (int oy = 0; oy < out.height; ++oy) {
    std::fill(row.begin(), row.end(), 0.0);
    for (const Tap& vy : ty[oy]) {
      const std::uint8_t* src = rgb + static_cast<std::size_t>(vy.index) * width * 3;
      for (int ox = 0; ox < out.width; ++ox) {
        for (const Tap& vx : tx[ox]) {
          const double w = vy.weight * vx.weight;
          for (int c = 0; c < 3; ++c) row[3 * ox + c] += w * src[3 * vx.index + c];
        }
      }
    }
    for (int i = 0; i < out.width * 3; ++i) {
      out.rgb[static_cast<std::size_t>(oy) * out.width * 3 + i] =
          static_cast<std::uint8_t>(std::clamp(std::lround(row[i]), 0L, 255L));
    }
  }
  return out;
}

namespace {

using detail::Anchor;
using detail::Box;
using detail::Canvas;
using detail::gray;
using detail::Layout;
using detail::measure_text;
using detail::rgba;

// Greedy text placement: each text takes the first of eight spots around its point (right, left,
// above, below, then the corners) that stays inside the axes and overlaps no earlier text, marker
// or thumbnail. A uniform grid keeps the overlap test local.
class Placer {
 public:
  explicit Placer(const Box& area) : area_(area) {}
  bool take(const Box& b) {
    if (b.x < area_.x || b.y < area_.y || b.x + b.w > area_.x + area_.w ||
        b.y + b.h > area_.y + area_.h) {
      return false;
    }
    const int x0 = cell(b.x), x1 = cell(b.x + b.w), y0 = cell(b.y), y1 = cell(b.y + b.h);
    for (int gx = x0; gx <= x1; ++gx) {
      for (int gy = y0; gy <= y1; ++gy) {
        auto it = grid_.find(key(gx, gy));
        if (it == grid_.end()) continue;
        for (std::size_t k : it->second) {
          if (boxes_[k].overlaps(b)) return false;
        }
      }
    }
    block(b);
    return true;
  }
  // Marks `b` as taken (markers and thumbnails, so that no text covers them).
  void block(const Box& b) {
    boxes_.push_back(b);
    const int x0 = cell(b.x), x1 = cell(b.x + b.w), y0 = cell(b.y), y1 = cell(b.y + b.h);
    for (int gx = x0; gx <= x1; ++gx) {
      for (int gy = y0; gy <= y1; ++gy) grid_[key(gx, gy)].push_back(boxes_.size() - 1);
    }
  }

 private:
  static int cell(double v) { return static_cast<int>(std::floor(v / 48.0)); }
  static std::int64_t key(int gx, int gy) {
    return (static_cast<std::int64_t>(gx) << 32) ^ static_cast<std::uint32_t>(gy);
  }
  Box area_;
  std::vector<Box> boxes_;
  std::unordered_map<std::int64_t, std::vector<std::size_t>> grid_;
};

// x of a centred text of width w, kept inside [margin, canvas_width - margin].
double centred_x(double centre, double w, double canvas_width, double margin) {
  return std::clamp(centre, margin + w / 2, std::max(margin + w / 2, canvas_width - margin - w / 2));
}

}  // namespace

void detail::draw_scatter(Canvas& c, const Layout& L, const ScatterData& d,
                          const ScatterOptions& o, RenderResult& result) {
  using namespace detail;
  const Rgba white = gray(1), text_col = gray(0.13), frame = gray(0.55), grid = gray(0.9);
  c.rect(0, 0, L.width, L.height, white, {}, 0);

  const Box& P = L.plot;
  for (double t : L.x.ticks) {
    const double cx = L.x.to_canvas(t);
    c.line(cx, P.y, cx, P.y + P.h, grid, 0.8);
  }
  for (double t : L.y.ticks) {
    const double cy = L.y.to_canvas(t);
    c.line(P.x, cy, P.x + P.w, cy, grid, 0.8);
  }

  // Points: markers first, then thumbnails (larger, so on top), each in data order.
  const std::size_t n = d.x.size();
  const double r = o.point_size / 2;
  const double edge = std::clamp(o.point_size * 0.08, 0.3, 1.0);
  auto has_thumb = [&](std::size_t i) { return !d.thumbnails.empty() && !d.thumbnails[i].empty(); };
  std::vector<Box> footprint(n);  // what each point covers, for the text placement
  c.clip_begin(P.x, P.y, P.w, P.h);
  for (std::size_t i = 0; i < n; ++i) {
    footprint[i] = {L.x.to_canvas(d.x[i]) - r, L.y.to_canvas(d.y[i]) - r, 2 * r, 2 * r};
    if (has_thumb(i)) continue;
    c.circle(L.x.to_canvas(d.x[i]), L.y.to_canvas(d.y[i]), r,
             rgba(category_colour(L.category_of[i], L.categories.size()), o.alpha), gray(1, o.alpha), edge,
             static_cast<std::int64_t>(i));
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!has_thumb(i)) continue;
    const Image& src = d.thumbnails[i];
    const Image im = make_thumbnail(src.rgb.data(), src.width, src.height, o.thumbnail_size);
    const double s = L.thumb / std::max(im.width, im.height);
    const double w = im.width * s, h = im.height * s;
    const double cx = L.x.to_canvas(d.x[i]), cy = L.y.to_canvas(d.y[i]);
    const double fw = 1.5;
    footprint[i] = {cx - w / 2 - fw, cy - h / 2 - fw, w + 2 * fw, h + 2 * fw};
    c.rect(footprint[i].x, footprint[i].y, footprint[i].w, footprint[i].h,
           rgba(category_colour(L.category_of[i], L.categories.size())), {}, 0);
    c.image(cx - w / 2, cy - h / 2, w, h, im, static_cast<std::int64_t>(i));
    ++result.thumbnails_drawn;
  }
  c.clip_end();

  // Frame, ticks and tick labels.
  c.rect(P.x, P.y, P.w, P.h, {0, 0, 0, 0}, frame, 0.8);
  const double tick_len = 4, tick_gap = 3;
  const TextSize tick = measure_text("0", kTickSize);
  for (std::size_t k = 0; k < L.x.ticks.size(); ++k) {
    const double cx = L.x.to_canvas(L.x.ticks[k]);
    c.line(cx, P.y + P.h, cx, P.y + P.h + tick_len, frame, 0.8);
    c.text(cx, P.y + P.h + tick_len + tick_gap + tick.ascent * 0.78, L.x_tick_text[k], kTickSize,
           text_col, Anchor::Middle);
  }
  for (std::size_t k = 0; k < L.y.ticks.size(); ++k) {
    const double cy = L.y.to_canvas(L.y.ticks[k]);
    c.line(P.x - tick_len, cy, P.x, cy, frame, 0.8);
    c.text(P.x - tick_len - tick_gap, cy + kTickSize * 0.36, L.y_tick_text[k], kTickSize,
           text_col, Anchor::End);
  }

  // Texts beside their points.
  if (!d.texts.empty()) {
    Placer placer(P);
    for (const Box& b : footprint) placer.block(b);
    const TextSize fm = measure_text("Hg", kPointTextSize);
    for (std::size_t i = 0; i < n; ++i) {
      if (d.texts[i].empty()) continue;
      const std::string t = ellipsize(sanitize_text(d.texts[i]), kPointTextSize, false, 0.3 * P.w);
      const double w = measure_text(t, kPointTextSize).width, h = fm.ascent + fm.descent;
      const Box& f = footprint[i];
      const double cx = f.x + f.w / 2, cy = f.y + f.h / 2, gap = 2;
      struct Spot {
        double x, y;  // top-left of the text box
      };
      const Spot spots[8] = {{f.x + f.w + gap, cy - h / 2},  {f.x - gap - w, cy - h / 2},
                             {cx - w / 2, f.y - gap - h},      {cx - w / 2, f.y + f.h + gap},
                             {f.x + f.w + gap, f.y - h},       {f.x + f.w + gap, f.y + f.h},
                             {f.x - gap - w, f.y - h},         {f.x - gap - w, f.y + f.h}};
      bool placed = false;
      for (const Spot& s : spots) {
        if (placer.take({s.x, s.y, w, h})) {
          c.text(s.x, s.y + fm.ascent, t, kPointTextSize, text_col, Anchor::Start);
          placed = true;
          break;
        }
      }
      if (!placed) ++result.texts_hidden;
    }
  }

  // Axis labels, title, subtitle.
  if (!o.x_label.empty()) {
    const std::string t = ellipsize(sanitize_text(o.x_label), kAxisLabelSize, false, P.w);
    c.text(P.x + P.w / 2, L.x_label_baseline, t, kAxisLabelSize, text_col, Anchor::Middle);
  }
  if (!o.y_label.empty()) {
    const std::string t = ellipsize(sanitize_text(o.y_label), kAxisLabelSize, false, P.h);
    c.text(L.y_label_center_x, P.y + P.h / 2, t, kAxisLabelSize, text_col, Anchor::Middle, false,
           true);
  }
  if (!o.title.empty()) {
    const std::string t = ellipsize(sanitize_text(o.title), kTitleSize, true, L.width - 16);
    const double w = measure_text(t, kTitleSize, true).width;
    c.text(centred_x(P.x + P.w / 2, w, L.width, 8), L.title_baseline, t, kTitleSize, text_col,
           Anchor::Middle, true);
  }
  if (!o.subtitle.empty()) {
    const std::string t = ellipsize(sanitize_text(o.subtitle), kSubtitleSize, false, L.width - 16);
    const double w = measure_text(t, kSubtitleSize).width;
    c.text(centred_x(P.x + P.w / 2, w, L.width, 8), L.subtitle_baseline, t, kSubtitleSize,
           gray(0.35), Anchor::Middle);
  }

  // Legend.
  if (L.show_legend) {
    const Box& B = L.legend;
    c.rect(B.x, B.y, B.w, B.h, white, gray(0.8), 0.8);
    const double row = kLegendSize * 1.55;
    double y = B.y + 6;
    if (!L.legend_title.empty()) {
      c.text(B.x + 8, y + row / 2 + kLegendSize * 0.36, L.legend_title, kLegendSize, text_col,
             Anchor::Start, true);
      y += row;
    }
    const double mr = std::clamp(r, 2.5, 5.0);
    for (const LegendEntry& e : L.legend_entries) {
      const double cy = y + row / 2;
      if (e.category >= 0) {
        c.circle(B.x + 8 + 5, cy, mr,
                 rgba(category_colour(e.category, L.categories.size()), std::max(o.alpha, 0.6)),
                 gray(1), edge, -1);
      }
      c.text(B.x + 8 + 10 + 6, cy + kLegendSize * 0.36, e.text, kLegendSize,
             e.category >= 0 ? text_col : gray(0.4), Anchor::Start);
      y += row;
    }
  }
}

namespace {

using detail::draw_scatter;

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void check_cairo(cairo_status_t st, const char* what) {
  MMEMBED_CHECK(st == CAIRO_STATUS_SUCCESS, InvalidArgument, "scatter plot: cairo ", what,
                " failed: ", cairo_status_to_string(st));
}

std::string render_png(const Layout& L, const ScatterData& d, const ScatterOptions& o,
                       RenderResult& result) {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, o.width, o.height);
  cairo_t* cr = cairo_create(surface);
  std::string out;
  try {
    cairo_scale(cr, L.scale, L.scale);
    draw_scatter(*detail::make_cairo_canvas(cr), L, d, o, result);
    check_cairo(cairo_status(cr), "drawing");
    cairo_surface_flush(surface);
    check_cairo(cairo_surface_write_to_png_stream(surface, append_to_string, &out), "PNG writing");
  } catch (...) {
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    throw;
  }
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  return out;
}

std::string render_pdf(const Layout& L, const ScatterData& d, const ScatterOptions& o,
                       RenderResult& result) {
  std::string out;
  cairo_surface_t* surface =
      cairo_pdf_surface_create_for_stream(append_to_string, &out, L.width, L.height);
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "mmembed");
  if (!o.title.empty()) {
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE,
                                   detail::sanitize_text(o.title).c_str());
  }
  cairo_t* cr = cairo_create(surface);
  try {
    draw_scatter(*detail::make_cairo_canvas(cr), L, d, o, result);
    check_cairo(cairo_status(cr), "drawing");
    cairo_show_page(cr);
  } catch (...) {
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    throw;
  }
  cairo_destroy(cr);
  cairo_surface_finish(surface);
  const cairo_status_t st = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  check_cairo(st, "PDF writing");
  return out;
}

}  // namespace

RenderResult render_scatter(const ScatterData& data, const ScatterOptions& options, Format format) {
  const Layout L = detail::compute_layout(data, options);
  RenderResult result;
  switch (format) {
    case Format::Png: result.bytes = render_png(L, data, options, result); break;
    case Format::Pdf: result.bytes = render_pdf(L, data, options, result); break;
    case Format::Svg: {
      detail::SvgCanvas svg(L.width, L.height, true);
      draw_scatter(svg, L, data, options, result);
      result.bytes = svg.finish();
      break;
    }
    case Format::Html: result.bytes = detail::render_html(L, data, options, result); break;
  }
  return result;
}

}  // namespace mmembed::plot
