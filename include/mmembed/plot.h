// Scatter plots of 2-D embeddings: PNG, PDF (cairo), SVG and a self-contained interactive HTML page.
//
//   mmembed::plot::ScatterData d;
//   d.x = {0.1, 0.5, 0.9};  d.y = {1.0, 2.0, 1.5};
//   d.categories = {"cat", "cat", "motorcycle"};          // colour + legend (optional)
//   mmembed::plot::ScatterOptions o;
//   o.title = "CLIP image embeddings (PCA)";
//   auto r = mmembed::plot::render_scatter(d, o, mmembed::plot::format_from_path("plot.png"));
//   // r.bytes holds the whole file; write it where you like (the CLI writes it atomically).
//
// Contracts:
//  - Sizes: `width` x `height` are the PNG's pixels; the vector formats (SVG, PDF) are
//    width*72/dpi x height*72/dpi points, so every format has the same layout. Fonts, the marker
//    size and line widths are in points (1/72 inch) and scale with `dpi` in the PNG. The HTML
//    map fills the browser window instead; its markers and thumbnails have the same sizes in
//    points (a CSS pixel is 3/4 point).
//  - Every per-point vector of ScatterData is either empty or has exactly x.size() entries;
//    x and y must be finite. Violations throw InvalidArgument naming the field and the index.
//  - Categories are coloured in order of first appearance with seaborn's "bright" palette
//    (more than 10: evenly spaced hues, see category_colour). Texts are placed beside their
//    points (eight candidate spots), greedily avoiding each other, the markers and the
//    thumbnails and staying inside the axes; a text with no free spot is left out and counted
//    in `texts_hidden` (for HTML: at the initial view, as the other formats; the page places
//    the texts again as the view changes).
//  - Thumbnails are drawn centred on their points (longer side `thumbnail_size` pixels at `dpi`)
//    with a frame in the category colour; points without one get a marker.
//  - Text is drawn with DejaVu Sans (Debian: fonts-dejavu-core) through cairo's font API; invalid
//    UTF-8 is replaced by U+FFFD and control characters are dropped (line breaks become spaces
//    in the HTML map's data). The SVG writer emits <text> and <circle> elements (font-family
//    "DejaVu Sans", sans-serif), not glyph outlines.
//  - The HTML map is one self-contained file: the points are drawn on a <canvas> by an inline
//    script from a JSON block holding the data (src/plot/html.h), so 50,000 points stay quick.
//    It fills its window and follows its size; mouse-wheel (or pinch, or +/-) zoom about the
//    cursor, drag to pan, double-click (or the "Reset view" button, or 0) resets; clicking a
//    legend entry hides or shows that label (shift-click or "only": only that label), with the
//    count of each; a search box highlights the points whose id, caption or text contains the
//    query (case-insensitive), dims the others and counts the matches (Enter zooms to them);
//    hovering a point shows its id (the row number "#i" without ids), caption, label,
//    coordinates and picture (`hover_thumbnail_size`); a click pins that tooltip. The state
//    lives in the URL fragment (#search=cat&hide=dog&view=x0,x1,y0,y1&tip=ID), so a view can be
//    bookmarked or linked. It makes no network requests: styles, script and images are inline,
//    and a Content-Security-Policy forbids any other source.
//  - SVG and HTML embed thumbnails as base64 JPEG (quality 85) data URIs; PNG and PDF draw the
//    pixels.
// Thread-safety: render_scatter is reentrant (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mmembed::plot {

// 8-bit RGB pixels, row-major [height, width, 3].
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;
  bool empty() const { return width <= 0 || height <= 0; }
};

// Box-filtered (area-averaged) copy whose longer side is at most `max_side` pixels; never
// upscales. Callers holding many large decoded images shrink them with this before plotting.
Image make_thumbnail(const std::uint8_t* rgb, int width, int height, int max_side);

struct ScatterData {
  std::vector<double> x, y;
  std::vector<std::string> categories;  // empty, or one per point: colour and legend entry
  std::vector<std::string> texts;       // empty, or one per point ("" = none): drawn beside it
  std::vector<std::string> captions;    // empty, or one per point: shown on hover (HTML)
  std::vector<std::string> ids;         // empty, or one per point: the HTML tooltip's heading
                                        // (default: the row number, "#0", "#1", ...)
  std::vector<Image> thumbnails;        // empty, or one per point (empty Image = none)
};

enum class Format { Png, Svg, Pdf, Html };

// By the file extension (case-insensitive): .png, .svg, .pdf, .html/.htm. Throws InvalidArgument
// for any other.
Format format_from_path(const std::string& path);
const char* format_name(Format format);

struct ScatterOptions {
  std::string title;
  std::string subtitle;      // a smaller grey line under the title, e.g. quality metrics
  std::string x_label, y_label;
  std::string legend_title;  // e.g. the name of the category column
  bool legend = true;        // drawn when there are categories
  double point_size = 6.0;   // marker diameter in points, > 0
  double alpha = 0.8;        // marker opacity in [0, 1]
  int width = 900;           // PNG pixels (see the contract above), 64..16384
  int height = 700;
  int dpi = 100;             // 10..1200
  int thumbnail_size = 48;   // longer side of a thumbnail in pixels at `dpi`, 4..1024
  int hover_thumbnail_size = 160;  // HTML only: the picture in the tooltip (also drawn, scaled
                                   // down, at the point), longer side in pixels, 16..1024
};

struct RenderResult {
  std::string bytes;                // the complete file
  std::int64_t texts_hidden = 0;    // texts left out to avoid overlaps
  std::int64_t thumbnails_drawn = 0;
};

RenderResult render_scatter(const ScatterData& data, const ScatterOptions& options, Format format);

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// seaborn's "bright" palette, entry i % 10.
Rgb palette_colour(std::size_t i);

// The colour of category i of `count`: palette_colour(i) for up to 10 categories; beyond that
// `count` evenly spaced hues (as seaborn switches to a circular palette), so none repeats.
Rgb category_colour(std::size_t i, std::size_t count);

}  // namespace mmembed::plot
