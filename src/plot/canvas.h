// The few drawing primitives a scatter plot needs, in points, with two implementations:
// cairo (PNG and PDF) and a direct SVG writer (SVG and the HTML page), so that the SVG holds
// real <circle> and <text> elements that a page can script.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mmembed/plot.h"

typedef struct _cairo cairo_t;

namespace mmembed::plot::detail {

struct Rgba {
  double r = 0, g = 0, b = 0, a = 1;
};
inline Rgba rgba(Rgb c, double a = 1) { return {c.r / 255.0, c.g / 255.0, c.b / 255.0, a}; }
inline Rgba gray(double v, double a = 1) { return {v, v, v, a}; }

enum class Anchor { Start, Middle, End };

class Canvas {
 public:
  virtual ~Canvas() = default;
  // Filled rectangle and/or its outline (a fill or stroke with alpha 0 is skipped).
  virtual void rect(double x, double y, double w, double h, Rgba fill, Rgba stroke,
                    double stroke_width) = 0;
  virtual void line(double x0, double y0, double x1, double y1, Rgba colour, double width) = 0;
  // A marker: `point` >= 0 tags it as that data point (the HTML page uses it).
  virtual void circle(double cx, double cy, double r, Rgba fill, Rgba stroke,
                      double stroke_width, std::int64_t point = -1) = 0;
  // Text with its baseline at y; `vertical` rotates it to read bottom-to-top around (x, y).
  virtual void text(double x, double y, const std::string& utf8, double size, Rgba colour,
                    Anchor anchor, bool bold = false, bool vertical = false) = 0;
  virtual void image(double x, double y, double w, double h, const Image& im,
                     std::int64_t point = -1) = 0;
  virtual void clip_begin(double x, double y, double w, double h) = 0;
  virtual void clip_end() = 0;
};

// Draws on `cr`, whose user units must be points. Does not own it.
std::unique_ptr<Canvas> make_cairo_canvas(cairo_t* cr);

class SvgCanvas : public Canvas {
 public:
  // `standalone`: an .svg file (XML declaration, namespaces, xlink:href); otherwise an <svg>
  // element for inline use in HTML5 (no namespace URLs, plain href).
  SvgCanvas(double width, double height, bool standalone);
  void rect(double x, double y, double w, double h, Rgba fill, Rgba stroke,
            double stroke_width) override;
  void line(double x0, double y0, double x1, double y1, Rgba colour, double width) override;
  void circle(double cx, double cy, double r, Rgba fill, Rgba stroke, double stroke_width,
              std::int64_t point) override;
  void text(double x, double y, const std::string& utf8, double size, Rgba colour, Anchor anchor,
            bool bold, bool vertical) override;
  void image(double x, double y, double w, double h, const Image& im,
             std::int64_t point) override;
  void clip_begin(double x, double y, double w, double h) override;
  void clip_end() override;
  // Appends raw markup (already escaped) inside the <svg> element.
  void raw(const std::string& markup) { body_ += markup; }
  std::string finish() const;

 private:
  double width_, height_;
  bool standalone_;
  int clips_ = 0;
  std::string body_;
};

struct Layout;

// Draws the static plot (what PNG, PDF and SVG show) on `c` and counts what it drew in
// `result` (texts_hidden, thumbnails_drawn).
void draw_scatter(Canvas& c, const Layout& L, const ScatterData& d, const ScatterOptions& o,
                  RenderResult& result);

// XML-escaped text (&, <, >, ", ').
std::string xml_escape(const std::string& s);
// The image as an in-memory PNG (cairo's PNG writer).
std::string encode_png(const Image& im);
// The image as an in-memory baseline JPEG (libjpeg-turbo), 4:2:0 at `quality` (1..100).
std::string encode_jpeg(const Image& im, int quality = 85);

}  // namespace mmembed::plot::detail
