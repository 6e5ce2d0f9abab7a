#include "plot/html.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "plot/canvas.h"
#include "plot/html_assets.h"
#include "plot/layout.h"

namespace mmembed::plot::detail {
namespace {

// Counts what the static plot would draw (texts left out, thumbnails) without drawing.
class NullCanvas final : public Canvas {
 public:
  void rect(double, double, double, double, Rgba, Rgba, double) override {}
  void line(double, double, double, double, Rgba, double) override {}
  void circle(double, double, double, Rgba, Rgba, double, std::int64_t) override {}
  void text(double, double, const std::string&, double, Rgba, Anchor, bool, bool) override {}
  void image(double, double, double, double, const Image&, std::int64_t) override {}
  void clip_begin(double, double, double, double) override {}
  void clip_end() override {}
};

std::string hex_colour(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

// The page around the data: header (title, search, reset), the map (two stacked canvases and
// the tooltip), the legend, the hint line and the state element. A first small script counts
// errors into #mm-state before the map's script runs, so that a script that fails to parse is
// seen too.
constexpr const char* kBody = R"html(<div id="mm-app">
<header id="mm-head">
<div id="mm-titles"><h1 id="mm-title"></h1><div id="mm-subtitle"></div></div>
<div id="mm-tools">
<input id="mm-search" type="search" placeholder="Search captions and ids" autocomplete="off"
 spellcheck="false" aria-label="Search captions and ids (Enter zooms to the matches)">
<span id="mm-count" aria-live="polite"></span>
<button id="mm-reset" type="button"
 title="Show everything again (double-click the map, or press 0)">Reset view</button>
</div>
</header>
<main id="mm-main">
<div id="mm-plot" tabindex="0"
 aria-label="Scatter plot: wheel or +/- to zoom, drag or arrow keys to pan">
<canvas id="mm-canvas"></canvas><canvas id="mm-overlay"></canvas>
<div id="mm-tip" role="tooltip" hidden></div>
</div>
<aside id="mm-legend" hidden>
<div id="mm-legend-head"><span id="mm-legend-title"></span><span id="mm-legend-buttons"><button
 id="mm-all" type="button" title="Show every label">all</button><button id="mm-none" type="button"
 title="Hide every label">none</button></span></div>
<ul id="mm-legend-list"></ul>
</aside>
</main>
<footer id="mm-hint">Wheel, pinch or +/&minus;: zoom &middot; drag or arrows: pan &middot;
double-click or 0: reset &middot; click a point: pin its tooltip &middot; legend: click a label to
hide or show it, shift-click or &ldquo;only&rdquo; to show only it</footer>
</div>
<noscript>This map needs JavaScript.</noscript>
<div id="mm-state" hidden data-errors="0"></div>
<script>
(function () {
  var s = document.getElementById('mm-state'), n = 0;
  function note(message) {
    s.setAttribute('data-errors', String(++n));
    if (n === 1) s.setAttribute('data-error', String(message));
  }
  window.addEventListener('error', function (e) { note(e.message || 'error'); });
  window.addEventListener('unhandledrejection', function (e) {
    note('unhandled rejection: ' + e.reason);
  });
})();
</script>
)html";

}  // namespace

std::string html_json_string(std::string_view text) {
  std::string clean(text);
  for (char& c : clean) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  clean = sanitize_text(clean);
  std::string out;
  out.reserve(clean.size() + 2);
  out += '"';
  auto byte = [&clean](std::size_t i) { return static_cast<unsigned char>(clean[i]); };
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(clean[i]);
    if (c == '"' || c == '\\' || c == '/') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else if (c == 0xE2 && i + 2 < clean.size() && byte(i + 1) == 0x80 &&
               (byte(i + 2) == 0xA8 || byte(i + 2) == 0xA9)) {
      out += byte(i + 2) == 0xA8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

std::string json_number(double v) {
  char buf[40];
  std::to_chars_result r;
  const float f = static_cast<float>(v);
  if (std::isfinite(f) && static_cast<double>(f) == v) {
    r = std::to_chars(buf, buf + sizeof(buf), f);
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v);
  }
  return std::string(buf, r.ptr);
}

std::string render_html(const Layout& L, const ScatterData& d, const ScatterOptions& o,
                        RenderResult& result) {
  NullCanvas counter;
  draw_scatter(counter, L, d, o, result);

  const std::size_t n = d.x.size();
  std::string j;
  j.reserve(n * (32 + (d.ids.empty() ? 0 : 16) + (d.captions.empty() ? 0 : 48)) + 4096);
  auto key = [&j](const char* name) {
    j += ",\n\"";
    j += name;
    j += "\":";
  };
  auto numbers = [&j, n](auto&& value) {
    j += '[';
    for (std::size_t i = 0; i < n; ++i) {
      if (i) j += ',';
      j += value(i);
    }
    j += ']';
  };
  auto strings = [&j, n](const std::vector<std::string>& v) {
    j += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) j += ',';
      j += html_json_string(v[i]);
    }
    j += ']';
  };
  j += "{\"format\":\"mmembed-scatter\",\"version\":1";
  key("title");
  j += html_json_string(o.title);
  key("subtitle");
  j += html_json_string(o.subtitle);
  key("x_label");
  j += html_json_string(o.x_label);
  key("y_label");
  j += html_json_string(o.y_label);
  key("legend_title");
  j += html_json_string(o.legend_title);
  key("point_size_pt");
  j += json_number(o.point_size);
  key("alpha");
  j += json_number(o.alpha);
  key("thumbnail_size_pt");
  j += json_number(L.thumb);
  auto pair = [&j](double a, double b) {
    j += '[';
    j += json_number(a);
    j += ',';
    j += json_number(b);
    j += ']';
  };
  key("x_limits");
  pair(L.x.lo, L.x.hi);
  key("y_limits");
  pair(L.y.lo, L.y.hi);
  key("categories");
  strings(L.categories);
  key("colours");
  j += '[';
  const std::size_t colours = std::max<std::size_t>(1, L.categories.size());
  for (std::size_t c = 0; c < colours; ++c) {
    if (c) j += ',';
    j += '"';
    j += hex_colour(category_colour(c, L.categories.size()));
    j += '"';
  }
  j += ']';
  key("x");
  numbers([&](std::size_t i) { return json_number(d.x[i]); });
  key("y");
  numbers([&](std::size_t i) { return json_number(d.y[i]); });
  key("category");
  if (L.categories.empty()) {
    j += "[]";
  } else {
    numbers([&](std::size_t i) { return std::to_string(L.category_of[i]); });
  }
  key("ids");
  strings(d.ids);
  key("captions");
  strings(d.captions);
  key("texts");
  strings(d.texts);
  key("thumbnails");
  j += '[';
  bool any_thumbnail = false;
  for (const Image& im : d.thumbnails) any_thumbnail = any_thumbnail || !im.empty();
  for (std::size_t i = 0; any_thumbnail && i < n; ++i) {
    if (i) j += ',';
    const Image& src = d.thumbnails[i];
    if (src.empty()) {
      j += "\"\"";
      continue;
    }
    j += "\"data:image/jpeg;base64,";
    j += base64(encode_jpeg(
        make_thumbnail(src.rgb.data(), src.width, src.height, o.hover_thumbnail_size)));
    j += '"';
  }
  j += "]\n}";

  const std::string title =
      xml_escape(sanitize_text(o.title.empty() ? "mmembed scatter plot" : o.title));
  std::string html;
  html.reserve(j.size() + 64 * 1024);
  html +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      // No network access, whatever the data holds: only inline styles and scripts, and images
      // from data: URIs.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; "
      "form-action 'none'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"generator\" content=\"mmembed\">\n<title>";
  html += title;
  html += "</title>\n<style>\n";
  html += kHtmlMapCss;
  html += "</style>\n</head>\n<body>\n";
  html += kBody;
  html += "<script type=\"application/json\" id=\"mm-data\">\n";
  html += j;
  html += "\n</script>\n<script>\n";
  html += kHtmlMapJs;
  html += "</script>\n</body>\n</html>\n";
  return html;
}

}  // namespace mmembed::plot::detail
