// mmembed plot IN.csv -o OUT.png|svg|pdf|html [--title T] [--x-label L] [--y-label L] ...
// IN.csv is what `mmembed reduce` writes (header x,y[,z][,label]); its OUT.quality.json beside it,
// when present, gives the metrics line under the title and the axis names.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/check.h"
#include "core/file.h"
#include "core/output_file.h"
#include "io/matrix.h"
#include "mmembed/plot.h"
#include "vision/decode.h"

namespace mmembed::cli {
namespace {

struct PlotCliOptions {
  std::string input, out, title, x_label, y_label;
  std::string x_column = "x", y_column = "y", labels_column = "label", text_column,
              caption_column, thumbnails, thumbnail_column, quality, id_column;
  bool no_quality = false, no_legend = false, labels_column_given = false, json = false;
  double point_size = 6.0, alpha = 0.8;
  int width = 900, height = 700, dpi = 100, thumbnail_size = 48;
};

struct CsvRecord {
  std::int64_t line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// RFC 4180 CSV: quoted fields may hold commas, "" and newlines; CRLF accepted; blank lines skipped.
std::vector<CsvRecord> read_csv(const std::string& path) {
  std::string text = read_input_file(path, kMaxTextDataFileBytes);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte order mark
  std::vector<CsvRecord> records;
  CsvRecord rec;
  std::string field;
  bool quoted = false, field_started = false;
  std::int64_t line = 1, quote_line = 0;
  rec.line = 1;
  auto end_record = [&] {
    if (!(rec.fields.empty() && field.empty() && !field_started)) {
      rec.fields.push_back(std::move(field));
      records.push_back(std::move(rec));
    }
    rec = CsvRecord{};
    field.clear();
    field_started = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = true;
      field_started = true;
      quote_line = line;
    } else if (c == ',') {
      rec.fields.push_back(std::move(field));
      field.clear();
      field_started = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      rec.line = ++line;
    } else {
      field += c;
      field_started = true;
    }
  }
  MMEMBED_CHECK(!quoted, FormatError, path, ": line ", quote_line,
                ": quoted field is not closed before the end of the file");
  end_record();
  return records;
}

double parse_number(const std::string& s, const std::string& path, std::int64_t line,
                    const std::string& column) {
  const char* begin = s.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  bool ok = end != begin;
  for (const char* p = end; ok && *p; ++p) ok = *p == ' ' || *p == '\t';
  MMEMBED_CHECK(ok, FormatError, path, ": line ", line, ", column '", escape_for_message(column),
                "': '", escape_for_message(s), "' is not a number");
  // strtod gives HUGE_VAL for a finite decimal past double's range (1e400): say so, rather than
  // calling the value written in the file infinite.
  const bool spelled_non_finite = s.find_first_of("iInN") != std::string::npos;
  MMEMBED_CHECK(std::isfinite(v), FormatError, path, ": line ", line, ", column '",
                escape_for_message(column), "': value ", escape_for_message(s),
                spelled_non_finite ? " is not finite" : " is out of range (beyond double)");
  return v;
}


std::string fixed(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// The metrics line and axis names from `mmembed reduce`'s OUT.quality.json.
struct QualityInfo {
  std::string subtitle, x_name, y_name;
};

QualityInfo read_quality(const std::string& path, const std::string& x_column,
                         const std::string& y_column) {
  const std::string text = read_input_file(path, kMaxConfigFileBytes);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(str_cat(path, ": not valid JSON (", e.what(), ")"));
  }
  QualityInfo q;
  const std::string method = j.value("method", "");
  const std::string name = method == "pca"    ? "PC"
                           : method == "tsne" ? "t-SNE"
                           : method == "umap" ? "UMAP"
                                              : "";
  std::vector<std::string> parts;
  if (!name.empty()) parts.push_back(method == "pca" ? "PCA" : name);
  if (j.contains("quality") && j["quality"].contains("by_k") && j["quality"]["by_k"].is_array() &&
      !j["quality"]["by_k"].empty()) {
    const nlohmann::json& by_k = j["quality"]["by_k"];
    nlohmann::json pick = by_k.front();
    for (const auto& e : by_k) {
      if (e.value("k", 0) == 10) pick = e;
    }
    const std::string k = std::to_string(pick.value("k", 0));
    auto metric = [&](const char* key, const char* label) {
      if (pick.contains(key) && pick[key].is_number()) {
        parts.push_back(str_cat(label, "@", k, " ", fixed(pick[key].get<double>(), 3)));
      }
    };
    metric("trustworthiness", "trustworthiness");
    metric("continuity", "continuity");
    metric("knn_preservation", "kNN");
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) q.subtitle += " \u00b7 ";
    q.subtitle += parts[i];
  }
  // Axis names: "PC 1 (52.3%)" from the explained variance ratios; "UMAP 1", "t-SNE 2".
  if (!name.empty()) {
    std::vector<double> evr;
    if (method == "pca" && j.contains("pca") && j["pca"].contains("explained_variance_ratio")) {
      for (const auto& v : j["pca"]["explained_variance_ratio"]) {
        evr.push_back(v.is_number() ? v.get<double>() : NAN);
      }
    }
    auto axis = [&](const std::string& column) -> std::string {
      int idx = column == "x" ? 0 : column == "y" ? 1 : column == "z" ? 2 : -1;
      if (idx < 0 && column.size() > 1 && column[0] == 'c') idx = std::atoi(column.c_str() + 1) - 1;
      if (idx < 0) return "";
      std::string s = str_cat(name, " ", idx + 1);
      if (idx < static_cast<int>(evr.size()) && std::isfinite(evr[idx])) {
        s += " (" + fixed(100 * evr[idx], 1) + "% of variance)";
      }
      return s;
    };
    q.x_name = axis(x_column);
    q.y_name = axis(y_column);
  }
  return q;
}

std::string quality_path_for(const std::string& csv) {
  std::filesystem::path p(csv);
  p.replace_extension(".quality.json");
  return p.string();
}

void warn(const std::string& message) {
  std::fprintf(stderr, "mmembed: warning: %s\n", message.c_str());
}

int run_plot(const PlotCliOptions& opt) {
  const plot::Format format = plot::format_from_path(opt.out);
  output_kind(opt.out);  // a folder or other unwritable kind fails before the work
  {
    // A matrix given where coordinates are expected: say so, not its binary header as columns.
    InputFile f = InputFile::open(opt.input);
    const std::string head = f.read_at(0, 4096);
    MMEMBED_CHECK(head.rfind("\x93NUMPY", 0) != 0, FormatError, opt.input,
                  ": a .npy matrix, not the CSV of coordinates that plot draws; project it first: "
                  "mmembed reduce ", opt.input, " -o coords.csv");
    MMEMBED_CHECK(head.find('\0') == std::string::npos, FormatError, opt.input,
                  ": a binary file, not a CSV (a header line such as x,y,label, then one line per "
                  "point)");
  }
  const std::vector<CsvRecord> records = read_csv(opt.input);
  MMEMBED_CHECK(!records.empty(), FormatError, opt.input,
                ": empty file (expected a header line such as x,y,label)");
  const std::vector<std::string>& header = records[0].fields;
  auto column = [&](const std::string& name, bool required, const char* option) -> int {
    for (std::size_t c = 0; c < header.size(); ++c) {
      if (header[c] == name) return static_cast<int>(c);
    }
    if (required) {
      std::string have;
      for (std::size_t c = 0; c < header.size(); ++c) {
        if (c) have += ", ";
        have += header[c];
      }
      throw FormatError(str_cat(opt.input, ": no column '", name, "' in the header line (",
                                option, "; the columns are: ", have, ")"));
    }
    return -1;
  };
  const int cx = column(opt.x_column, true, "--x-column");
  const int cy = column(opt.y_column, true, "--y-column");
  const int cl = column(opt.labels_column, opt.labels_column_given, "--labels-column");
  const int ct = opt.text_column.empty() ? -1 : column(opt.text_column, true, "--text-column");
  // What `reduce` carries from an `embed --input` folder is used without options: the "text"
  // column as hover captions, the "image" column as thumbnails (HTML only: a static image would
  // draw every picture over its point).
  const int cid = !opt.id_column.empty() ? column(opt.id_column, true, "--id-column")
                                          : column("id", false, "");
  const int cc = !opt.caption_column.empty()
                     ? column(opt.caption_column, true, "--caption-column")
                     : column("text", false, "");
  const int ci = !opt.thumbnail_column.empty()
                     ? column(opt.thumbnail_column, true, "--thumbnail-column")
                 : opt.thumbnails.empty() && format == plot::Format::Html ? column("image", false, "")
                                                                          : -1;
  MMEMBED_CHECK(records.size() >= 2, FormatError, opt.input, ": no data rows after the header");

  plot::ScatterData d;
  std::vector<std::string> image_paths;
  std::vector<std::int64_t> lines;
  for (std::size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    MMEMBED_CHECK(rec.fields.size() == header.size(), FormatError, opt.input, ": line ", rec.line,
                  ": ", rec.fields.size(), " fields, expected ", header.size(),
                  " as in the header line");
    d.x.push_back(parse_number(rec.fields[cx], opt.input, rec.line, opt.x_column));
    d.y.push_back(parse_number(rec.fields[cy], opt.input, rec.line, opt.y_column));
    if (cl >= 0) d.categories.push_back(rec.fields[cl]);
    if (ct >= 0) d.texts.push_back(rec.fields[ct]);
    if (cc >= 0) d.captions.push_back(rec.fields[cc]);
    if (cid >= 0) d.ids.push_back(rec.fields[cid]);
    if (ci >= 0) image_paths.push_back(rec.fields[ci]);
    lines.push_back(rec.line);
  }
  const std::size_t n = d.x.size();

  // Thumbnails: from a column (paths relative to the CSV) or a list file (relative to it).
  std::filesystem::path image_base;
  std::string image_source;
  if (!opt.thumbnails.empty()) {
    MMEMBED_CHECK(opt.thumbnail_column.empty(), InvalidArgument,
                  "give --thumbnails or --thumbnail-column, not both");
    image_paths = read_lines(opt.thumbnails);
    while (image_paths.size() > n && image_paths.back().empty()) image_paths.pop_back();
    MMEMBED_CHECK(image_paths.size() == n, InvalidArgument, opt.thumbnails, ": ",
                  image_paths.size(), " image paths for the ", n, " points of ", opt.input);
    image_base = std::filesystem::path(opt.thumbnails).parent_path();
    image_source = opt.thumbnails;
  } else if (ci >= 0) {
    image_base = std::filesystem::path(opt.input).parent_path();
    image_source = opt.input;
  }
  int failed = 0;
  if (!image_paths.empty()) {
    const int keep = format == plot::Format::Html ? std::max(opt.thumbnail_size, 160)
                                                  : opt.thumbnail_size;
    d.thumbnails.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (image_paths[i].empty()) continue;
      std::filesystem::path p(image_paths[i]);
      if (p.is_relative()) p = image_base / p;
      try {
        const vision::DecodedImage im = vision::read_image(p.string());
        d.thumbnails[i] = plot::make_thumbnail(im.rgb.data<std::uint8_t>(),
                                               static_cast<int>(im.rgb.dim(1)),
                                               static_cast<int>(im.rgb.dim(0)), keep);
      } catch (const Error& e) {
        if (++failed <= 5) {
          const std::string where = ci >= 0 ? str_cat(image_source, " line ", lines[i])
                                            : str_cat(image_source, " line ", i + 1);
          warn(str_cat(where, ": ", e.what(), "; the point is drawn without its thumbnail"));
        }
      }
    }
    if (failed > 5) warn(str_cat(failed - 5, " more thumbnails could not be read"));
  }

  plot::ScatterOptions po;
  po.title = opt.title;
  po.x_label = opt.x_label;
  po.y_label = opt.y_label;
  po.legend = !opt.no_legend;
  po.legend_title = cl >= 0 ? opt.labels_column : "";
  po.point_size = opt.point_size;
  po.alpha = opt.alpha;
  po.width = opt.width;
  po.height = opt.height;
  po.dpi = opt.dpi;
  po.thumbnail_size = opt.thumbnail_size;
  if (!opt.no_quality) {
    const bool given = !opt.quality.empty();
    const std::string qpath = given ? opt.quality : quality_path_for(opt.input);
    if (given || std::filesystem::exists(qpath)) {
      try {
        const QualityInfo q = read_quality(qpath, opt.x_column, opt.y_column);
        po.subtitle = q.subtitle;
        if (po.x_label.empty()) po.x_label = q.x_name;
        if (po.y_label.empty()) po.y_label = q.y_name;
      } catch (const Error& e) {
        if (given) throw;
        warn(str_cat(e.what(), "; plotting without the metrics line"));
      }
    }
  }
  if (po.x_label.empty()) po.x_label = opt.x_column;
  if (po.y_label.empty()) po.y_label = opt.y_column;

  const plot::RenderResult r = plot::render_scatter(d, po, format);
  write_output_file(opt.out, r.bytes);
  std::vector<std::string> seen(d.categories);
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  if (opt.json) {
    nlohmann::ordered_json j = {{"output", opt.out},
                                {"format", plot::format_name(format)},
                                {"points", n},
                                {"categories", cl >= 0 ? seen.size() : 0},
                                {"thumbnails", r.thumbnails_drawn},
                                {"texts_hidden", r.texts_hidden},
                                {"metrics", po.subtitle}};
    write_output_file("-", j.dump(2, ' ', false,
                                  nlohmann::ordered_json::error_handler_t::replace) + "\n");
    return 0;
  }
  std::printf("wrote %s (%s, %zu points", opt.out.c_str(), plot::format_name(format), n);
  if (cl >= 0) {
    std::printf(", %zu categories", seen.size());
  }
  if (!image_paths.empty()) std::printf(", %lld thumbnails", static_cast<long long>(r.thumbnails_drawn));
  if (r.texts_hidden > 0) {
    std::printf(", %lld %s left out to avoid overlaps", static_cast<long long>(r.texts_hidden),
                r.texts_hidden == 1 ? "text" : "texts");
  }
  std::printf(")\n");
  if (!po.subtitle.empty()) std::printf("metrics line: %s\n", po.subtitle.c_str());
  return 0;
}

}  // namespace

Runner add_plot(CLI::App& app, const GlobalOptions&) {
  auto opt = std::make_shared<PlotCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "plot",
      "Scatter plot of 2-D coordinates (the CSV that 'mmembed reduce' writes) to PNG, SVG, PDF or "
      "a self-contained interactive HTML page (hover a point for its caption and thumbnail). "
      "Points are coloured by the label column; the quality metrics from IN.quality.json, when "
      "it exists, are shown under the title.");
  cmd->add_option("input", opt->input,
                  "CSV with a header line: x,y[,label][,id][,text][,image][,...], or a folder "
                  "where 'mmembed reduce FOLDER' wrote umap.csv, tsne.csv or pca.csv")
      ->required();
  cmd->add_option("-o,--output", opt->out, "Output file; the format comes from its extension: "
                                           ".png, .svg, .pdf, .html (default for a folder "
                                           "input: the CSV's name with .html)");
  cmd->add_option("--title", opt->title, "Title above the plot");
  cmd->add_option("--x-label", opt->x_label,
                  "x axis label (default: from IN.quality.json, e.g. 'PC 1 (41.0% of variance)', "
                  "else the column name)");
  cmd->add_option("--y-label", opt->y_label, "y axis label (default: as --x-label)");
  cmd->add_option("--x-column", opt->x_column, "Column of x")->capture_default_str();
  cmd->add_option("--y-column", opt->y_column, "Column of y")->capture_default_str();
  cmd->add_option("--labels-column", opt->labels_column,
                  "Column of categorical labels: point colours and the legend (default 'label', "
                  "used when present)")
      ->each([opt](const std::string&) { opt->labels_column_given = true; });
  cmd->add_option("--text-column", opt->text_column,
                  "Column of per-point texts drawn beside the points (overlapping ones are left "
                  "out)");
  cmd->add_option("--caption-column", opt->caption_column,
                  "Column of per-point captions shown on hover in HTML (default: the 'text' "
                  "column when there is one)");
  cmd->add_option("--id-column", opt->id_column,
                  "Column of per-point ids, the HTML tooltip's heading (default: the 'id' column "
                  "when there is one, else the row number)");
  cmd->add_option("--thumbnails", opt->thumbnails,
                  "Text file with one image path per line, one line per point (relative paths "
                  "are relative to this file; empty line: no image). JPEG, PNG, WebP, GIF");
  cmd->add_option("--thumbnail-column", opt->thumbnail_column,
                  "Column of image paths (relative to the CSV's folder), instead of --thumbnails "
                  "(default for HTML: the 'image' column when there is one)");
  bound(cmd->add_option("--thumbnail-size", opt->thumbnail_size,
                        "Thumbnail size in pixels (longer side)"),
        4, 1024)
      ->capture_default_str();
  bound(cmd->add_option("--point-size", opt->point_size, "Marker diameter in points (1/72 inch)"),
        0.1, 200.0)
      ->capture_default_str();
  bound(cmd->add_option("--alpha", opt->alpha, "Marker opacity"), 0.0, 1.0)->capture_default_str();
  bound(cmd->add_option("--width", opt->width,
                        "Width in pixels (PNG; vector formats: width*72/dpi pt)"),
        64, 16384)
      ->capture_default_str();
  bound(cmd->add_option("--height", opt->height, "Height in pixels"), 64, 16384)
      ->capture_default_str();
  bound(cmd->add_option("--dpi", opt->dpi, "Pixels per inch: scales text and markers in the PNG"),
        10, 1200)
      ->capture_default_str();
  cmd->add_option("--quality", opt->quality,
                  "Quality JSON for the metrics line (default: IN.quality.json when it exists)");
  cmd->add_flag("--no-quality", opt->no_quality, "No metrics line");
  cmd->add_flag("--no-legend", opt->no_legend, "No legend");
  cmd->add_flag("--json", opt->json,
                "Print what was written (output, format, points, categories, thumbnails, metrics "
                "line) as JSON instead of the summary lines");
  return [opt] {
    // A folder: the coordinates `mmembed reduce FOLDER` wrote there (the newest of umap.csv,
    // tsne.csv, pca.csv); the plot goes beside them as <method>.html unless -o says otherwise.
    if (std::filesystem::is_directory(opt->input)) {
      std::filesystem::path best;
      std::filesystem::file_time_type newest{};
      for (const char* name : {"umap.csv", "tsne.csv", "pca.csv"}) {
        const std::filesystem::path p = std::filesystem::path(opt->input) / name;
        std::error_code ec;
        if (!std::filesystem::is_regular_file(p, ec)) continue;
        const auto t = std::filesystem::last_write_time(p, ec);
        if (!ec && (best.empty() || t > newest)) best = p, newest = t;
      }
      MMEMBED_CHECK(!best.empty(), InvalidArgument, opt->input,
                    ": no coordinates in this folder (umap.csv, tsne.csv or pca.csv); run "
                    "'mmembed reduce ", opt->input, " --method umap' first");
      opt->input = best.string();
      if (opt->out.empty()) opt->out = std::filesystem::path(best).replace_extension(".html").string();
    }
    MMEMBED_CHECK(!opt->out.empty(), InvalidArgument,
                  "-o OUT is needed (.png, .svg, .pdf or .html; only a folder input has a "
                  "default)");
    return run_plot(*opt);
  };
}

}  // namespace mmembed::cli
