// The interactive HTML map (render_scatter with Format::Html): one self-contained page that
// fills its window and draws the points on a <canvas> with html/map.js, from a JSON block
// (<script type="application/json" id="mm-data">) that holds the data:
//
//   {"format": "mmembed-scatter", "version": 1,
//    "title", "subtitle", "x_label", "y_label", "legend_title": strings ("" = none),
//    "point_size_pt", "alpha", "thumbnail_size_pt" (0: no thumbnails): as in ScatterOptions,
//      sizes in points (a CSS pixel is 3/4 point),
//    "x_limits", "y_limits": [lo, hi], the static plot's axis limits (the initial view),
//    "categories": the distinct labels in order of first appearance, "colours": their
//      "#rrggbb" (one entry, the points' colour, when there are no categories),
//    "x", "y": numbers; "category": per point, an index into categories ([] when none),
//    "ids", "captions", "texts": per point strings, [] when not given,
//    "thumbnails": per point "data:image/jpeg;base64,..." or "" (none), [] when none}
//
// Every per-point array is empty or has one entry per point. The page reads its state from
// the URL fragment and writes what it shows into the attributes of <div id="mm-state">
// (see html/map.js), which is how the browser tests check it.
#pragma once

#include <string>
#include <string_view>

#include "mmembed/plot.h"

namespace mmembed::plot::detail {

struct Layout;

// The whole page. `result` gets the static plot's counts (texts left out at the initial view,
// thumbnails), so that every format reports the same.
std::string render_html(const Layout& L, const ScatterData& d, const ScatterOptions& o,
                        RenderResult& result);

// `text` as a JSON string literal that may stand anywhere inside an HTML <script> element:
// made valid UTF-8 first (invalid sequences become U+FFFD, line breaks and tabs spaces, other
// control characters are dropped: sanitize_text), then '"', '\' and '/' escaped and '<', '>',
// '&', U+2028 and U+2029 written as \u escapes, so that no "</script", "<!--", JavaScript line
// terminator or URL ("https://" in a caption) appears in the page as such.
std::string html_json_string(std::string_view text);

// `v` (finite) as a JSON number: the shortest text that reads back as the same float when `v`
// is a float value (embeddings usually are), else as the same double.
std::string json_number(double v);

}  // namespace mmembed::plot::detail
