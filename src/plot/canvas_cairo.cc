#include <cairo.h>

#include <cmath>

#include "core/check.h"
#include "plot/canvas.h"
#include "plot/layout.h"

namespace mmembed::plot::detail {
namespace {

// An opaque RGB24 surface holding the image's pixels (the caller destroys it).
cairo_surface_t* to_surface(const Image& im) {
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, im.width, im.height);
  MMEMBED_CHECK(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS, InvalidArgument,
                "scatter plot: cannot make a ", im.width, "x", im.height, " image surface");
  cairo_surface_flush(s);
  unsigned char* base = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  for (int r = 0; r < im.height; ++r) {
    auto* row = reinterpret_cast<std::uint32_t*>(base + static_cast<std::ptrdiff_t>(r) * stride);
    const std::uint8_t* src = im.rgb.data() + static_cast<std::size_t>(r) * im.width * 3;
    for (int c = 0; c < im.width; ++c) {
      row[c] = 0xFF000000u | std::uint32_t{src[3 * c]} << 16 | std::uint32_t{src[3 * c + 1]} << 8 |
               src[3 * c + 2];
    }
  }
  cairo_surface_mark_dirty(s);
  return s;
}

class CairoCanvas : public Canvas {
 public:
  explicit CairoCanvas(cairo_t* cr) : cr_(cr) {
    cairo_font_options_t* fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(cr_, fo);
    cairo_font_options_destroy(fo);
  }

  void rect(double x, double y, double w, double h, Rgba fill, Rgba stroke,
            double stroke_width) override {
    cairo_rectangle(cr_, x, y, w, h);
    paint(fill, stroke, stroke_width);
  }

  void line(double x0, double y0, double x1, double y1, Rgba colour, double width) override {
    cairo_move_to(cr_, x0, y0);
    cairo_line_to(cr_, x1, y1);
    set(colour);
    cairo_set_line_width(cr_, width);
    cairo_set_line_cap(cr_, CAIRO_LINE_CAP_BUTT);
    cairo_stroke(cr_);
  }

  void circle(double cx, double cy, double r, Rgba fill, Rgba stroke, double stroke_width,
              std::int64_t) override {
    cairo_new_sub_path(cr_);
    cairo_arc(cr_, cx, cy, r, 0, 2 * M_PI);
    paint(fill, stroke, stroke_width);
  }

  void text(double x, double y, const std::string& utf8, double size, Rgba colour, Anchor anchor,
            bool bold, bool vertical) override {
    cairo_select_font_face(cr_, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    const double w = measure_text(utf8, size, bold).width;
    const double shift = anchor == Anchor::Start ? 0 : anchor == Anchor::Middle ? w / 2 : w;
    cairo_save(cr_);
    cairo_translate(cr_, x, y);
    if (vertical) cairo_rotate(cr_, -M_PI / 2);
    cairo_move_to(cr_, -shift, 0);
    set(colour);
    cairo_show_text(cr_, utf8.c_str());
    cairo_restore(cr_);
  }

  void image(double x, double y, double w, double h, const Image& im, std::int64_t) override {
    cairo_surface_t* s = to_surface(im);
    cairo_save(cr_);
    cairo_translate(cr_, x, y);
    cairo_scale(cr_, w / im.width, h / im.height);
    cairo_set_source_surface(cr_, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr_), CAIRO_FILTER_GOOD);
    cairo_rectangle(cr_, 0, 0, im.width, im.height);
    cairo_fill(cr_);
    cairo_restore(cr_);
    cairo_surface_destroy(s);
  }

  void clip_begin(double x, double y, double w, double h) override {
    cairo_save(cr_);
    cairo_rectangle(cr_, x, y, w, h);
    cairo_clip(cr_);
  }
  void clip_end() override { cairo_restore(cr_); }

 private:
  void set(Rgba c) { cairo_set_source_rgba(cr_, c.r, c.g, c.b, c.a); }
  void paint(Rgba fill, Rgba stroke, double stroke_width) {
    if (fill.a > 0) {
      set(fill);
      cairo_fill_preserve(cr_);
    }
    if (stroke.a > 0 && stroke_width > 0) {
      set(stroke);
      cairo_set_line_width(cr_, stroke_width);
      cairo_stroke_preserve(cr_);
    }
    cairo_new_path(cr_);
  }
  cairo_t* cr_;
};

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

std::unique_ptr<Canvas> make_cairo_canvas(cairo_t* cr) { return std::make_unique<CairoCanvas>(cr); }

std::string encode_png(const Image& im) {
  cairo_surface_t* s = to_surface(im);
  std::string out;
  const cairo_status_t st = cairo_surface_write_to_png_stream(s, append_to_string, &out);
  cairo_surface_destroy(s);
  MMEMBED_CHECK(st == CAIRO_STATUS_SUCCESS, InvalidArgument, "scatter plot: PNG encoding failed: ",
                cairo_status_to_string(st));
  return out;
}

}  // namespace mmembed::plot::detail
