#include <cstdio>

#include "core/check.h"
#include "plot/canvas.h"
#include "plot/layout.h"

namespace mmembed::plot::detail {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string hex(Rgba c) {
  auto byte = [](double v) {
    const double x = v * 255 + 0.5;
    return static_cast<unsigned>(x < 0 ? 0 : x > 255 ? 255 : x);
  };
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

// fill="..." [fill-opacity] / stroke="..." [stroke-opacity stroke-width]
std::string paint_attrs(Rgba fill, Rgba stroke, double stroke_width) {
  std::string s = fill.a > 0 ? " fill=\"" + hex(fill) + "\"" : " fill=\"none\"";
  if (fill.a > 0 && fill.a < 1) s += " fill-opacity=\"" + num(fill.a) + "\"";
  if (stroke.a > 0 && stroke_width > 0) {
    s += " stroke=\"" + hex(stroke) + "\" stroke-width=\"" + num(stroke_width) + "\"";
    if (stroke.a < 1) s += " stroke-opacity=\"" + num(stroke.a) + "\"";
  }
  return s;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

SvgCanvas::SvgCanvas(double width, double height, bool standalone)
    : width_(width), height_(height), standalone_(standalone) {}

void SvgCanvas::rect(double x, double y, double w, double h, Rgba fill, Rgba stroke,
                     double stroke_width) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" +
           num(h) + "\"" + paint_attrs(fill, stroke, stroke_width) + "/>\n";
}

void SvgCanvas::line(double x0, double y0, double x1, double y1, Rgba colour, double width) {
  body_ += "<line x1=\"" + num(x0) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(x1) + "\" y2=\"" +
           num(y1) + "\"" + paint_attrs({0, 0, 0, 0}, colour, width) + "/>\n";
}

void SvgCanvas::circle(double cx, double cy, double r, Rgba fill, Rgba stroke, double stroke_width,
                       std::int64_t point) {
  body_ += "<circle";
  if (point >= 0) body_ += " data-i=\"" + std::to_string(point) + "\"";
  body_ += " cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(r) + "\"" +
           paint_attrs(fill, stroke, stroke_width) + "/>\n";
}

void SvgCanvas::text(double x, double y, const std::string& utf8, double size, Rgba colour,
                     Anchor anchor, bool bold, bool vertical) {
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) + "\"";
  if (anchor != Anchor::Start) {
    body_ += anchor == Anchor::Middle ? " text-anchor=\"middle\"" : " text-anchor=\"end\"";
  }
  if (bold) body_ += " font-weight=\"bold\"";
  if (vertical) body_ += " transform=\"rotate(-90 " + num(x) + " " + num(y) + ")\"";
  body_ += " fill=\"" + hex(colour) + "\"";
  if (colour.a < 1) body_ += " fill-opacity=\"" + num(colour.a) + "\"";
  body_ += '>';
  body_ += xml_escape(utf8);
  body_ += "</text>\n";
}

void SvgCanvas::image(double x, double y, double w, double h, const Image& im,
                      std::int64_t point) {
  body_ += "<image";
  if (point >= 0) body_ += " data-i=\"" + std::to_string(point) + "\"";
  body_ += " x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" +
           num(h) + "\" preserveAspectRatio=\"none\" " + (standalone_ ? "xlink:href" : "href") +
           "=\"data:image/jpeg;base64," + base64(encode_jpeg(im)) + "\"/>\n";
}

void SvgCanvas::clip_begin(double x, double y, double w, double h) {
  const std::string id = "clip" + std::to_string(clips_++);
  body_ += "<clipPath id=\"" + id + "\"><rect x=\"" + num(x) + "\" y=\"" + num(y) +
           "\" width=\"" + num(w) + "\" height=\"" + num(h) + "\"/></clipPath>\n<g clip-path=\"url(#" +
           id + ")\">\n";
}

void SvgCanvas::clip_end() { body_ += "</g>\n"; }

std::string SvgCanvas::finish() const {
  std::string head;
  if (standalone_) {
    head =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
        "version=\"1.1\" width=\"" + num(width_) + "pt\" height=\"" + num(height_) + "pt\"";
  } else {
    head = "<svg id=\"plot\" width=\"" + num(width_ * 4 / 3) + "\" height=\"" +
           num(height_ * 4 / 3) + "\"";
  }
  head += " viewBox=\"0 0 " + num(width_) + " " + num(height_) +
          "\" font-family=\"'DejaVu Sans', Verdana, sans-serif\">\n";
  return head + body_ + "</svg>\n";
}

}  // namespace mmembed::plot::detail
