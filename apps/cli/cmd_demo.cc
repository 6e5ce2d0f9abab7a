// mmembed demo [--model M] [-o OUTDIR] [--manifest FILE] [--no-download]
//
// The lesson, end to end: joint (image + caption) embeddings of three pairs with BridgeTower and
// the table of their cosine similarities and Euclidean distances; then every photo with template
// captions, min-max scaled, projected with UMAP (cosine), plotted by label with the
// neighbourhood quality; a Markdown report linking it all.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/check.h"
#include "data/manifest.h"
#include "hub/cache.h"
#include "hub/fetch.h"
#include "io/matrix.h"
#include "kernels/distance.h"
#include "mmembed/embedder.h"
#include "mmembed/error.h"
#include "mmembed/hub.h"
#include "mmembed/plot.h"
#include "mmembed/version.h"
#include "reduce/quality.h"
#include "reduce/umap.h"

namespace mmembed::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultModel = "BridgeTower/bridgetower-large-itm-mlm-itc";

// The lesson's three pairs. Only the first photo has a published URL; the others (and the first,
// when it cannot be downloaded) are real photos that ship with Debian (python3-skimage), or the
// copies derived from them in this repository's tests/data/images.
struct LessonPair {
  const char* id;
  const char* url;  // "" when none
  const char* text;
  const char* label;
  const char* skimage;  // file under the skimage data folder
  const char* repo;     // file under tests/data/images
};
constexpr LessonPair kLesson[] = {
    {"motorcycle_1", "http://farm3.staticflickr.com/2519/4126738647_cc436c111b_z.jpg",
     "A motorcycle sits parked across from a herd of livestock", "motorcycle",
     "motorcycle_left.png", "motorcycle_left.jpg"},
    {"motorcycle_2", "", "Motorcycle on platform to be worked on in garage", "motorcycle",
     "motorcycle_right.png", "motorcycle_portrait.jpg"},
    {"cat", "", "a cat laying down stretched out near a laptop", "cat", "chelsea.png",
     "cat_landscape.jpg"},
};

constexpr const char* kTemplates[] = {"a picture of a {}", "an image of a {}", "a photo of a {}",
                                      "a nice {}",         "a beautiful {}",   "a close-up of a {}"};

struct DemoOptions {
  std::string model = kDefaultModel, revision = "main", out = "mmembed-demo", manifest;
  std::string image_backend = "pil";
  bool no_download = false;
  std::uint64_t seed = 42;
  std::size_t batch_size = 8;
};

struct Pair {
  std::string id, image, text, label, source;  // source: how the image was obtained
};

void say(const std::string& s) { std::fprintf(stderr, "mmembed demo: %s\n", s.c_str()); }

std::string first_existing(const std::vector<fs::path>& candidates) {
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

std::vector<fs::path> local_photo_candidates(const LessonPair& p) {
  std::vector<fs::path> c = {fs::path("/usr/lib/python3/dist-packages/skimage/data") / p.skimage};
  c.push_back(fs::path(MMEMBED_SOURCE_DIR) / "tests/data/images" / p.repo);
  c.push_back(fs::path("tests/data/images") / p.repo);
  return c;
}

// Offline as the Hub code reads it (HF_HUB_OFFLINE, else TRANSFORMERS_OFFLINE; "1"/"true"/...).
bool offline_env() { return hub::read_hub_config(hub::process_env()).offline; }

// The built-in lesson pairs with their photos: downloaded when possible, else local copies.
std::vector<Pair> lesson_pairs(const DemoOptions& opt) {
  std::vector<std::string> urls;
  for (const LessonPair& p : kLesson)
    if (*p.url) urls.push_back(p.url);
  std::vector<hub::FetchOutcome> fetched;
  const bool download = !opt.no_download && !offline_env();
  if (download && !urls.empty()) {
    say("downloading the lesson's photo(s) ...");
    hub::FetchOptions fo;
    fo.jobs = 2;
    fo.http.connect_timeout_ms = 5000;
    fo.http.timeout_ms = 30000;
    fo.http.retries = 1;
    fo.http.max_bytes = 20'000'000;
    fo.progress = hub::ProgressMode::kNever;
    fetched = hub::fetch_urls(urls, fs::path(opt.out) / "images", fo);
  }
  std::vector<Pair> out;
  std::size_t u = 0;
  for (const LessonPair& p : kLesson) {
    Pair pair{p.id, "", p.text, p.label, ""};
    if (*p.url) {
      const hub::FetchOutcome* f = download ? &fetched[u] : nullptr;
      ++u;
      if (f && f->ok) {
        pair.image = f->path.string();
        pair.source = std::string("downloaded from ") + p.url;
      } else {
        say(std::string("could not use ") + p.url + " (" +
            (f ? f->reason : std::string("downloads are off")) + "); using a local photo instead");
      }
    }
    if (pair.image.empty()) {
      pair.image = first_existing(local_photo_candidates(p));
      MMEMBED_CHECK(!pair.image.empty(), IoError, "no photo for the lesson pair '", p.id,
                    "': install python3-skimage (its sample photos are used) or pass your own "
                    "pairs with --manifest FILE");
      pair.source = "local photo " + pair.image;
    }
    out.push_back(pair);
  }
  return out;
}

std::vector<Pair> manifest_pairs(const DemoOptions& opt) {
  data::ManifestOptions mo;
  const data::Manifest m = data::read_dataset(opt.manifest, mo);
  MMEMBED_CHECK(m.items.size() >= 2, InvalidArgument, opt.manifest, ": the demo needs at least 2 "
                "image-text pairs (found ", m.items.size(), ")");
  std::vector<std::string> urls;
  for (const data::Item& it : m.items)
    if (data::is_url(it.image)) urls.push_back(it.image);
  std::vector<hub::FetchOutcome> fetched;
  if (!urls.empty()) {
    MMEMBED_CHECK(!opt.no_download && !offline_env(), IoError, opt.manifest, ": ", urls.size(),
                  " image URLs but downloads are off (--no-download or HF_HUB_OFFLINE); run "
                  "'mmembed fetch ", opt.manifest, " -o DIR' where the network is reachable and "
                  "pass DIR/manifest.jsonl");
    say("downloading " + std::to_string(urls.size()) + " image(s) ...");
    hub::FetchOptions fo;
    fo.progress = hub::ProgressMode::kAuto;
    fetched = hub::fetch_urls(urls, fs::path(opt.out) / "images", fo);
  }
  std::vector<Pair> out;
  std::size_t u = 0;
  for (const data::Item& it : m.items) {
    Pair p{it.id, it.image, it.text, it.label.empty() ? it.id : it.label, "local file " + it.image};
    if (data::is_url(it.image)) {
      const hub::FetchOutcome& f = fetched[u++];
      MMEMBED_CHECK(f.ok, IoError, opt.manifest, ": item '", it.id, "': ", it.image, ": ", f.reason);
      p.image = f.path.string();
      p.source = "downloaded from " + it.image;
    }
    out.push_back(p);
  }
  return out;
}

std::string fmt(double v, int digits = 4) {
  char b[64];
  std::snprintf(b, sizeof(b), "%.*f", digits, v);
  return b;
}

std::string md_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '|') o += "\\|";
    else if (c == '\n') o += ' ';
    else o += c;
  }
  return o;
}


std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

int run_demo(const DemoOptions& opt, int threads) {
  fs::create_directories(opt.out);
  // 1. The model.
  hub::ResolveOptions ro;
  ro.revision = opt.revision;
  if (opt.no_download) ro.offline = true;
  say("model " + opt.model + (hub::is_repo_id(opt.model) ? " (Hugging Face Hub cache)" : ""));
  const hub::ResolvedModel model = hub::resolve_model_info(opt.model, ro);
  EmbedderOptions eo;
  eo.threads = threads;
  eo.batch_size = opt.batch_size;
  eo.image_backend = parse_image_backend(opt.image_backend);
  const Embedder embedder = Embedder::load(model.dir.string(), eo);
  MMEMBED_CHECK(embedder.info().pair, Unsupported, opt.model, ": the demo needs joint image-text "
                "embeddings, which this ", embedder.info().family, " model does not have",
                embedder.info().unsupported_reason.empty() ? "" : ": ",
                embedder.info().unsupported_reason);

  // 2. The pairs and their joint embeddings.
  const std::vector<Pair> pairs = opt.manifest.empty() ? lesson_pairs(opt) : manifest_pairs(opt);
  std::vector<Image> images;
  std::vector<std::string> texts;
  for (const Pair& p : pairs) {
    images.push_back(Image::read(p.image));
    texts.push_back(p.text);
  }
  say("embedding " + std::to_string(pairs.size()) + " image-caption pairs ...");
  const Embeddings joint = embedder.embed_pairs(images, texts);
  io::write_npy((fs::path(opt.out) / "pairs.npy").string(), joint.data.data(),
                static_cast<std::int64_t>(joint.rows), static_cast<std::int64_t>(joint.dim));

  // 3. Cosine similarity and Euclidean distance for each pair of examples.
  const std::size_t n = joint.rows, d = joint.dim;
  std::string table = "| example A | example B | cosine similarity | Euclidean distance |\n"
                      "| --- | --- | ---: | ---: |\n";
  std::string csv = "a,b,cosine_similarity,euclidean_distance\n";
  std::printf("%-16s %-16s %18s %19s\n", "example A", "example B", "cosine similarity",
              "Euclidean distance");
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const float* a = joint.row(i).data();
      const float* b = joint.row(j).data();
      const double cos = kernels::distance(kernels::MetricSpec{kernels::Metric::Cosine}, a, b, static_cast<std::int64_t>(d));
      const double euc = kernels::distance(kernels::MetricSpec{kernels::Metric::Euclidean}, a, b, static_cast<std::int64_t>(d));
      table += "| " + md_escape(pairs[i].id) + " | " + md_escape(pairs[j].id) + " | " + fmt(cos) +
               " | " + fmt(euc) + " |\n";
      csv += csv_field(pairs[i].id) + "," + csv_field(pairs[j].id) + "," + fmt(cos, 6) + "," +
             fmt(euc, 6) + "\n";
      std::printf("%-16s %-16s %18.4f %19.4f\n", pairs[i].id.c_str(), pairs[j].id.c_str(), cos, euc);
    }
  }
  io::write_file_atomic((fs::path(opt.out) / "similarity.md").string(), table);
  io::write_file_atomic((fs::path(opt.out) / "similarity.csv").string(), csv);

  // 4. Every photo with template captions -> joint embeddings -> min-max -> UMAP (cosine).
  std::vector<Image> g_images;
  std::vector<std::string> g_texts, g_labels, g_ids;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    for (const char* t : kTemplates) {
      g_images.push_back(images[i]);
      g_texts.push_back(replace_all(t, "{}", pairs[i].label));
      g_labels.push_back(pairs[i].label);
      g_ids.push_back(pairs[i].id);
    }
  }
  say("embedding " + std::to_string(g_texts.size()) + " photos with template captions ...");
  const Embeddings g = embedder.embed_pairs(g_images, g_texts);
  const std::int64_t gn = static_cast<std::int64_t>(g.rows), gd = static_cast<std::int64_t>(g.dim);
  std::vector<float> scaled = g.data;
  for (std::int64_t c = 0; c < gd; ++c) {  // min-max scaling per feature, as sklearn's MinMaxScaler
    float lo = scaled[c], hi = scaled[c];
    for (std::int64_t r = 1; r < gn; ++r) {
      lo = std::min(lo, scaled[r * gd + c]);
      hi = std::max(hi, scaled[r * gd + c]);
    }
    const float range = hi - lo;
    for (std::int64_t r = 0; r < gn; ++r)
      scaled[r * gd + c] = range > 0 ? (scaled[r * gd + c] - lo) / range : 0.0f;
  }
  reduce::UmapOptions uo;
  uo.metric = kernels::MetricSpec{kernels::Metric::Cosine};
  uo.n_neighbors = std::min<std::int64_t>(15, gn - 1);
  uo.seed = opt.seed;
  say("UMAP (cosine, " + std::to_string(uo.n_neighbors) + " neighbours) ...");
  const reduce::Umap umap = reduce::Umap::fit(scaled.data(), gn, gd, uo);
  const std::vector<float>& y = umap.embedding();

  std::vector<std::int64_t> ks;
  for (std::int64_t k : {5, 10, 15})
    if (2 * k < gn) ks.push_back(k);  // trustworthiness needs k < n / 2
  reduce::QualityOptions qo;
  qo.ks = ks;
  qo.metric = uo.metric;
  const std::vector<reduce::Quality> q =
      ks.empty() ? std::vector<reduce::Quality>{}
                 : reduce::neighbourhood_quality(scaled.data(), gn, gd, y.data(), 2, qo);
  std::string quality_line;
  nlohmann::ordered_json qj = nlohmann::ordered_json::array();
  for (const reduce::Quality& e : q) {
    qj.push_back({{"k", e.k},
                  {"trustworthiness", e.trustworthiness},
                  {"continuity", e.continuity},
                  {"knn_preservation", e.knn_preservation}});
  }
  for (const reduce::Quality& e : q) {
    if (e.k == 10 || (quality_line.empty() && &e == &q.back())) {
      quality_line = "trustworthiness@" + std::to_string(e.k) + " " + fmt(e.trustworthiness, 3) +
                     " · continuity@" + std::to_string(e.k) + " " + fmt(e.continuity, 3) +
                     " · kNN@" + std::to_string(e.k) + " " + fmt(e.knn_preservation, 3);
    }
  }

  std::string coords = "x,y,label,id,text\n";
  for (std::int64_t r = 0; r < gn; ++r) {
    coords += fmt(y[2 * r], 6) + "," + fmt(y[2 * r + 1], 6) + "," + csv_field(g_labels[r]) + "," +
              csv_field(g_ids[r]) + "," + csv_field(g_texts[r]) + "\n";
  }
  io::write_file_atomic((fs::path(opt.out) / "umap.csv").string(), coords);
  io::write_file_atomic((fs::path(opt.out) / "umap.quality.json").string(),
                        nlohmann::ordered_json{{"method", "umap"},
                                               {"metric", "cosine"},
                                               {"n_neighbors", uo.n_neighbors},
                                               {"seed", opt.seed},
                                               {"quality", qj}}
                                .dump(2) + "\n");

  plot::ScatterData sd;
  for (std::int64_t r = 0; r < gn; ++r) {
    sd.x.push_back(y[2 * r]);
    sd.y.push_back(y[2 * r + 1]);
  }
  sd.categories = g_labels;
  for (std::int64_t r = 0; r < gn; ++r) sd.captions.push_back(g_texts[r] + " (" + g_ids[r] + ")");
  std::map<std::string, plot::Image> thumbs;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    thumbs[pairs[i].id] = plot::make_thumbnail(images[i].rgb.data(), static_cast<int>(images[i].width),
                                               static_cast<int>(images[i].height), 160);
  }
  for (std::int64_t r = 0; r < gn; ++r) sd.thumbnails.push_back(thumbs[g_ids[r]]);
  plot::ScatterOptions po;
  po.title = "Joint image-caption embeddings (" + embedder.info().family + "), UMAP, cosine";
  po.subtitle = quality_line;
  po.x_label = "UMAP 1";
  po.y_label = "UMAP 2";
  po.legend_title = "label";
  po.thumbnail_size = 40;
  for (const char* name : {"umap.png", "umap.html"}) {
    const fs::path path = fs::path(opt.out) / name;
    const plot::RenderResult rr = plot::render_scatter(sd, po, plot::format_from_path(path.string()));
    io::write_file_atomic(path.string(), rr.bytes);
  }

  // 5. The report.
  std::ostringstream md;
  md << "# mmembed demo\n\n"
     << "mmembed " << MMEMBED_VERSION << ", model `" << opt.model << "`";
  if (!model.commit.empty()) md << " (commit " << model.commit << ")";
  md << ", folder `" << model.dir.string() << "`, " << embedder.info().family << ", "
     << joint.dim << "-d joint embeddings.\n\n";
  md << "## Image-caption pairs\n\n| id | caption | label | image |\n| --- | --- | --- | --- |\n";
  for (const Pair& p : pairs)
    md << "| " << md_escape(p.id) << " | " << md_escape(p.text) << " | " << md_escape(p.label)
       << " | " << md_escape(p.source) << " |\n";
  md << "\n## Similarity of the joint embeddings\n\n" << table
     << "\n(also as [similarity.csv](similarity.csv); the embeddings are in `pairs.npy`)\n";
  md << "\n## UMAP of the photos with template captions\n\n"
     << g_texts.size() << " pairs: each photo with the captions ";
  for (std::size_t t = 0; t < std::size(kTemplates); ++t)
    md << (t ? ", " : "") << '"' << kTemplates[t] << '"';
  md << " (`{}` = its label); joint embeddings min-max scaled per feature, UMAP with the cosine "
        "metric, "
     << uo.n_neighbors << " neighbours, seed " << opt.seed << ".\n\n"
     << "![UMAP scatter plot](umap.png)\n\n"
     << "Interactive version (hover for captions and photos): [umap.html](umap.html). "
     << "Coordinates: [umap.csv](umap.csv).\n\n";
  if (!q.empty()) {
    md << "| k | trustworthiness | continuity | kNN preservation |\n| ---: | ---: | ---: | ---: |\n";
    for (const reduce::Quality& e : q)
      md << "| " << e.k << " | " << fmt(e.trustworthiness, 3) << " | " << fmt(e.continuity, 3)
         << " | " << fmt(e.knn_preservation, 3) << " |\n";
  }
  io::write_file_atomic((fs::path(opt.out) / "report.md").string(), md.str());
  say("wrote " + (fs::path(opt.out) / "report.md").string() +
      " (similarity.md, umap.png, umap.html, umap.csv beside it)");
  return 0;
}

}  // namespace

Runner add_demo(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand("demo", "Run the lesson end to end: pairs, similarities, UMAP plot, report");
  cmd->description(
      "Run the lesson end to end.\n"
      "1. Three image-caption pairs (two motorcycles, a cat) are embedded jointly (BridgeTower\n"
      "   cross_embeds) and compared: cosine similarity and Euclidean distance per pair.\n"
      "2. Each photo with template captions (\"a picture of a {}\", ...) is embedded, min-max\n"
      "   scaled, projected with UMAP (cosine) and plotted by label with its quality metrics.\n"
      "3. OUTDIR/report.md links the table and the plot.\n"
      "The model comes from a folder or the Hugging Face cache (downloaded when missing and the\n"
      "network is reachable). The first photo is downloaded from Flickr when possible; otherwise,\n"
      "and for the other two, the real photos of python3-skimage (or this repository's copies)\n"
      "are used, and the report says which.");
  cmd->add_option("--model", opt->model, "Model folder or Hugging Face repo id")->capture_default_str();
  cmd->add_option("--revision", opt->revision, "Hub revision (branch, tag or commit)")
      ->capture_default_str();
  cmd->add_option("-o,--output", opt->out, "Output folder")->capture_default_str();
  cmd->add_option("--manifest", opt->manifest,
                  "Your own pairs instead of the lesson's (JSONL/CSV/TSV with id, image, text, "
                  "label; image URLs are downloaded)");
  cmd->add_flag("--no-download", opt->no_download,
                "Never touch the network (model from the cache or a folder, local photos)");
  bound(cmd->add_option("--seed", opt->seed, "UMAP seed"), std::uint64_t{0},
        std::numeric_limits<std::uint64_t>::max())
      ->capture_default_str();
  bound<std::uint64_t>(cmd->add_option("--batch-size", opt->batch_size, "Inputs per model call"),
                       1, kMaxBatchSize)
      ->capture_default_str();
  add_image_backend_option(cmd, &opt->image_backend);
  return [opt, &global] { return run_demo(*opt, global.threads); };
}

}  // namespace mmembed::cli
