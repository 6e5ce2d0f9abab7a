// Scatter plots: tick choice and labels (hand-computed values), the palette (seaborn's "bright"
// hex codes), data -> canvas mapping, and each output read back independently: the PNG decoded
// by cairo's PNG reader and probed at the mapped points, the SVG's elements counted, the PDF's
// xref located through startxref. The HTML map has its own tests (html_test.cc).
#include <cairo.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mmembed/error.h"
#include "mmembed/plot.h"
#include "plot/canvas.h"
#include "plot/layout.h"
#include "test_support.h"
#include "vision/decode.h"

namespace mmembed::plot {
namespace {

using testing_support::error_of;

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(NiceTicks, StepIsOneTwoOrFiveTimesAPowerOfTen) {
  EXPECT_DOUBLE_EQ(detail::nice_step(1.0, 5), 0.2);
  EXPECT_DOUBLE_EQ(detail::nice_step(0.73, 5), 0.2);    // raw 0.146
  EXPECT_DOUBLE_EQ(detail::nice_step(97, 5), 20);       // raw 19.4
  EXPECT_DOUBLE_EQ(detail::nice_step(10, 5), 2);        // raw exactly 2
  EXPECT_DOUBLE_EQ(detail::nice_step(1000, 4), 500);    // raw 250
  EXPECT_DOUBLE_EQ(detail::nice_step(3e-5, 3), 1e-5);   // raw 1e-5
  EXPECT_DOUBLE_EQ(detail::nice_step(7, 1), 10);        // raw 7
  EXPECT_DOUBLE_EQ(detail::nice_step(0.0301, 3), 0.02);  // raw 0.01003
}

TEST(NiceTicks, NextCoarserStep) {
  EXPECT_DOUBLE_EQ(detail::next_nice_step(1), 2);
  EXPECT_DOUBLE_EQ(detail::next_nice_step(2), 5);
  EXPECT_DOUBLE_EQ(detail::next_nice_step(5), 10);
  EXPECT_DOUBLE_EQ(detail::next_nice_step(0.05), 0.1);
  EXPECT_DOUBLE_EQ(detail::next_nice_step(20000), 50000);
}

TEST(NiceTicks, MultiplesOfTheStepInsideTheRange) {
  double step = 0;
  std::vector<double> t = detail::nice_ticks(0.03, 0.97, 5, &step);
  EXPECT_DOUBLE_EQ(step, 0.2);
  ASSERT_EQ(t.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(t[i], 0.2 * (i + 1), 1e-15);
  t = detail::nice_ticks(-0.35, 1.27, 5, &step);  // raw 0.324 -> 0.5
  EXPECT_EQ(t, (std::vector<double>{0, 0.5, 1.0}));
  t = detail::nice_ticks(-103, 47, 6, &step);  // raw 25 -> 50
  EXPECT_EQ(t, (std::vector<double>{-100, -50, 0}));
  t = detail::nice_ticks(0, 10, 5);  // the ends are ticks
  EXPECT_EQ(t, (std::vector<double>{0, 2, 4, 6, 8, 10}));
}

TEST(NiceTicks, Labels) {
  EXPECT_EQ(detail::format_tick(0.4, 0.2), "0.4");
  EXPECT_EQ(detail::format_tick(0.30000000000000004, 0.1), "0.3");
  EXPECT_EQ(detail::format_tick(-1.5, 0.5), "\u22121.5");
  EXPECT_EQ(detail::format_tick(20, 20), "20");
  EXPECT_EQ(detail::format_tick(-100, 50), "\u2212100");
  EXPECT_EQ(detail::format_tick(1e-17, 0.2), "0");
  EXPECT_EQ(detail::format_tick(-0.0, 0.5), "0");
  EXPECT_EQ(detail::format_tick(0.05, 0.05), "0.05");
  EXPECT_EQ(detail::format_tick(2e6, 1e6), "2e+06");
  EXPECT_EQ(detail::format_tick(2.5e6, 5e5), "2.5e+06");
  EXPECT_EQ(detail::format_tick(2e-5, 1e-5), "2e-05");
}

TEST(Palette, SeabornBright) {
  const char* hex[10] = {"023eff", "ff7c00", "1ac938", "e8000b", "8b2be2",
                         "9f4800", "f14cc1", "a3a3a3", "ffc400", "00d7ff"};
  for (int i = 0; i < 10; ++i) {
    const unsigned v = static_cast<unsigned>(std::stoul(hex[i], nullptr, 16));
    const Rgb c = palette_colour(i);
    EXPECT_EQ(c, (Rgb{static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
                      static_cast<std::uint8_t>(v)}))
        << i;
  }
  EXPECT_EQ(palette_colour(10), palette_colour(0));
  EXPECT_EQ(palette_colour(23), palette_colour(3));
  EXPECT_EQ(category_colour(9, 10), palette_colour(9));
  // More than 10 categories: all different (HSV hues at s 0.8, v 0.9: max channel 230).
  for (std::size_t n : {11u, 12u, 40u}) {
    for (std::size_t i = 0; i < n; ++i) {
      const Rgb a = category_colour(i, n);
      EXPECT_EQ(std::max({a.r, a.g, a.b}), 230) << i;
      for (std::size_t j = 0; j < i; ++j) EXPECT_FALSE(a == category_colour(j, n)) << i << " " << j;
    }
  }
}

TEST(Layout, WideTickLabelsGetACoarserStep) {
  ScatterData d;
  d.x = {-43000, 43000, 0};
  d.y = {0, 1, 2};
  d.categories = {"a rather long category name, widening the legend", "b", "c"};
  ScatterOptions o;
  o.width = 600;
  const detail::Layout L = detail::compute_layout(d, o);
  ASSERT_GE(L.x.ticks.size(), 2u);
  double widest = 0;
  for (const std::string& t : L.x_tick_text) widest = std::max(widest, detail::measure_text(t, 9).width);
  EXPECT_LE(widest + 8, L.plot.w * L.x.step / (L.x.hi - L.x.lo));
}

TEST(Format, ByExtension) {
  EXPECT_EQ(format_from_path("a/b.png"), Format::Png);
  EXPECT_EQ(format_from_path("B.PNG"), Format::Png);
  EXPECT_EQ(format_from_path("x.svg"), Format::Svg);
  EXPECT_EQ(format_from_path("x.pdf"), Format::Pdf);
  EXPECT_EQ(format_from_path("x.html"), Format::Html);
  EXPECT_EQ(format_from_path("x.htm"), Format::Html);
  EXPECT_NE(error_of<InvalidArgument>([] { format_from_path("plot.jpg"); })
                .find("plot.jpg: unknown plot format 'jpg'"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([] { format_from_path("dir.v2/plot"); }).find("''"),
            std::string::npos);
}

TEST(Text, SanitizeUtf8) {
  EXPECT_EQ(detail::sanitize_text("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\x88"),
            "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\x88");
  EXPECT_EQ(detail::sanitize_text("a\tb\nc\x7f"), "a bc");
  EXPECT_EQ(detail::sanitize_text("x\xc2\x85y"), "xy");                  // C1 control
  EXPECT_EQ(detail::sanitize_text("\xc0\xaf"), "\uFFFD\uFFFD");          // overlong
  EXPECT_EQ(detail::sanitize_text("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");  // surrogate
  EXPECT_EQ(detail::sanitize_text("ab\xe2\x9c"), "ab\uFFFD\uFFFD");      // truncated
}

TEST(Text, Base64Rfc4648Vectors) {
  EXPECT_EQ(detail::base64(""), "");
  EXPECT_EQ(detail::base64("f"), "Zg==");
  EXPECT_EQ(detail::base64("fo"), "Zm8=");
  EXPECT_EQ(detail::base64("foo"), "Zm9v");
  EXPECT_EQ(detail::base64("foob"), "Zm9vYg==");
  EXPECT_EQ(detail::base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(detail::base64("foobar"), "Zm9vYmFy");
}

TEST(Text, EllipsizeFitsTheWidth) {
  const std::string s = "a rather long category name that will not fit";
  const double full = detail::measure_text(s, 9).width;
  EXPECT_GT(full, 100);
  EXPECT_EQ(detail::ellipsize(s, 9, false, full + 1), s);
  const std::string e = detail::ellipsize(s, 9, false, 60);
  EXPECT_LE(detail::measure_text(e, 9).width, 60);
  EXPECT_EQ(e.substr(e.size() - 3), "\u2026");
  EXPECT_EQ(s.substr(0, e.size() - 3), e.substr(0, e.size() - 3));
  // Widths scale with the size (metrics are not hinted).
  EXPECT_NEAR(detail::measure_text(s, 18).width, 2 * full, 1e-6 * full);
}

TEST(Thumbnail, BoxFilterAverages) {
  // 4x2 -> 2x1: each output pixel is the mean of a 2x2 block.
  std::vector<std::uint8_t> px(4 * 2 * 3);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 10);
  Image t = make_thumbnail(px.data(), 4, 2, 2);
  ASSERT_EQ(t.width, 2);
  ASSERT_EQ(t.height, 1);
  for (int ox = 0; ox < 2; ++ox) {
    for (int c = 0; c < 3; ++c) {
      double sum = 0;
      for (int y = 0; y < 2; ++y) {
        for (int x = 2 * ox; x < 2 * ox + 2; ++x) sum += px[(y * 4 + x) * 3 + c];
      }
      EXPECT_EQ(t.rgb[ox * 3 + c], std::lround(sum / 4)) << ox << "," << c;
    }
  }
  // 3x1 -> 2x1: output 0 covers pixel 0 and half of pixel 1.
  const std::uint8_t row[9] = {0, 0, 0, 90, 90, 90, 240, 240, 240};
  t = make_thumbnail(row, 3, 1, 2);
  ASSERT_EQ(t.width, 2);
  EXPECT_EQ(t.rgb[0], std::lround((0 + 0.5 * 90) / 1.5));
  EXPECT_EQ(t.rgb[3], std::lround((0.5 * 90 + 240) / 1.5));
  // Never upscales.
  t = make_thumbnail(row, 3, 1, 48);
  EXPECT_EQ(t.width, 3);
  EXPECT_EQ(t.rgb, std::vector<std::uint8_t>(row, row + 9));
}

ScatterData three_points() {
  ScatterData d;
  d.x = {-2.0, 0.7, 3.0};
  d.y = {10.0, -3.3, 2.0};
  d.categories = {"cat", "motorcycle", "cat"};
  return d;
}

TEST(Layout, MapsDataIntoTheAxesWithAnInset) {
  const ScatterData d = three_points();
  ScatterOptions o;
  o.point_size = 10;
  const detail::Layout L = detail::compute_layout(d, o);
  EXPECT_DOUBLE_EQ(L.scale, 100.0 / 72);
  EXPECT_DOUBLE_EQ(L.width, 900 * 72.0 / 100);
  // Linear: limits map to the axes' edges, y upwards.
  EXPECT_DOUBLE_EQ(L.x.to_canvas(L.x.lo), L.plot.x);
  EXPECT_DOUBLE_EQ(L.x.to_canvas(L.x.hi), L.plot.x + L.plot.w);
  EXPECT_DOUBLE_EQ(L.y.to_canvas(L.y.lo), L.plot.y + L.plot.h);
  EXPECT_DOUBLE_EQ(L.y.to_canvas(L.y.hi), L.plot.y);
  EXPECT_NEAR(L.x.to_canvas(0.7), L.plot.x + L.plot.w * (0.7 - L.x.lo) / (L.x.hi - L.x.lo), 1e-9);
  // The extreme points sit 5% of the axis inside it (more than the marker radius here).
  EXPECT_NEAR(L.x.to_canvas(-2.0) - L.plot.x, 0.05 * L.plot.w, 1e-9);
  EXPECT_NEAR(L.plot.x + L.plot.w - L.x.to_canvas(3.0), 0.05 * L.plot.w, 1e-9);
  EXPECT_NEAR(L.y.to_canvas(10.0) - L.plot.y, 0.05 * L.plot.h, 1e-9);
  // Ticks are inside the limits, evenly spaced, and labelled.
  for (const detail::Axis* a : {&L.x, &L.y}) {
    ASSERT_GE(a->ticks.size(), 2u);
    EXPECT_GE(a->ticks.front(), a->lo);
    EXPECT_LE(a->ticks.back(), a->hi);
  }
  EXPECT_EQ(L.x_tick_text.size(), L.x.ticks.size());
  EXPECT_EQ(L.categories, (std::vector<std::string>{"cat", "motorcycle"}));
  EXPECT_EQ(L.category_of, (std::vector<int>{0, 1, 0}));
  EXPECT_TRUE(L.show_legend);
  EXPECT_GE(L.legend.x, L.plot.x + L.plot.w);        // outside the axes
  EXPECT_LE(L.legend.x + L.legend.w, L.width - 8);   // inside the canvas
}

TEST(Layout, SinglePointAndLegendOverflow) {
  ScatterData d;
  d.x = {5};
  d.y = {5};
  const detail::Layout L = detail::compute_layout(d, {});
  EXPECT_LT(L.x.lo, 5);
  EXPECT_GT(L.x.hi, 5);
  EXPECT_FALSE(L.show_legend);

  ScatterData many;
  for (int i = 0; i < 200; ++i) {
    many.x.push_back(i);
    many.y.push_back(i % 7);
    many.categories.push_back("class " + std::to_string(i));
  }
  ScatterOptions o;
  o.height = 300;
  const detail::Layout M = detail::compute_layout(many, o);
  ASSERT_FALSE(M.legend_entries.empty());
  EXPECT_LT(M.legend_entries.size(), 200u);
  EXPECT_EQ(M.legend_entries.back().category, -1);
  EXPECT_NE(M.legend_entries.back().text.find("more"), std::string::npos);
  EXPECT_LE(M.legend.y + M.legend.h, M.height);
}

struct Png {
  int width = 0, height = 0;
  std::vector<std::uint32_t> px;  // ARGB
  Rgb at(double x, double y) const {
    const std::uint32_t v = px[static_cast<int>(y) * width + static_cast<int>(x)];
    return {static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
            static_cast<std::uint8_t>(v)};
  }
};

Png decode_png(const std::string& bytes) {
  struct Reader {
    const std::string* s;
    std::size_t pos = 0;
  } r{&bytes};
  cairo_surface_t* s = cairo_image_surface_create_from_png_stream(
      [](void* closure, unsigned char* data, unsigned int length) {
        auto* rd = static_cast<Reader*>(closure);
        if (rd->pos + length > rd->s->size()) return CAIRO_STATUS_READ_ERROR;
        std::memcpy(data, rd->s->data() + rd->pos, length);
        rd->pos += length;
        return CAIRO_STATUS_SUCCESS;
      },
      &r);
  EXPECT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  Png p;
  p.width = cairo_image_surface_get_width(s);
  p.height = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  for (int y = 0; y < p.height; ++y) {
    const auto* row = reinterpret_cast<const std::uint32_t*>(data + y * stride);
    p.px.insert(p.px.end(), row, row + p.width);
  }
  cairo_surface_destroy(s);
  return p;
}

// The probe at point i is away from every grid line (which would show through alpha).
void expect_off_grid(const detail::Layout& L, double x, double y) {
  for (double t : L.x.ticks) ASSERT_GT(std::fabs(L.x.to_canvas(t) - L.x.to_canvas(x)), 2) << x;
  for (double t : L.y.ticks) ASSERT_GT(std::fabs(L.y.to_canvas(t) - L.y.to_canvas(y)), 2) << y;
}

void expect_near(Rgb got, double r, double g, double b, double tol, const std::string& where) {
  EXPECT_NEAR(got.r, r, tol) << where;
  EXPECT_NEAR(got.g, g, tol) << where;
  EXPECT_NEAR(got.b, b, tol) << where;
}

TEST(Png, SizeAndPointColoursAtTheMappedPixels) {
  const ScatterData d = three_points();
  ScatterOptions o;
  o.width = 640;
  o.height = 480;
  o.dpi = 120;
  o.point_size = 9;
  o.alpha = 1.0;
  const RenderResult r = render_scatter(d, o, Format::Png);
  ASSERT_EQ(r.bytes.substr(0, 8), "\x89PNG\r\n\x1a\n");
  const Png png = decode_png(r.bytes);
  EXPECT_EQ(png.width, 640);
  EXPECT_EQ(png.height, 480);
  const detail::Layout L = detail::compute_layout(d, o);
  for (std::size_t i = 0; i < 3; ++i) {
    const Rgb want = palette_colour(L.category_of[i]);
    const Rgb got = png.at(L.x.to_canvas(d.x[i]) * L.scale, L.y.to_canvas(d.y[i]) * L.scale);
    expect_near(got, want.r, want.g, want.b, 2, "point " + std::to_string(i));
  }
  // Background: the canvas corner, and the middle of an empty grid cell inside the axes.
  expect_near(png.at(2, 2), 255, 255, 255, 0, "corner");
  const double cx = (L.x.to_canvas(L.x.ticks[0]) + L.x.to_canvas(L.x.ticks[1])) / 2;
  const double cy = (L.y.to_canvas(L.y.ticks[0]) + L.y.to_canvas(L.y.ticks[1])) / 2;
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_GT(std::hypot(L.x.to_canvas(d.x[i]) - cx, L.y.to_canvas(d.y[i]) - cy), 20) << i;
  }
  expect_near(png.at(cx * L.scale, cy * L.scale), 255, 255, 255, 0, "empty cell");

  // With alpha, a lone marker's centre is its colour over white.
  expect_off_grid(L, d.x[1], d.y[1]);
  o.alpha = 0.5;
  const Png half = decode_png(render_scatter(d, o, Format::Png).bytes);
  const Rgb c = palette_colour(1);
  expect_near(half.at(L.x.to_canvas(d.x[1]) * L.scale, L.y.to_canvas(d.y[1]) * L.scale),
              0.5 * c.r + 127.5, 0.5 * c.g + 127.5, 0.5 * c.b + 127.5, 2, "alpha 0.5");
}

Image solid(int w, int h, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  Image im;
  im.width = w;
  im.height = h;
  for (int i = 0; i < w * h; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

TEST(Png, ThumbnailsAreDrawnAtTheirPoints) {
  ScatterData d = three_points();
  d.thumbnails = {solid(200, 100, 250, 10, 10), Image{}, solid(30, 60, 10, 240, 240)};
  ScatterOptions o;
  o.thumbnail_size = 48;
  const RenderResult r = render_scatter(d, o, Format::Png);
  EXPECT_EQ(r.thumbnails_drawn, 2);
  const Png png = decode_png(r.bytes);
  const detail::Layout L = detail::compute_layout(d, o);
  const double s = L.scale;
  expect_near(png.at(L.x.to_canvas(-2.0) * s, L.y.to_canvas(10.0) * s), 250, 10, 10, 1, "thumb 0");
  expect_near(png.at(L.x.to_canvas(3.0) * s, L.y.to_canvas(2.0) * s), 10, 240, 240, 1, "thumb 2");
  // 200x100 scaled to 48 px wide: 20 px right of the centre is still the image (not a marker).
  expect_near(png.at(L.x.to_canvas(-2.0) * s + 20, L.y.to_canvas(10.0) * s), 250, 10, 10, 1,
              "thumb 0 extent");
  // Point 1 has no thumbnail: its marker.
  expect_off_grid(L, d.x[1], d.y[1]);
  const Rgb c = palette_colour(1);
  const double a = o.alpha;
  expect_near(png.at(L.x.to_canvas(0.7) * s, L.y.to_canvas(-3.3) * s), a * c.r + (1 - a) * 255,
              a * c.g + (1 - a) * 255, a * c.b + (1 - a) * 255, 2, "marker 1");
}

TEST(Encode, JpegAndPngDecodeBackToTheImage) {
  // Read back with the vision layer's decoders (libjpeg-turbo, libpng), not with our encoders.
  Image im = solid(37, 20, 200, 40, 90);
  for (int x = 0; x < 10; ++x) {  // a black block on the left
    for (int y = 0; y < 20; ++y) {
      for (int c = 0; c < 3; ++c) im.rgb[(y * 37 + x) * 3 + c] = 0;
    }
  }
  const std::string jpeg = detail::encode_jpeg(im, 90);
  const vision::DecodedImage j = vision::decode_image(
      reinterpret_cast<const std::uint8_t*>(jpeg.data()), jpeg.size(), "thumb.jpg");
  EXPECT_EQ(j.format, vision::ImageFormat::Jpeg);
  ASSERT_EQ(j.rgb.dim(0), 20);
  ASSERT_EQ(j.rgb.dim(1), 37);
  const std::uint8_t* p = j.rgb.data<std::uint8_t>();
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(p[(10 * 37 + 30) * 3 + c], im.rgb[(10 * 37 + 30) * 3 + c], 6) << c;
    EXPECT_NEAR(p[(10 * 37 + 3) * 3 + c], 0, 6) << c;
  }
  const std::string png = detail::encode_png(im);
  const vision::DecodedImage q = vision::decode_image(
      reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), "thumb.png");
  ASSERT_EQ(q.rgb.dim(1), 37);
  EXPECT_EQ(std::vector<std::uint8_t>(q.rgb.data<std::uint8_t>(), q.rgb.data<std::uint8_t>() + im.rgb.size()),
            im.rgb);
}

TEST(Svg, OneCircleAPointAndTheTitle) {
  ScatterData d = three_points();
  d.texts = {"a < b", "", "c"};
  ScatterOptions o;
  o.title = "Cats & motorcycles";
  o.x_label = "PC 1";
  const RenderResult r = render_scatter(d, o, Format::Svg);
  const std::string& s = r.bytes;
  EXPECT_EQ(s.rfind("<?xml", 0), 0u);
  EXPECT_EQ(count(s, "<circle data-i="), 3u);
  EXPECT_EQ(count(s, "<circle"), 3u + 2u);  // and one per legend entry
  EXPECT_NE(s.find(">Cats &amp; motorcycles</text>"), std::string::npos);
  EXPECT_NE(s.find(">PC 1</text>"), std::string::npos);
  EXPECT_NE(s.find(">a &lt; b</text>"), std::string::npos);
  EXPECT_NE(s.find(">motorcycle</text>"), std::string::npos);
  EXPECT_NE(s.find("fill=\"#023eff\""), std::string::npos);
  EXPECT_NE(s.find("fill=\"#ff7c00\""), std::string::npos);
  EXPECT_EQ(s.substr(s.size() - 7), "</svg>\n");

  d.thumbnails = {solid(8, 8, 1, 2, 3), Image{}, Image{}};
  const std::string t = render_scatter(d, o, Format::Svg).bytes;
  EXPECT_EQ(count(t, "<circle data-i="), 2u);
  EXPECT_EQ(count(t, "<image data-i=\"0\""), 1u);
  EXPECT_NE(t.find("xlink:href=\"data:image/jpeg;base64,/9j/"), std::string::npos);
}

TEST(Pdf, HeaderAndCrossReference) {
  ScatterOptions o;
  o.title = "pdf";
  const std::string pdf = render_scatter(three_points(), o, Format::Pdf).bytes;
  ASSERT_EQ(pdf.rfind("%PDF-1.", 0), 0u);
  ASSERT_GT(pdf.size(), 1000u);
  // startxref gives the byte offset of the cross-reference table.
  const std::size_t sx = pdf.rfind("startxref");
  ASSERT_NE(sx, std::string::npos);
  const long offset = std::stol(pdf.substr(sx + 9));
  ASSERT_GT(offset, 0);
  ASSERT_LT(static_cast<std::size_t>(offset), pdf.size());
  EXPECT_EQ(pdf.compare(offset, 4, "xref"), 0);
  EXPECT_NE(pdf.find("%%EOF", sx), std::string::npos);
  EXPECT_NE(pdf.find("/MediaBox [ 0 0 648 504 ]"), std::string::npos);
}

TEST(Texts, OverlappingTextsAreLeftOut) {
  ScatterData d;
  for (int i = 0; i < 10; ++i) {
    d.x.push_back(1.0);
    d.y.push_back(1.0);
    d.texts.push_back("label " + std::to_string(i));
  }
  const RenderResult r = render_scatter(d, {}, Format::Svg);
  EXPECT_EQ(r.texts_hidden, 6);  // right, left, above and below the shared point are taken
  EXPECT_EQ(count(r.bytes, ">label "), 4u);
}

// Issue #18: x, y of 1.7e308 aborted on nice_step's assertion (the range overflowed to inf).
// The class: any finite data lays out (no assertion, no endless loop), every point maps inside
// the axes, and the ticks are finite, inside the limits and increasing. Values over the whole
// double range: +-DBL_MAX, spans over DBL_MAX, subnormals, -0, tiny spreads, one point.
void expect_sane_layout(const ScatterData& d, const std::string& what) {
  SCOPED_TRACE(what);
  const detail::Layout L = detail::compute_layout(d, {});
  for (const detail::Axis* a : {&L.x, &L.y}) {
    ASSERT_TRUE(std::isfinite(a->lo) && std::isfinite(a->hi));
    ASSERT_LT(a->lo, a->hi);
    ASSERT_GE(a->ticks.size(), 2u);
    ASSERT_TRUE(std::isfinite(a->step) && a->step > 0);
    for (std::size_t k = 0; k < a->ticks.size(); ++k) {
      EXPECT_TRUE(std::isfinite(a->ticks[k]));
      // Inside the limits up to nice_ticks' tolerance of 1e-9 steps.
      EXPECT_GE(a->ticks[k], a->lo - 1e-9 * a->step);
      EXPECT_LE(a->ticks[k], a->hi + 1e-9 * a->step);
      if (k > 0) {
        EXPECT_LT(a->ticks[k - 1], a->ticks[k]);
      }
    }
  }
  for (const std::string& t : L.x_tick_text) EXPECT_FALSE(t.empty());
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    const double cx = L.x.to_canvas(d.x[i]), cy = L.y.to_canvas(d.y[i]);
    EXPECT_GE(cx, L.plot.x - 1e-9) << "x[" << i << "] = " << d.x[i];
    EXPECT_LE(cx, L.plot.x + L.plot.w + 1e-9) << "x[" << i << "] = " << d.x[i];
    EXPECT_GE(cy, L.plot.y - 1e-9) << "y[" << i << "] = " << d.y[i];
    EXPECT_LE(cy, L.plot.y + L.plot.h + 1e-9) << "y[" << i << "] = " << d.y[i];
  }
}

TEST(Layout, ExtremeFiniteValuesLayOut) {
  constexpr double kMax = std::numeric_limits<double>::max();
  constexpr double kSub = std::numeric_limits<double>::denorm_min();
  const std::vector<double> specials = {kMax, -kMax, 1.7e308, -1.7e308, 1e308, 9e307, -9e307,
                                        1e300, 1.0, 0.0, -0.0, 1e-13, 2e-13, 1e-300,
                                        std::numeric_limits<double>::min(), kSub, -kSub,
                                        3 * kSub, -1e-310};
  // Every pair, and every pair with a third point at 0.
  for (double a : specials) {
    for (double b : specials) {
      ScatterData d;
      d.x = {a, b};
      d.y = {b, a};
      expect_sane_layout(d, "pair " + std::to_string(a) + " " + std::to_string(b));
      d.x.push_back(0);
      d.y.push_back(1);
      expect_sane_layout(d, "with 0");
    }
    ScatterData one;
    one.x = {a};
    one.y = {a};
    expect_sane_layout(one, "one point");
  }
  // Random values over the whole range of exponents, either sign (seeded).
  std::mt19937_64 rng(18);
  std::uniform_real_distribution<double> mant(1.0, 10.0);
  std::uniform_int_distribution<int> exponent(-323, 307);
  for (int trial = 0; trial < 300; ++trial) {
    ScatterData d;
    const int n = 1 + trial % 5;
    for (int i = 0; i < n; ++i) {
      const double sx = rng() & 1 ? -1 : 1, sy = rng() & 1 ? -1 : 1;
      d.x.push_back(sx * mant(rng) * std::pow(10.0, exponent(rng)));
      d.y.push_back(sy * mant(rng) * std::pow(10.0, exponent(rng)));
    }
    expect_sane_layout(d, "random trial " + std::to_string(trial));
  }
}

TEST(Layout, ExtremeValuesRenderInEveryFormat) {
  ScatterData d;
  d.x = {1.7e308, -1.7e308, 0};
  d.y = {1.7e308, 1.7e308, -0.0};
  for (Format f : {Format::Png, Format::Svg, Format::Pdf, Format::Html}) {
    const RenderResult r = render_scatter(d, {}, f);
    EXPECT_FALSE(r.bytes.empty()) << format_name(f);
  }
  // The extreme points sit at the axes' ends and 0 at their middle.
  const detail::Layout L = detail::compute_layout(d, {});
  EXPECT_LT(L.x.to_canvas(-1.7e308), L.x.to_canvas(0));
  EXPECT_LT(L.x.to_canvas(0), L.x.to_canvas(1.7e308));
  EXPECT_NEAR(L.x.to_canvas(0), L.plot.x + L.plot.w / 2, 1e-6);
}

TEST(Layout, TinySpreadNearZeroIsSpreadOverTheAxis) {
  // A spread of 1e-13 was taken for "all equal" (relative to 1, not to the data's magnitude):
  // the three points were drawn on top of each other.
  ScatterData d;
  d.x = {0, 1e-13, 2e-13};
  d.y = {1e-20, 2e-20, 3e-20};
  const detail::Layout L = detail::compute_layout(d, {});
  EXPECT_NEAR(L.x.to_canvas(1e-13), L.plot.x + L.plot.w / 2, 1e-6);
  EXPECT_GT(L.x.to_canvas(2e-13) - L.x.to_canvas(0), 0.8 * L.plot.w);
  EXPECT_GT(L.y.to_canvas(1e-20) - L.y.to_canvas(3e-20), 0.8 * L.plot.h);
}

TEST(Errors, NameTheFieldAndIndex) {
  ScatterData d = three_points();
  d.y[1] = NAN;
  EXPECT_NE(error_of<InvalidArgument>([&] { render_scatter(d, {}, Format::Png); })
                .find("y[1] is nan; coordinates must be finite"),
            std::string::npos);
  d = three_points();
  d.captions = {"one"};
  EXPECT_NE(error_of<InvalidArgument>([&] { render_scatter(d, {}, Format::Html); })
                .find("captions has 1 entries for 3 points"),
            std::string::npos);
  d = three_points();
  d.thumbnails = {Image{2, 2, {1, 2, 3}}, Image{}, Image{}};
  EXPECT_NE(error_of<InvalidArgument>([&] { render_scatter(d, {}, Format::Png); })
                .find("thumbnails[0] has 3 bytes for 2x2 RGB (expected 12)"),
            std::string::npos);
  ScatterOptions o;
  o.alpha = 1.5;
  EXPECT_NE(error_of<InvalidArgument>([&] { render_scatter(three_points(), o, Format::Png); })
                .find("alpha 1.5 is outside [0, 1]"),
            std::string::npos);
  EXPECT_NE(error_of<InvalidArgument>([&] { render_scatter(ScatterData{}, {}, Format::Png); })
                .find("no points"),
            std::string::npos);
}

}  // namespace
}  // namespace mmembed::plot
