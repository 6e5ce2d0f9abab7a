// The interactive HTML map (issue #20). Its structure read back independently: the JSON data
// block parsed with nlohmann::json (every point's coordinates, label, id, caption, text and
// thumbnail), no network references anywhere in the file, hostile texts escaped. Then the page
// itself in headless Chromium (Debian's `chromium`; these tests skip when it is not installed,
// MMEMBED_CHROMIUM names another binary): the page writes what it shows into the attributes of
// <div id="mm-state"> (points drawn, legend entries, search matches, hidden labels, the view,
// the pinned tooltip, errors), and the state comes from the URL fragment (#search=cat,
// #hide=dog, #view=..., #tip=ID), so --dump-dom shows whether loading, search, the label filter,
// zoom and tooltips work; a driver script added to one page dispatches the events of a user's
// wheel, drag, keys, clicks, typing and hover. Screenshots are decoded and probed for the
// labels' colours; set MMEMBED_HTML_SHOTS=DIR to keep them (MMEMBED_HTML_KEEP=1 keeps the pages).
#include <cairo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "mmembed/error.h"
#include "mmembed/plot.h"
#include "plot/html.h"
#include "plot/layout.h"
#include "test_support.h"
#include "vision/decode.h"

namespace mmembed::plot {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing_support::error_of;

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Image solid(int w, int h, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  Image im;
  im.width = w;
  im.height = h;
  for (int i = 0; i < w * h; ++i) im.rgb.insert(im.rgb.end(), {r, g, b});
  return im;
}

std::string base64_decode(const std::string& s) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const std::size_t d = alphabet.find(c);
    EXPECT_NE(d, std::string::npos) << "not base64: " << c;
    v = (v << 6) | static_cast<unsigned>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((v >> bits) & 0xFF);
    }
  }
  return out;
}

const std::string kDataOpen = "<script type=\"application/json\" id=\"mm-data\">";

// The text of the data block: from its opening tag to the first "</script" after it, as an HTML
// parser ends it.
std::string data_block(const std::string& html) {
  const std::size_t a = html.find(kDataOpen);
  EXPECT_NE(a, std::string::npos);
  if (a == std::string::npos) return {};
  const std::size_t b = lower(html).find("</script", a);
  EXPECT_NE(b, std::string::npos);
  return html.substr(a + kDataOpen.size(), b - a - kDataOpen.size());
}

json page_data(const std::string& html) { return json::parse(data_block(html)); }

ScatterData three_points() {
  ScatterData d;
  d.x = {-2.0, 0.7, 3.0};
  d.y = {10.0, -3.3, 2.0};
  d.categories = {"cat", "motorcycle", "cat"};
  return d;
}

TEST(HtmlJson, StringsAreSafeInsideAScriptElement) {
  EXPECT_EQ(detail::html_json_string("plain"), "\"plain\"");
  EXPECT_EQ(detail::html_json_string("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
  EXPECT_EQ(detail::html_json_string("</script>"), "\"\\u003c\\/script\\u003e\"");
  EXPECT_EQ(detail::html_json_string("<!-- & -->"), "\"\\u003c!-- \\u0026 --\\u003e\"");
  EXPECT_EQ(detail::html_json_string("https://x.example/a.png"),
            "\"https:\\/\\/x.example\\/a.png\"");
  EXPECT_EQ(detail::html_json_string("a\xE2\x80\xA8" "b\xE2\x80\xA9" "c"), "\"a\\u2028b\\u2029c\"");
  // Line breaks and tabs become spaces, other controls go, invalid UTF-8 is U+FFFD.
  EXPECT_EQ(detail::html_json_string("one\ntwo\r\nthree\tfour\x01\x7f"), "\"one two  three four\"");
  EXPECT_EQ(detail::html_json_string("caf\xC3\xA9 \xFF\xC0\xAF"),
            "\"caf\xC3\xA9 \uFFFD\uFFFD\uFFFD\"");
  EXPECT_EQ(detail::html_json_string(std::string("a\0b", 3)), "\"ab\"");
  EXPECT_EQ(detail::html_json_string(""), "\"\"");
  // What nlohmann's parser reads back.
  const std::string tricky = "</script> \"q\" \xE2\x80\xA8 \\";
  EXPECT_EQ(json::parse(detail::html_json_string(tricky)).get<std::string>(), tricky);
}

TEST(HtmlJson, NumbersAreShortestRoundTrips) {
  EXPECT_EQ(detail::json_number(0.0), "0");
  EXPECT_EQ(detail::json_number(-0.0), "-0");
  EXPECT_EQ(detail::json_number(3.0), "3");
  EXPECT_EQ(detail::json_number(0.1), "0.1");
  EXPECT_EQ(detail::json_number(static_cast<double>(0.1f)), "0.1");  // a float: 9 digits at most
  EXPECT_EQ(detail::json_number(static_cast<double>(1.2345678f)), "1.2345678");
  EXPECT_EQ(detail::json_number(0.30000000000000004), "0.30000000000000004");
  EXPECT_EQ(detail::json_number(1.7e308), "1.7e+308");
  EXPECT_EQ(detail::json_number(-1e-320), "-1e-320");
  // Read back: doubles exactly, floats as the same float.
  std::mt19937_64 rng(20);
  std::uniform_real_distribution<double> u(-1e6, 1e6);
  for (int k = 0; k < 1000; ++k) {
    const double v = u(rng);
    const std::string s = detail::json_number(v);
    EXPECT_EQ(json::parse(s).get<double>(), v) << s;
    const float f = static_cast<float>(v);
    const std::string t = detail::json_number(f);
    EXPECT_EQ(std::strtof(t.c_str(), nullptr), f) << t;
    EXPECT_LE(t.size(), 15u) << t;  // 9 significant digits at most, and sign, point, exponent
  }
}

TEST(HtmlPage, DataBlockHoldsEveryPoint) {
  ScatterData d = three_points();
  d.ids = {"img-0", "img-1", ""};
  d.captions = {"chelsea.png", "motorcycle_left.png", "a cat"};
  d.texts = {"left", "", "right"};
  d.thumbnails = {solid(300, 200, 200, 100, 50), Image{}, solid(10, 30, 0, 255, 0)};
  ScatterOptions o;
  o.title = "Hover me";
  o.subtitle = "PCA";
  o.x_label = "PC 1";
  o.legend_title = "label";
  o.hover_thumbnail_size = 64;
  const RenderResult r = render_scatter(d, o, Format::Html);
  const std::string& h = r.bytes;
  EXPECT_EQ(h.rfind("<!DOCTYPE html>\n", 0), 0u);
  EXPECT_NE(h.find("<title>Hover me</title>"), std::string::npos);
  EXPECT_EQ(h.substr(h.size() - 8), "</html>\n");
  // The same counts as the static formats.
  const RenderResult svg = render_scatter(d, o, Format::Svg);
  EXPECT_EQ(r.thumbnails_drawn, 2);
  EXPECT_EQ(r.texts_hidden, svg.texts_hidden);

  const json j = page_data(h);
  const detail::Layout L = detail::compute_layout(d, o);
  EXPECT_EQ(j.at("format"), "mmembed-scatter");
  EXPECT_EQ(j.at("version"), 1);
  EXPECT_EQ(j.at("title"), "Hover me");
  EXPECT_EQ(j.at("subtitle"), "PCA");
  EXPECT_EQ(j.at("x_label"), "PC 1");
  EXPECT_EQ(j.at("y_label"), "");
  EXPECT_EQ(j.at("legend_title"), "label");
  EXPECT_EQ(j.at("point_size_pt"), 6.0);
  EXPECT_EQ(j.at("alpha"), 0.8);
  EXPECT_DOUBLE_EQ(j.at("thumbnail_size_pt").get<double>(), 48 * 72.0 / 100);
  EXPECT_EQ(j.at("x_limits"), json::array({L.x.lo, L.x.hi}));
  EXPECT_EQ(j.at("y_limits"), json::array({L.y.lo, L.y.hi}));
  EXPECT_EQ(j.at("categories"), json::array({"cat", "motorcycle"}));
  EXPECT_EQ(j.at("colours"), json::array({"#023eff", "#ff7c00"}));
  EXPECT_EQ(j.at("x"), json::array({-2.0, 0.7, 3.0}));
  EXPECT_EQ(j.at("y"), json::array({10.0, -3.3, 2.0}));
  EXPECT_EQ(j.at("category"), json::array({0, 1, 0}));
  EXPECT_EQ(j.at("ids"), json::array({"img-0", "img-1", ""}));
  EXPECT_EQ(j.at("captions"), json::array({"chelsea.png", "motorcycle_left.png", "a cat"}));
  EXPECT_EQ(j.at("texts"), json::array({"left", "", "right"}));
  const json& t = j.at("thumbnails");
  ASSERT_EQ(t.size(), 3u);
  // JPEG (base64 of FF D8 FF is "/9j/") at the hover size: 64 px on the longer side, never
  // enlarged. Decoded by the vision layer's libjpeg-turbo reader.
  const std::string prefix = "data:image/jpeg;base64,";
  const std::pair<int, int> want[3] = {{64, 43}, {0, 0}, {10, 30}};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string uri = t[i].get<std::string>();
    if (want[i].first == 0) {
      EXPECT_EQ(uri, "");
      continue;
    }
    ASSERT_EQ(uri.rfind(prefix + "/9j/", 0), 0u) << i;
    const std::string jpeg = base64_decode(uri.substr(prefix.size()));
    const vision::DecodedImage im = vision::decode_image(
        reinterpret_cast<const std::uint8_t*>(jpeg.data()), jpeg.size(), "thumbnail.jpg");
    EXPECT_EQ(im.rgb.dim(1), want[i].first) << i;
    EXPECT_EQ(im.rgb.dim(0), want[i].second) << i;
  }
  // The page: a canvas, the legend, the search box; no SVG markup any more.
  for (const char* id : {"mm-canvas", "mm-legend", "mm-search", "mm-tip", "mm-state", "mm-reset"}) {
    EXPECT_NE(h.find("id=\"" + std::string(id) + "\""), std::string::npos) << id;
  }
  EXPECT_EQ(h.find("<svg"), std::string::npos);
}

TEST(HtmlPage, AbsentFieldsAreEmptyArrays) {
  ScatterData d;
  d.x = {1, 2};
  d.y = {3, 4};
  const json j = page_data(render_scatter(d, {}, Format::Html).bytes);
  for (const char* k : {"categories", "category", "ids", "captions", "texts", "thumbnails"}) {
    EXPECT_EQ(j.at(k), json::array()) << k;
  }
  EXPECT_EQ(j.at("colours"), json::array({"#023eff"}));  // the one colour of every point
  EXPECT_EQ(j.at("thumbnail_size_pt"), 0);
  EXPECT_EQ(j.at("title"), "");
  // Thumbnails given but all empty: none.
  d.thumbnails = {Image{}, Image{}};
  EXPECT_EQ(page_data(render_scatter(d, {}, Format::Html).bytes).at("thumbnails"), json::array());
}

TEST(HtmlPage, IdsAreValidatedLikeTheOtherFields) {
  ScatterData d = three_points();
  d.ids = {"one"};
  EXPECT_NE(error_of<InvalidArgument>([&] { render_scatter(d, {}, Format::Html); })
                .find("ids has 1 entries for 3 points"),
            std::string::npos);
}

// Texts that try to end the script, open a comment, break a JavaScript line, or are not UTF-8.
const std::vector<std::string> kHostile = {
    "</script><script>document.title='pwned'</script>",
    "</SCRIPT >\"'`${1}",
    "<!--<script>",
    "a\xE2\x80\xA8" "b\xE2\x80\xA9" "c",
    "bad \xFF\xFE utf-8 \xC0\xAF",
    "<img src=https://evil.example/x.png onerror=alert(1)>",
    "back\\slash \"quoted\" ]]> &amp; \x01\x1F",
    "multi\nline\r\ncaption",
};

// What the page must show for each of them (the data's policy: valid UTF-8, U+FFFD for bad
// bytes, line breaks as spaces, other controls dropped).
const std::vector<std::string> kHostileShown = {
    "</script><script>document.title='pwned'</script>",
    "</SCRIPT >\"'`${1}",
    "<!--<script>",
    "a\xE2\x80\xA8" "b\xE2\x80\xA9" "c",
    "bad \uFFFD\uFFFD utf-8 \uFFFD\uFFFD",
    "<img src=https://evil.example/x.png onerror=alert(1)>",
    "back\\slash \"quoted\" ]]> &amp; ",
    "multi line  caption",
};

ScatterData hostile_points() {
  ScatterData d;
  for (std::size_t i = 0; i < kHostile.size(); ++i) {
    d.x.push_back(static_cast<double>(i));
    d.y.push_back(static_cast<double>(i % 3));
    d.categories.push_back(i % 2 ? kHostile[i] : "plain");
    d.ids.push_back("id " + kHostile[i]);
    d.captions.push_back(kHostile[i]);
    d.texts.push_back(kHostile[i]);
  }
  d.thumbnails.assign(kHostile.size(), Image{});
  d.thumbnails[0] = solid(40, 30, 250, 20, 20);
  return d;
}

TEST(HtmlPage, HostileTextsAreEscaped) {
  ScatterOptions o;
  o.title = "</title><script>x</script>";
  o.x_label = kHostile[0];
  const std::string h = render_scatter(hostile_points(), o, Format::Html).bytes;
  // Three scripts (the error counter, the data, the map) and nothing else ends one or opens a
  // comment; no JavaScript line terminator anywhere.
  EXPECT_EQ(count(lower(h), "</script"), 3u);
  EXPECT_EQ(count(lower(h), "<script"), 3u);
  EXPECT_EQ(h.find("<!--"), std::string::npos);
  EXPECT_EQ(h.find("\xE2\x80\xA8"), std::string::npos);
  EXPECT_EQ(h.find("\xE2\x80\xA9"), std::string::npos);
  EXPECT_NE(h.find("<title>&lt;/title&gt;&lt;script&gt;x&lt;/script&gt;</title>"),
            std::string::npos);
  // The data block reads back as the sanitized texts, the page is valid UTF-8 throughout.
  const json j = page_data(h);
  ASSERT_EQ(j.at("captions").size(), kHostile.size());
  for (std::size_t i = 0; i < kHostile.size(); ++i) {
    EXPECT_EQ(j.at("captions")[i], kHostileShown[i]) << i;
    EXPECT_EQ(j.at("texts")[i], kHostileShown[i]) << i;
    EXPECT_EQ(j.at("ids")[i], "id " + kHostileShown[i]) << i;
  }
  EXPECT_EQ(j.at("x_label"), kHostileShown[0]);
  EXPECT_NO_THROW((void)json(h).dump());  // the page is valid UTF-8 (else type_error.316)
}

// No network access: no URL, protocol-relative reference or network API in the file, and a
// Content-Security-Policy that allows only inline scripts and styles and data: images. The data
// may hold URLs as text (a caption); they are escaped ("https:\/\/") and never a reference.
TEST(HtmlPage, NoNetworkReferences) {
  ScatterData d = hostile_points();
  d.captions[1] = "see http://example.com/cat and //cdn.example/x.js";
  const std::string h = render_scatter(d, {}, Format::Html).bytes;
  const std::string l = lower(h);
  EXPECT_EQ(l.find("://"), std::string::npos);
  EXPECT_EQ(l.find("url("), std::string::npos);
  EXPECT_EQ(l.find("@import"), std::string::npos);
  for (const char* api : {"fetch(", "xmlhttprequest", "websocket", "eventsource", "sendbeacon",
                          "import(", "<link", "<iframe", "<object", "<embed", "srcset",
                          "window.open", "navigator.", "localstorage", "document.cookie"}) {
    EXPECT_EQ(l.find(api), std::string::npos) << api;
  }
  // src/href/action attributes in the markup: none but data: ones.
  const std::regex ref(R"re(\b(src|href|action|poster|xlink:href)\s*=\s*["']\s*([^"'\s>]*))re",
                       std::regex::icase);
  for (auto it = std::sregex_iterator(h.begin(), h.end(), ref); it != std::sregex_iterator();
       ++it) {
    EXPECT_EQ(lower((*it)[2].str()).rfind("data:", 0), 0u) << (*it)[0].str();
  }
  EXPECT_NE(h.find("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                   "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                   "base-uri 'none'; form-action 'none'\">"),
            std::string::npos);
  // The script sets image sources only to the data's data: URIs.
  EXPECT_NE(h.find("/^data:image\\//.test(D.thumbnails[i])"), std::string::npos);
}

// ---- the page in headless Chromium ------------------------------------------------------------

std::string find_chromium() {
  if (const char* env = std::getenv("MMEMBED_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
      if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return {};
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << p;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A fragment value as the page reads it: percent-encoded UTF-8.
std::string pct(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Serialized attribute or text back to the string (the entities Chromium writes).
std::string unescape(std::string v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    bool done = false;
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"&quot;", "\""},
                                   {"&lt;", "<"}, {"&gt;", ">"}, {"&nbsp;", "\u00a0"},
                                   {"&amp;", "&"}}) {
      if (v.compare(i, from.size(), from) == 0) {
        out += to;
        i += from.size() - 1;
        done = true;
        break;
      }
    }
    if (!done) out += v[i];
  }
  return out;
}

// The attributes of <div id="mm-state"> in a serialized DOM, unescaped (values are quoted with
// '"', which is escaped inside them).
std::map<std::string, std::string> page_state(const std::string& dom) {
  std::map<std::string, std::string> s;
  std::size_t p = dom.find("<div id=\"mm-state\"");
  if (p == std::string::npos) return s;
  p += 5;
  while (p < dom.size() && dom[p] != '>') {
    if (dom[p] == ' ') {
      ++p;
      continue;
    }
    const std::size_t name_end = dom.find_first_of("= >", p);
    if (name_end == std::string::npos) break;
    std::string name = dom.substr(p, name_end - p), value;
    p = name_end;
    if (dom[p] == '=' && p + 1 < dom.size() && dom[p + 1] == '"') {
      const std::size_t close = dom.find('"', p + 2);
      if (close == std::string::npos) break;
      value = unescape(dom.substr(p + 2, close - p - 2));
      p = close + 1;
    }
    if (name.rfind("data-", 0) == 0) s[name.substr(5)] = value;
  }
  return s;
}

// The serialized <div id="mm-tip">...</div> (its children are elements without line breaks).
std::string tooltip_of(const std::string& dom) {
  const std::size_t a = dom.find("<div id=\"mm-tip\"");
  if (a == std::string::npos) return {};
  return dom.substr(a, dom.find('\n', a) - a);
}

std::string pct_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Text as Chromium serializes it in a text node.
std::string dom_text(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') out += "&amp;";
    else if (s[i] == '<') out += "&lt;";
    else if (s[i] == '>') out += "&gt;";
    else if (s.compare(i, 2, "\u00a0") == 0) out += "&nbsp;", ++i;
    else out += s[i];
  }
  return out;
}

class BrowserMap : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = find_chromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "chromium is not installed (Debian: apt-get install chromium, or set "
                      "MMEMBED_CHROMIUM): the HTML map is not checked in a browser";
    }
    dir_ = fs::path(::testing::TempDir()) /
           ("mmembed-html-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (std::getenv("MMEMBED_HTML_KEEP")) {
      std::cout << "kept " << dir_.string() << "\n";
      return;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  fs::path write_page(const std::string& name, const std::string& html) {
    const fs::path p = dir_ / name;
    write_file(p, html);
    return p;
  }

  // Runs Chromium on file://page#fragment; `mode` is "--dump-dom" or "--screenshot=PATH".
  // Returns its stdout; a failure to run is a test failure with its stderr.
  std::string chromium(const fs::path& page, const std::string& fragment, const std::string& mode,
                       int width = 1200, int height = 800, double* seconds = nullptr) {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    const std::string url = "file://" + page.string() + (fragment.empty() ? "" : "#" + fragment);
    const std::string cmd =
        "timeout -k 5 120 " + shell_quote(chromium_) +
        " --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run"
        " --no-default-browser-check --disable-extensions --disable-background-networking"
        " --mute-audio --force-device-scale-factor=1 --user-data-dir=" +
        shell_quote((dir_ / "profile").string()) + " --window-size=" + std::to_string(width) +
        "," + std::to_string(height) + " --virtual-time-budget=5000 " + mode + " " +
        shell_quote(url) + " > " + shell_quote(out.string()) + " 2> " + shell_quote(err.string());
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = std::system(cmd.c_str());
    if (seconds) {
      *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    EXPECT_EQ(rc, 0) << cmd << "\n" << read_file(err);
    return read_file(out);
  }

  std::map<std::string, std::string> state(const fs::path& page, const std::string& fragment,
                                           std::string* dom = nullptr, int width = 1200,
                                           int height = 800) {
    const std::string d = chromium(page, fragment, "--dump-dom", width, height);
    if (dom) *dom = d;
    auto s = page_state(d);
    EXPECT_EQ(s["ready"], "1") << "the map's script did not finish; DOM:\n" << d.substr(0, 2000);
    EXPECT_EQ(s["errors"], "0") << s["error"];
    return s;
  }

  // Where screenshots go: MMEMBED_HTML_SHOTS if set (kept), else the test's folder.
  fs::path shot_path(const std::string& name) {
    if (const char* keep = std::getenv("MMEMBED_HTML_SHOTS"); keep && *keep) {
      fs::create_directories(keep);
      return fs::path(keep) / name;
    }
    return dir_ / name;
  }

  std::string chromium_;
  fs::path dir_;
};

// 60 points in three clusters far apart: 30 cats around (0, 0), 20 dogs around (10, 0), 10
// motorcycles around (5, 10); ids "img-00".."img-59"; a few captions say "Cat" in capitals.
struct Zoo {
  ScatterData d;
  std::size_t cats = 30, dogs = 20, motorcycles = 10;
};

Zoo zoo() {
  Zoo z;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const char* labels[3] = {"cat", "dog", "motorcycle"};
  const double cx[3] = {0, 10, 5}, cy[3] = {0, 0, 10};
  const std::size_t sizes[3] = {z.cats, z.dogs, z.motorcycles};
  std::size_t row = 0;
  for (int c = 0; c < 3; ++c) {
    for (std::size_t k = 0; k < sizes[c]; ++k, ++row) {
      z.d.x.push_back(cx[c] + u(rng));
      z.d.y.push_back(cy[c] + u(rng));
      z.d.categories.push_back(labels[c]);
      char id[16];
      std::snprintf(id, sizeof(id), "img-%02zu", row);
      z.d.ids.push_back(id);
      const bool capital = k % 5 == 0 && c == 0;
      z.d.captions.push_back("a photo of a " + std::string(capital ? "Cat" : labels[c]) + " #" +
                             std::to_string(k));
    }
  }
  z.d.thumbnails.assign(row, Image{});
  z.d.thumbnails[3] = solid(60, 40, 230, 30, 30);
  z.d.thumbnails[35] = solid(40, 60, 30, 30, 230);
  return z;
}

TEST_F(BrowserMap, LoadsWithoutErrorsAndDrawsEveryPoint) {
  Zoo z = zoo();
  ScatterOptions o;
  o.title = "A zoo";
  o.legend_title = "label";
  const fs::path page = write_page("zoo.html", render_scatter(z.d, o, Format::Html).bytes);
  std::string dom;
  auto s = state(page, "", &dom);
  EXPECT_EQ(s["points"], "60");
  EXPECT_EQ(s["drawn"], "60");
  EXPECT_EQ(s["shown"], "60");
  EXPECT_EQ(s["legend"], "3");
  EXPECT_EQ(s["hidden"], "");
  EXPECT_EQ(s["matches"], "");
  EXPECT_EQ(s["thumbs"], "2");  // both decoded and drawn
  EXPECT_EQ(s["tip"], "");
  EXPECT_NE(dom.find("<h1 id=\"mm-title\">A zoo</h1>"), std::string::npos);
  EXPECT_NE(dom.find("<span id=\"mm-count\" aria-live=\"polite\">60 points</span>"),
            std::string::npos);
  // Legend entries with their counts, all shown.
  for (const auto& [name, n] :
       {std::pair<std::string, int>{"cat", 30}, {"dog", 20}, {"motorcycle", 10}}) {
    const std::string entry = "<span class=\"mm-name\">" + name + "</span><span class=\"mm-n\"";
    const std::size_t at = dom.find(entry);
    ASSERT_NE(at, std::string::npos) << name;
    const std::size_t gt = dom.find('>', at + entry.size());
    EXPECT_EQ(dom.compare(gt, std::to_string(n).size() + 8, ">" + std::to_string(n) + "</span>"), 0)
        << dom.substr(at, 200);
  }
  EXPECT_EQ(count(dom, "class=\"mm-entry\" title=\"Click: hide or show; shift-click: show only "
                       "this label\" aria-pressed=\"true\""),
            3u);
  // The canvas fills the space the header, legend and hint leave, in a window of any size.
  auto size = [](const std::string& wxh) {
    return std::pair<int, int>(std::stoi(wxh), std::stoi(wxh.substr(wxh.find('x') + 1)));
  };
  const auto [w, h] = size(s["canvas-size"]);
  EXPECT_GT(w, 900);
  EXPECT_LT(w, 1200);
  EXPECT_GT(h, 250);
  s = state(page, "", nullptr, 1600, 1000);
  const auto [w2, h2] = size(s["canvas-size"]);
  EXPECT_EQ(w2 - w, 400);
  EXPECT_EQ(h2 - h, 200);
}

TEST_F(BrowserMap, SearchFromTheFragmentCountsCaseInsensitiveMatches) {
  Zoo z = zoo();
  const fs::path page = write_page("zoo.html", render_scatter(z.d, {}, Format::Html).bytes);
  // Expected: ids, captions (texts) containing the query, case-insensitively.
  auto expected = [&](const std::string& q) {
    std::size_t m = 0;
    for (std::size_t i = 0; i < z.d.x.size(); ++i) {
      m += lower(z.d.ids[i] + "\n" + z.d.captions[i]).find(lower(q)) != std::string::npos;
    }
    return m;
  };
  ASSERT_EQ(expected("CAT"), 30u);  // every cat's caption, 6 of them with "Cat"
  std::string dom;
  auto s = state(page, "search=CAT", &dom);
  EXPECT_EQ(s["query"], "cat");
  EXPECT_EQ(s["matches"], std::to_string(expected("CAT")));
  EXPECT_EQ(s["matches-hidden"], "0");
  EXPECT_EQ(s["drawn"], "60");  // the others are dimmed, not removed
  EXPECT_NE(dom.find(">" + std::to_string(expected("CAT")) + " matches<"), std::string::npos);
  // By id; a query over two fields' boundary matches nothing.
  s = state(page, "search=img-4");
  EXPECT_EQ(s["matches"], std::to_string(expected("img-4")));
  EXPECT_EQ(s["matches"], "10");
  s = state(page, "search=" + pct("photo of a dog #1"));
  EXPECT_EQ(s["matches"], std::to_string(expected("photo of a dog #1")));
  EXPECT_EQ(s["matches"], "11");  // #1 and #10..#19
  s = state(page, "search=zebra");
  EXPECT_EQ(s["matches"], "0");
  // Matches in hidden labels are counted apart.
  s = state(page, "search=dog&hide=dog");
  EXPECT_EQ(s["matches"], "0");
  EXPECT_EQ(s["matches-hidden"], "20");
}

TEST_F(BrowserMap, LabelFilterFromTheFragment) {
  Zoo z = zoo();
  const fs::path page = write_page("zoo.html", render_scatter(z.d, {}, Format::Html).bytes);
  std::string dom;
  auto s = state(page, "hide=motorcycle", &dom);
  EXPECT_EQ(s["hidden"], "motorcycle");
  EXPECT_EQ(s["shown"], "50");
  EXPECT_EQ(s["drawn"], "50");
  EXPECT_EQ(s["legend"], "3");
  EXPECT_EQ(count(dom, "aria-pressed=\"false\"><span class=\"mm-dot\""), 1u);
  EXPECT_EQ(count(dom, "aria-pressed=\"true\"><span class=\"mm-dot\""), 2u);
  EXPECT_NE(dom.find(">60 points (50 shown)<"), std::string::npos);
  s = state(page, "hide=motorcycle,dog");
  EXPECT_EQ(s["hidden"], "dog,motorcycle");
  EXPECT_EQ(s["drawn"], "30");
  s = state(page, "only=dog");
  EXPECT_EQ(s["hidden"], "cat,motorcycle");
  EXPECT_EQ(s["drawn"], "20");
  s = state(page, "hide=no-such-label");
  EXPECT_EQ(s["drawn"], "60");
}

TEST_F(BrowserMap, ZoomedViewFromTheFragmentDrawsWhatIsInside) {
  Zoo z = zoo();
  const fs::path page = write_page("zoo.html", render_scatter(z.d, {}, Format::Html).bytes);
  // Around the dogs' cluster only (x 9..11, y -1..1), with room to spare.
  auto s = state(page, "view=7.5,12.5,-2.5,2.5");
  EXPECT_EQ(s["drawn"], "20");
  EXPECT_EQ(s["view"], "7.5,12.5,-2.5,2.5");
  s = state(page, "view=-3,13,-3,3");  // cats and dogs
  EXPECT_EQ(s["drawn"], "50");
  s = state(page, "view=nonsense");  // ignored: everything
  EXPECT_EQ(s["drawn"], "60");
}

TEST_F(BrowserMap, TooltipShowsIdCaptionLabelAndPicture) {
  Zoo z = zoo();
  const fs::path page = write_page("zoo.html", render_scatter(z.d, {}, Format::Html).bytes);
  std::string dom;
  auto s = state(page, "tip=img-03", &dom);
  EXPECT_EQ(s["tip"], "img-03");
  const std::string t = tooltip_of(dom);
  ASSERT_FALSE(t.empty()) << dom.substr(0, 3000);
  EXPECT_EQ(t.find(" hidden"), std::string::npos) << t;
  EXPECT_NE(t.find("<div class=\"mm-id\">img-03</div>"), std::string::npos) << t;
  EXPECT_NE(t.find("<div class=\"mm-cap\">a photo of a cat #3</div>"), std::string::npos) << t;
  EXPECT_NE(t.find("</span>cat</div>"), std::string::npos) << t;  // the label after its dot
  EXPECT_NE(t.find("<img alt=\"picture of img-03\" src=\"data:image/jpeg;base64,/9j/"),
            std::string::npos)
      << t;
  // A point without a picture, and without ids: the row number.
  z.d.ids.clear();
  const fs::path bare = write_page("bare.html", render_scatter(z.d, {}, Format::Html).bytes);
  s = state(bare, "tip=41", &dom);
  EXPECT_EQ(s["tip"], "#41");
  EXPECT_NE(dom.find("<div class=\"mm-id\">#41</div>"), std::string::npos);
  EXPECT_NE(dom.find("<div class=\"mm-cap\">a photo of a dog #11</div>"), std::string::npos);
  // A tooltip of a hidden label's point is not shown.
  s = state(bare, "tip=41&hide=dog");
  EXPECT_EQ(s["tip"], "");
}

TEST_F(BrowserMap, HostileTextsAreShownAsText) {
  ScatterOptions o;
  o.title = kHostile[0];
  const fs::path page =
      write_page("hostile.html", render_scatter(hostile_points(), o, Format::Html).bytes);
  for (std::size_t i = 0; i < kHostile.size(); ++i) {
    SCOPED_TRACE(i);
    std::string dom;
    auto s = state(page, "tip=" + pct("id " + kHostileShown[i]), &dom);
    EXPECT_EQ(s["points"], std::to_string(kHostile.size()));
    EXPECT_EQ(s["tip"], "id " + kHostileShown[i]);
    const std::string t = tooltip_of(dom);
    EXPECT_NE(t.find("<div class=\"mm-id\">" + dom_text("id " + kHostileShown[i]) + "</div>"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("<div class=\"mm-cap\">" + dom_text(kHostileShown[i]) + "</div>"),
              std::string::npos)
        << t;
    // The title's script never ran: the document's title is the text.
    EXPECT_NE(dom.find("<title>" + dom_text(kHostileShown[0]) + "</title>"), std::string::npos);
    EXPECT_NE(dom.find("<h1 id=\"mm-title\">" + dom_text(kHostileShown[0]) + "</h1>"),
              std::string::npos);
  }
  // Searching for a text that holds "</script>" finds its point.
  auto s = state(page, "search=" + pct("</script>"));
  EXPECT_EQ(s["matches"], "1");
  s = state(page, "search=" + pct("\uFFFD"));
  EXPECT_EQ(s["matches"], "1");
  s = state(page, "search=" + pct("line  caption"));
  EXPECT_EQ(s["matches"], "1");
  // A label that is hostile text is hidden by its (percent-encoded) name.
  s = state(page, "hide=" + pct(kHostileShown[1]));
  EXPECT_EQ(pct_decode(s["hidden"]), kHostileShown[1]);
  EXPECT_EQ(s["shown"], std::to_string(kHostile.size() - 1));
  EXPECT_EQ(s["legend"], "5");
}

// ---- interactions ------------------------------------------------------------------------------

// A test driver added to the page (after the map's script): it dispatches the events a user's
// wheel, drag, double-click, keys, legend clicks, typing, hover and click would, and a resize,
// and writes what the page shows after each into data-t-* attributes of #mm-state.
constexpr const char* kDriver = R"js(<script>
(async () => {
  const st = document.getElementById('mm-state');
  const get = (k) => st.getAttribute('data-' + k);
  const put = (k, v) => st.setAttribute('data-t-' + k, String(v));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const frame = () => sleep(150);  // the page draws within a frame or 100 ms
  const plot = document.getElementById('mm-plot');
  const view = () => get('view').split(',').map(Number);
  const P = () => get('plot').split(',').map(Number);
  const pointer = (type, x, y, down) => plot.dispatchEvent(new PointerEvent(type, {
    pointerId: 7, pointerType: 'mouse', isPrimary: true, button: 0, buttons: down ? 1 : 0,
    clientX: x, clientY: y, bubbles: true, cancelable: true}));
  try {
    await frame();
    const box = plot.getBoundingClientRect();
    const [px, py, pw, ph] = P();
    const home = get('view'), v0 = view();
    // The data under the page's pixel (x, y) in the current view and frame; how far (in pixels
    // of the frame) the data under (x, y) before is from what is under it now.
    const under = (x, y) => {
      const v = view(), [qx, qy, qw, qh] = P();
      return [v[0] + (x - box.left - qx) / qw * (v[1] - v[0]),
              v[3] - (y - box.top - qy) / qh * (v[3] - v[2])];
    };
    const moved = (a, b) => {
      const v = view(), [, , qw, qh] = P();
      return Math.hypot((a[0] - b[0]) / (v[1] - v[0]) * qw,
                        (a[1] - b[1]) / (v[3] - v[2]) * qh).toFixed(2);
    };
    // Wheel about a point a quarter from the left, 40% from the top: the data under it stays.
    // (Whole pixels: Chromium truncates a synthetic event's clientX and clientY.)
    const cx = Math.round(box.left + px + 0.25 * pw), cy = Math.round(box.top + py + 0.4 * ph);
    const a = under(cx, cy);
    plot.dispatchEvent(new WheelEvent('wheel', {deltaY: -500, clientX: cx, clientY: cy,
                                                 bubbles: true, cancelable: true}));
    await frame();
    const v1 = view();
    put('zoom-x', ((v0[1] - v0[0]) / (v1[1] - v1[0])).toFixed(3));
    put('zoom-y', ((v0[3] - v0[2]) / (v1[3] - v1[2])).toFixed(3));
    put('zoom-moved', moved(a, under(cx, cy)));
    // Drag 100 px right and 40 px down: what was under the pointer is under it still.
    const b = under(cx, cy);
    pointer('pointerdown', cx, cy, true);
    pointer('pointermove', cx + 50, cy + 10, true);
    pointer('pointermove', cx + 100, cy + 40, true);
    pointer('pointerup', cx + 100, cy + 40, false);
    await frame();
    put('pan-moved', moved(b, under(cx + 100, cy + 40)));
    put('pan-dx', ((v1[0] - view()[0]) / (v1[1] - v1[0]) * pw).toFixed(0));
    put('pan-tip', get('tip'));  // a drag pins nothing
    plot.dispatchEvent(new MouseEvent('dblclick', {clientX: cx, clientY: cy, bubbles: true,
                                                   cancelable: true}));
    await frame();
    put('dblclick-home', get('view') === home ? 1 : 0);
    document.dispatchEvent(new KeyboardEvent('keydown', {key: '+', bubbles: true}));
    await frame();
    put('key-zoom', ((v0[1] - v0[0]) / (view()[1] - view()[0])).toFixed(3));
    document.getElementById('mm-reset').click();
    await frame();
    put('reset-home', get('view') === home ? 1 : 0);
    // Two fingers 100 px apart move to 200 px apart: twice the zoom.
    const touch = (type, id, x, y) => plot.dispatchEvent(new PointerEvent(type, {
      pointerId: id, pointerType: 'touch', isPrimary: id === 11, button: 0, buttons: 1,
      clientX: x, clientY: y, bubbles: true, cancelable: true}));
    touch('pointerdown', 11, cx - 50, cy);
    touch('pointerdown', 12, cx + 50, cy);
    touch('pointermove', 12, cx + 150, cy);
    touch('pointerup', 12, cx + 150, cy);
    touch('pointerup', 11, cx - 50, cy);
    await frame();
    put('pinch', ((v0[1] - v0[0]) / (view()[1] - view()[0])).toFixed(3) + '/' + get('tip'));
    document.getElementById('mm-reset').click();
    await frame();
    // Legend: click toggles, shift-click and "only" show only one, "all" shows all again.
    const entries = document.querySelectorAll('.mm-entry');
    const click = async (el, shift) => {
      el.dispatchEvent(new MouseEvent('click', {shiftKey: !!shift, bubbles: true,
                                                cancelable: true}));
      await frame();
      return get('hidden') + '/' + get('drawn');
    };
    put('legend-click', await click(entries[1]));
    put('legend-click-again', await click(entries[1]));
    put('legend-shift', await click(entries[0], true));
    put('legend-shift-again', await click(entries[0], true));
    put('legend-only', await click(document.querySelectorAll('.mm-only')[2]));
    put('legend-none', await click(document.getElementById('mm-none')));
    put('legend-all', await click(document.getElementById('mm-all')));
    // Typing in the search box, Enter zooms to the matches, the fragment follows.
    const search = document.getElementById('mm-search');
    search.value = 'Dog';
    search.dispatchEvent(new Event('input', {bubbles: true}));
    await sleep(50);
    await frame();
    put('search', get('matches') + '/' + document.getElementById('mm-count').textContent);
    search.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
    await frame();
    put('enter-drawn', get('drawn'));
    await sleep(400);
    put('hash', decodeURIComponent(location.hash).split('&')[0]);
    search.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));
    await frame();
    put('escape', get('query') + '/' + get('matches'));
    document.getElementById('mm-reset').click();
    await frame();
    // Hover over img-45 (a dog) at its place on the screen; click pins it; Escape unpins.
    const D = JSON.parse(document.getElementById('mm-data').textContent);
    const i = D.ids.indexOf('img-45'), v = view(), [qx, qy, qw, qh] = P();
    const sx = Math.round(box.left + qx + (D.x[i] - v[0]) / (v[1] - v[0]) * qw);
    const sy = Math.round(box.top + qy + (v[3] - D.y[i]) / (v[3] - v[2]) * qh);
    pointer('pointermove', sx, sy, false);
    await frame();
    put('hover', get('tip') + '/' + document.querySelector('#mm-tip .mm-cap').textContent);
    pointer('pointermove', box.left + qx + 2, box.top + qy + 2, false);  // a corner: nothing
    await frame();
    put('hover-off', get('tip'));
    pointer('pointermove', sx, sy, false);
    pointer('pointerdown', sx, sy, true);
    pointer('pointerup', sx, sy, false);
    plot.dispatchEvent(new PointerEvent('pointerleave', {pointerId: 7, bubbles: false}));
    await frame();
    put('pinned', get('tip'));
    await sleep(400);
    put('pinned-hash', decodeURIComponent(location.hash));
    document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));
    await frame();
    put('unpinned', get('tip'));
    // The map follows its container's size.
    const before = get('canvas-size');
    document.getElementById('mm-app').style.width = '700px';
    window.dispatchEvent(new Event('resize'));  // headless Chromium runs no ResizeObserver here
    await frame();
    put('resized', before + ' -> ' + get('canvas-size'));
    put('done', 1);
  } catch (err) {
    put('failed', err && err.stack || err);
  }
})();
</script>
)js";

TEST_F(BrowserMap, InteractionsWork) {
  Zoo z = zoo();
  std::string html = render_scatter(z.d, {}, Format::Html).bytes;
  html.insert(html.rfind("</body>"), kDriver);
  const fs::path page = write_page("driven.html", html);
  auto s = state(page, "");
  std::string got;
  for (const auto& [k, v] : s) got += k + "=" + v + "\n";
  ASSERT_EQ(s["t-done"], "1") << s["t-failed"] << "\n" << got;
  EXPECT_EQ(s["t-zoom-x"], "2.718");  // e^(500/500)
  EXPECT_EQ(s["t-zoom-y"], "2.718");
  EXPECT_LT(std::stod(s["t-zoom-moved"]), 0.05);
  EXPECT_LT(std::stod(s["t-pan-moved"]), 0.05);
  EXPECT_NEAR(std::stod(s["t-pan-dx"]), 100, 3);  // the frame may have moved a pixel or two
  EXPECT_EQ(s["t-pan-tip"], "");
  EXPECT_EQ(s["t-dblclick-home"], "1");
  EXPECT_EQ(s["t-key-zoom"], "1.500");
  EXPECT_EQ(s["t-reset-home"], "1");
  EXPECT_EQ(s["t-pinch"], "2.000/");  // and no tooltip pinned by the fingers
  EXPECT_EQ(s["t-legend-click"], "dog/40");
  EXPECT_EQ(s["t-legend-click-again"], "/60");
  EXPECT_EQ(s["t-legend-shift"], "dog,motorcycle/30");
  EXPECT_EQ(s["t-legend-shift-again"], "/60");
  EXPECT_EQ(s["t-legend-only"], "cat,dog/10");
  EXPECT_EQ(s["t-legend-none"], "cat,dog,motorcycle/0");
  EXPECT_EQ(s["t-legend-all"], "/60");
  EXPECT_EQ(s["t-search"], "20/20 matches");
  EXPECT_EQ(s["t-enter-drawn"], "20");  // zoomed to the dogs' cluster
  EXPECT_EQ(s["t-hash"], "#search=Dog");
  EXPECT_EQ(s["t-escape"], "/");
  EXPECT_EQ(s["t-hover"], "img-45/a photo of a dog #15");
  EXPECT_EQ(s["t-hover-off"], "");
  EXPECT_EQ(s["t-pinned"], "img-45");
  EXPECT_EQ(s["t-pinned-hash"], "#tip=img-45");
  EXPECT_EQ(s["t-unpinned"], "");
  const std::string resized = s["t-resized"];
  const std::size_t arrow = resized.find(" -> ");
  ASSERT_NE(arrow, std::string::npos) << resized;
  EXPECT_GT(std::stoi(resized), 900) << resized;
  EXPECT_LT(std::stoi(resized.substr(arrow + 4)), 700) << resized;
}

// ---- screenshots ------------------------------------------------------------------------------

struct Png {
  int width = 0, height = 0;
  std::vector<std::uint32_t> px;  // ARGB
};

Png decode_png(const fs::path& path) {
  Png p;
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  EXPECT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS) << path;
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(s);
    p.width = cairo_image_surface_get_width(s);
    p.height = cairo_image_surface_get_height(s);
    const int stride = cairo_image_surface_get_stride(s);
    const unsigned char* data = cairo_image_surface_get_data(s);
    for (int y = 0; y < p.height; ++y) {
      const auto* row = reinterpret_cast<const std::uint32_t*>(data + y * stride);
      p.px.insert(p.px.end(), row, row + p.width);
    }
  }
  cairo_surface_destroy(s);
  return p;
}

// Pixels in columns [x0, x1) that show colour `c` drawn with opacity 1 or `alpha` over white.
std::size_t pixels_of(const Png& png, Rgb c, double alpha, int x0, int x1) {
  std::size_t k = 0;
  for (int y = 0; y < png.height; ++y) {
    for (int x = std::max(0, x0); x < std::min(png.width, x1); ++x) {
      const std::uint32_t v = png.px[static_cast<std::size_t>(y) * png.width + x];
      const int r = (v >> 16) & 255, g = (v >> 8) & 255, b = v & 255;
      for (double a : {1.0, alpha}) {
        auto near = [a](int got, int want) {
          return std::abs(got - (a * want + (1 - a) * 255)) <= 10;
        };
        if (near(r, c.r) && near(g, c.g) && near(b, c.b)) {
          ++k;
          break;
        }
      }
    }
  }
  return k;
}

// A map worth looking at: 600 points in four labelled clusters (cat, dog, motorcycle, bird),
// captions, a few texts beside points and eight pictures (gradients in colours far from the
// palette's, so that the colour probes below see only markers).
ScatterData gallery() {
  ScatterData d;
  std::mt19937 rng(20);
  std::normal_distribution<double> g(0.0, 1.0);
  const char* labels[4] = {"cat", "dog", "motorcycle", "bird"};
  const double cx[4] = {-4, 3, 0, 5}, cy[4] = {1, 3, -4, -2};
  const double spread[4] = {1.3, 1.0, 1.5, 0.8};
  const int sizes[4] = {220, 180, 120, 80};
  for (int c = 0; c < 4; ++c) {
    for (int k = 0; k < sizes[c]; ++k) {
      d.x.push_back(cx[c] + spread[c] * g(rng));
      d.y.push_back(cy[c] + spread[c] * g(rng));
      d.categories.push_back(labels[c]);
      d.ids.push_back(std::string(labels[c]) + "-" + std::to_string(k) + ".jpg");
      const char* where = k % 7 == 0 ? " on a sofa" : k % 7 == 1 ? " in the grass" : " outdoors";
      d.captions.push_back("a photo of a " + std::string(labels[c]) + where);
      d.texts.push_back(k < 3 ? std::string(labels[c]) + " " + std::to_string(k) : "");
    }
  }
  d.thumbnails.assign(d.x.size(), Image{});
  for (int t = 0; t < 8; ++t) {
    Image im;
    im.width = 64;
    im.height = 48;
    for (int y = 0; y < im.height; ++y) {
      for (int x = 0; x < im.width; ++x) {
        im.rgb.insert(im.rgb.end(), {static_cast<std::uint8_t>(70 + 10 * t + x),
                                     static_cast<std::uint8_t>(80 + 2 * y),
                                     static_cast<std::uint8_t>(130 + 8 * t)});
      }
    }
    d.thumbnails[static_cast<std::size_t>(t) * 75 + 10] = im;
  }
  return d;
}

TEST_F(BrowserMap, ScreenshotsShowTheLabelsSearchFilterAndZoom) {
  const ScatterData d = gallery();
  ScatterOptions o;
  o.title = "Photos by label (UMAP)";
  o.subtitle = "trustworthiness@10 0.957 \u00b7 continuity@10 0.960";
  o.x_label = "UMAP 1";
  o.y_label = "UMAP 2";
  o.legend_title = "label";
  const fs::path page = write_page("gallery.html", render_scatter(d, o, Format::Html).bytes);
  const int w = 1280, h = 800, plot_right = w - 330;  // the legend is at most 320 px wide
  const Rgb cat = palette_colour(0), dog = palette_colour(1), motorcycle = palette_colour(2);
  struct Shot {
    std::string name, fragment;
  };
  const std::vector<Shot> shots = {{"map-full.png", ""},
                                   {"map-search.png", "search=grass"},
                                   {"map-filtered.png", "hide=dog"},
                                   {"map-zoomed.png", "view=-7,-1,-2,4&tip=cat-10.jpg"},
                                   {"map-search-dog.png", "search=dog"}};
  std::map<std::string, Png> png;
  for (const Shot& s : shots) {
    const fs::path path = shot_path(s.name);
    fs::remove(path);
    chromium(page, s.fragment, "--screenshot=" + path.string(), w, h);
    png[s.name] = decode_png(path);
    EXPECT_EQ(png[s.name].width, w) << s.name;
    EXPECT_EQ(png[s.name].height, h) << s.name;
  }
  // Every label's colour in the map; none of the dogs' once they are hidden (their legend dot
  // is hollow then), and when zoomed on the cats, cats but no dog.
  const Png& full = png["map-full.png"];
  for (Rgb c : {cat, dog, motorcycle}) EXPECT_GT(pixels_of(full, c, o.alpha, 0, plot_right), 300u);
  EXPECT_EQ(pixels_of(png["map-filtered.png"], dog, o.alpha, 0, w), 0u);
  EXPECT_GT(pixels_of(png["map-filtered.png"], cat, o.alpha, 0, plot_right), 300u);
  EXPECT_GT(pixels_of(png["map-zoomed.png"], cat, o.alpha, 0, plot_right), 300u);
  EXPECT_EQ(pixels_of(png["map-zoomed.png"], dog, o.alpha, 0, plot_right), 0u);
  // Searching "dog": the dogs stand out in their full colour, the others are dimmed.
  EXPECT_GT(pixels_of(png["map-search-dog.png"], dog, 1.0, 0, plot_right), 300u);
  EXPECT_LT(pixels_of(png["map-search-dog.png"], cat, o.alpha, 0, plot_right), 20u);
}

// ---- 50,000 points ----------------------------------------------------------------------------

TEST_F(BrowserMap, FiftyThousandPointsLoadAndSearch) {
  constexpr int kN = 50000;
  ScatterData d;
  std::mt19937 rng(50);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int i = 0; i < kN; ++i) {
    const int c = i % 12;
    d.x.push_back(static_cast<float>(std::cos(c * 0.52) * 8 + g(rng)));  // float values, as UMAP's
    d.y.push_back(static_cast<float>(std::sin(c * 0.52) * 8 + g(rng)));
    d.categories.push_back("class " + std::to_string(c));
    char id[16];
    std::snprintf(id, sizeof(id), "item-%05d", i);
    d.ids.push_back(id);
    d.captions.push_back("a photo of class " + std::to_string(c) + ", number " + std::to_string(i));
  }
  ScatterOptions o;
  o.point_size = 4;
  o.title = "50,000 points";
  const auto t0 = std::chrono::steady_clock::now();
  const std::string html = render_scatter(d, o, Format::Html).bytes;
  const double render_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const fs::path page = write_page("50k.html", html);
  double seconds = 0;
  const std::string dom = chromium(page, "search=number%201234", "--dump-dom", 1280, 800, &seconds);
  auto s = page_state(dom);
  EXPECT_EQ(s["errors"], "0") << s["error"];
  EXPECT_EQ(s["points"], "50000");
  EXPECT_EQ(s["drawn"], "50000");
  EXPECT_EQ(s["legend"], "12");
  EXPECT_EQ(s["matches"], "11");  // "number 1234" and "number 12340" to "number 12349"
  std::cout << "[ html map ] " << kN << " points: " << html.size() << " bytes, rendered in "
            << render_s << " s; chromium --dump-dom " << seconds
            << " s; in the page: JSON parsed in " << s["parse-ms"] << " ms, first draw done at "
            << s["load-ms"] << " ms, a draw takes "
            << s["draw-ms"] << " ms\n";
  RecordProperty("html_bytes", static_cast<int>(html.size()));
  EXPECT_LT(html.size(), 6u << 20);
}

}  // namespace
}  // namespace mmembed::plot
