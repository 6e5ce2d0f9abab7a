// mmembed demo [--model M] [-o OUTDIR] [--manifest FILE] [--no-download]
//
// The lesson, end to end: joint (image + caption) embeddings of three pairs with BridgeTower and
// the table of their cosine similarities and Euclidean distances; then every photo with template
// captions, min-max scaled, projected with UMAP (cosine), plotted by label with the
// neighbourhood quality; a Markdown report linking it all and saying what the model is.
//
// Without --model it uses the real checkpoint when it is in the cache or can be downloaded, and
// otherwise the toy BridgeTower this repository ships (trained on synthetic scenes), with which
// it adds a part on held-out scenes, where the model's clusters by label are real.
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
#include "core/log.h"
#include "core/output_file.h"
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
  bool no_download = false, model_given = false, json = false;
  std::uint64_t seed = 42;
  std::size_t batch_size = 8;
};

struct Pair {
  std::string id, image, text, label, source;  // source: how the image was obtained
};

void say(const std::string& s) { core::info("demo: " + s); }

std::string first_existing(const std::vector<fs::path>& candidates) {
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

// The repository's (or the installed) data files: the source tree this binary was built from,
// the share/mmembed folder beside an installed binary, the working directory's tests/data.
std::vector<fs::path> data_candidates(const fs::path& rel) {
  std::vector<fs::path> c = {fs::path(MMEMBED_SOURCE_DIR) / "tests/data" / rel};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) c.push_back(exe.parent_path().parent_path() / "share/mmembed" / rel);
  c.push_back(fs::path("tests/data") / rel);
  return c;
}

std::string first_existing_dir(const std::vector<fs::path>& candidates) {
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) return p.string();
  }
  return "";
}

// The repository's copies first, so that the run is the same on every machine; the photos of
// python3-skimage (their originals) when the copies are not there.
std::vector<fs::path> local_photo_candidates(const LessonPair& p) {
  std::vector<fs::path> c = data_candidates(fs::path("images") / p.repo);
  c.push_back(fs::path("/usr/lib/python3/dist-packages/skimage/data") / p.skimage);
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

// Where the model comes from and what it is.
struct ModelChoice {
  hub::ResolvedModel resolved;
  std::string spec;      // as given, or the default, or the toy model's folder
  std::string fallback;  // why the default checkpoint was not used ("" when it was)
};

constexpr const char* kToyModel = "models/toy-bridgetower";
constexpr const char* kToyScenes = "toy-scenes";

ModelChoice choose_model(const DemoOptions& opt) {
  hub::ResolveOptions ro;
  ro.revision = opt.revision;
  if (opt.no_download) ro.offline = true;
  if (opt.model_given) {
    say("model " + opt.model + (hub::is_repo_id(opt.model) ? " (Hugging Face Hub cache)" : ""));
    return {hub::resolve_model_info(opt.model, ro), opt.model, ""};
  }
  say(std::string("model ") + kDefaultModel + " (Hugging Face Hub cache)");
  try {
    return {hub::resolve_model_info(kDefaultModel, ro), kDefaultModel, ""};
  } catch (const Error& e) {
    const std::string toy = first_existing_dir(data_candidates(kToyModel));
    if (toy.empty()) throw;
    say(std::string("cannot use ") + kDefaultModel + " (" + e.what() +
        "); using the toy BridgeTower " + toy + " instead (trained on synthetic scenes, not "
        "for real photos); pass --model to choose another");
    hub::ResolveOptions local;
    local.offline = true;
    return {hub::resolve_model_info(toy, local), toy, e.what()};
  }
}

enum class Nature { kCheckpoint, kToy, kRandom };

Nature model_nature(const fs::path& dir) {
  for (const std::string& tag : hub::model_card_tags(dir)) {
    if (tag == "mmembed-toy") return Nature::kToy;
    if (tag == "mmembed-random-weights") return Nature::kRandom;
  }
  return Nature::kCheckpoint;
}

std::string describe_model(const ModelChoice& m, Nature nature) {
  const hub::ResolvedModel& r = m.resolved;
  std::string where = r.local_dir ? "the folder `" + r.dir.string() + "`"
                                  : "`" + r.repo_id + "` (revision " + r.revision +
                                        (r.commit.empty() ? "" : ", commit " + r.commit) + ")";
  switch (nature) {
    case Nature::kToy:
      return "**toy weights trained on synthetic scenes** (coloured shapes, "
             "scripts/reference/train_toy.py), from " + where +
             ": a test model, not for real photos; its numbers on the photos below mean little";
    case Nature::kRandom:
      return "**random test weights** from " + where +
             ": they test that the numbers equal the reference's; the similarities and the plot "
             "carry no meaning";
    case Nature::kCheckpoint:
      break;
  }
  return r.local_dir ? "the checkpoint in " + where + " (its card does not mark it as toy or "
                       "random test weights)"
                     : "the checkpoint " + where;
}

// Min-max scaling per feature (sklearn's MinMaxScaler), then UMAP (cosine) and the neighbourhood
// quality of the projection.
struct Projection {
  std::vector<float> y;  // [n, 2]
  std::int64_t n_neighbors = 0;
  std::vector<reduce::Quality> quality;
  std::string quality_line;
};

Projection project(const Embeddings& g, std::uint64_t seed) {
  const std::int64_t gn = static_cast<std::int64_t>(g.rows), gd = static_cast<std::int64_t>(g.dim);
  std::vector<float> scaled = g.data;
  for (std::int64_t c = 0; c < gd; ++c) {
    float lo = scaled[c], hi = scaled[c];
    for (std::int64_t r = 1; r < gn; ++r) {
      lo = std::min(lo, scaled[r * gd + c]);
      hi = std::max(hi, scaled[r * gd + c]);
    }
    const float range = hi - lo;
    for (std::int64_t r = 0; r < gn; ++r)
      scaled[r * gd + c] = range > 0 ? (scaled[r * gd + c] - lo) / range : 0.0f;
  }
  Projection p;
  reduce::UmapOptions uo;
  uo.metric = kernels::MetricSpec{kernels::Metric::Cosine};
  uo.n_neighbors = std::min<std::int64_t>(15, gn - 1);
  uo.seed = seed;
  p.n_neighbors = uo.n_neighbors;
  say("UMAP (cosine, " + std::to_string(uo.n_neighbors) + " neighbours) of " + std::to_string(gn) +
      " points ...");
  p.y = reduce::Umap::fit(scaled.data(), gn, gd, uo).embedding();
  std::vector<std::int64_t> ks;
  for (std::int64_t k : {5, 10, 15})
    if (2 * k < gn) ks.push_back(k);  // trustworthiness needs k < n / 2
  reduce::QualityOptions qo;
  qo.ks = ks;
  qo.metric = uo.metric;
  if (!ks.empty()) p.quality = reduce::neighbourhood_quality(scaled.data(), gn, gd, p.y.data(), 2, qo);
  for (const reduce::Quality& e : p.quality) {
    if (e.k == 10 || (p.quality_line.empty() && &e == &p.quality.back())) {
      p.quality_line = "trustworthiness@" + std::to_string(e.k) + " " + fmt(e.trustworthiness, 3) +
                       " · continuity@" + std::to_string(e.k) + " " + fmt(e.continuity, 3) +
                       " · kNN@" + std::to_string(e.k) + " " + fmt(e.knn_preservation, 3);
    }
  }
  return p;
}

nlohmann::ordered_json quality_json(const Projection& p, std::uint64_t seed) {
  nlohmann::ordered_json qj = nlohmann::ordered_json::array();
  for (const reduce::Quality& e : p.quality) {
    qj.push_back({{"k", e.k},
                  {"trustworthiness", e.trustworthiness},
                  {"continuity", e.continuity},
                  {"knn_preservation", e.knn_preservation}});
  }
  return {{"method", "umap"}, {"metric", "cosine"}, {"n_neighbors", p.n_neighbors},
          {"seed", seed},     {"quality", qj}};
}

std::string quality_table(const Projection& p) {
  if (p.quality.empty()) return "";
  std::string t = "| k | trustworthiness | continuity | kNN preservation |\n| ---: | ---: | ---: | ---: |\n";
  for (const reduce::Quality& e : p.quality)
    t += "| " + std::to_string(e.k) + " | " + fmt(e.trustworthiness, 3) + " | " +
         fmt(e.continuity, 3) + " | " + fmt(e.knn_preservation, 3) + " |\n";
  return t;
}

// umap.csv-like coordinates, and the plot as PNG and HTML.
void write_projection(const fs::path& out, const std::string& stem, const Projection& p,
                      const std::vector<std::string>& categories,
                      const std::vector<std::string>& ids, const std::vector<std::string>& texts,
                      const std::vector<plot::Image>& thumbnails, const std::string& title,
                      const std::string& legend_title, const std::string& subtitle) {
  const std::size_t n = ids.size();
  std::string coords = "x,y,label,id,text\n";
  for (std::size_t r = 0; r < n; ++r) {
    coords += fmt(p.y[2 * r], 6) + "," + fmt(p.y[2 * r + 1], 6) + "," + csv_field(categories[r]) +
              "," + csv_field(ids[r]) + "," + csv_field(texts[r]) + "\n";
  }
  io::write_file_atomic((out / (stem + ".csv")).string(), coords);
  plot::ScatterData sd;
  for (std::size_t r = 0; r < n; ++r) {
    sd.x.push_back(p.y[2 * r]);
    sd.y.push_back(p.y[2 * r + 1]);
    sd.captions.push_back(texts[r]);
  }
  sd.ids = ids;
  sd.categories = categories;
  sd.thumbnails = thumbnails;
  plot::ScatterOptions po;
  po.title = title;
  po.subtitle = subtitle;
  po.x_label = "UMAP 1";
  po.y_label = "UMAP 2";
  po.legend_title = legend_title;
  po.thumbnail_size = 40;
  for (const char* ext : {".png", ".html"}) {
    const fs::path path = out / (stem + ext);
    const plot::RenderResult rr = plot::render_scatter(sd, po, plot::format_from_path(path.string()));
    io::write_file_atomic(path.string(), rr.bytes);
  }
}

// The held-out toy scenes (single-object ones): joint embeddings with their captions, projected
// and plotted by shape; the share of each point's nearest neighbours in the plot with its label,
// and how close the pairs of one label are to each other against the other labels.
struct ScenesPart {
  std::string markdown;
  double agreement = 0;       // by shape, the plot's colours
  std::int64_t k = 0;
  double agreement_full = 0;  // by colour and shape
  std::int64_t k_full = 0;
};

ScenesPart run_scenes(const Embedder& embedder, const DemoOptions& opt, const std::string& dir) {
  const data::Manifest m = data::read_dataset(fs::path(dir) / "manifest.tsv", {});
  std::vector<Image> images;
  std::vector<std::string> texts, labels, shapes, ids;
  std::vector<plot::Image> thumbs;
  for (const data::Item& it : m.items) {
    if (it.label.find(" left of ") != std::string::npos) continue;  // single-object scenes only
    images.push_back(Image::read(it.image));
    const Image& im = images.back();
    thumbs.push_back(plot::make_thumbnail(im.rgb.data(), static_cast<int>(im.width),
                                          static_cast<int>(im.height), 96));
    texts.push_back(it.text);
    labels.push_back(it.label);
    shapes.push_back(it.label.substr(it.label.rfind(' ') + 1));
    ids.push_back(it.id);
  }
  MMEMBED_CHECK(images.size() >= 4, InvalidArgument, dir, ": too few single-object scenes (",
                images.size(), ")");
  say("embedding " + std::to_string(images.size()) + " held-out toy scenes with their captions ...");
  const Embeddings g = embedder.embed_pairs(images, texts);
  const Projection p = project(g, opt.seed);

  // kNN label agreement in the plot, for the label the plot is coloured by (the shape) and for
  // the full label (colour and shape), k = the smallest label's size - 1, at most 10.
  const auto agreement = [&](const std::vector<std::string>& by, std::int64_t* k) {
    std::map<std::string, std::int64_t> ids, counts;
    std::vector<std::int64_t> label_of;
    for (const std::string& l : by) {
      label_of.push_back(ids.emplace(l, static_cast<std::int64_t>(ids.size())).first->second);
      ++counts[l];
    }
    std::int64_t smallest = std::numeric_limits<std::int64_t>::max();
    for (const auto& [l, c] : counts) smallest = std::min(smallest, c);
    *k = std::max<std::int64_t>(1, std::min<std::int64_t>(10, smallest - 1));
    return reduce::knn_label_agreement(p.y.data(), static_cast<std::int64_t>(g.rows), 2,
                                       label_of, *k);
  };
  ScenesPart part;
  part.agreement = agreement(shapes, &part.k);
  part.agreement_full = agreement(labels, &part.k_full);

  std::map<std::string, std::int64_t> index, count;
  std::vector<std::int64_t> label_ids;
  for (const std::string& l : labels) {
    const auto [it, fresh] = index.emplace(l, static_cast<std::int64_t>(index.size()));
    label_ids.push_back(it->second);
    ++count[l];
  }

  // Mean cosine similarity of the pairs within each label and to each other label.
  const std::size_t L = index.size(), n = g.rows;
  std::vector<double> sum(L * L, 0.0), pairs(L * L, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const double c = kernels::distance(kernels::MetricSpec{kernels::Metric::Cosine},
                                         g.row(i).data(), g.row(j).data(),
                                         static_cast<std::int64_t>(g.dim));
      const std::size_t a = static_cast<std::size_t>(label_ids[i]);
      const std::size_t b = static_cast<std::size_t>(label_ids[j]);
      sum[a * L + b] += c;
      pairs[a * L + b] += 1;
    }
  }
  std::vector<std::string> names(L);
  for (const auto& [l, i] : index) names[static_cast<std::size_t>(i)] = l;
  auto mean = [&](std::size_t a, std::size_t b) {
    return pairs[a * L + b] > 0 ? sum[a * L + b] / pairs[a * L + b] : 0.0;
  };
  std::string table = "| label | scenes | cosine within the label | closest other label | its cosine |\n"
                      "| --- | ---: | ---: | --- | ---: |\n";
  std::size_t within_higher = 0;
  for (std::size_t a = 0; a < L; ++a) {
    std::size_t best = a == 0 && L > 1 ? 1 : 0;
    for (std::size_t b = 0; b < L; ++b)
      if (b != a && mean(a, b) > mean(a, best)) best = b;
    within_higher += mean(a, a) > mean(a, best);
    table += "| " + md_escape(names[a]) + " | " + std::to_string(count[names[a]]) + " | " +
             fmt(mean(a, a)) + " | " + md_escape(names[best]) + " | " + fmt(mean(a, best)) +
             " |\n";
  }

  const fs::path out(opt.out);
  write_projection(out, "scenes", p, shapes, ids, texts, thumbs,
                   "Held-out toy scenes: joint image-caption embeddings, UMAP, cosine", "shape",
                   p.quality_line + " · same-shape kNN@" + std::to_string(part.k) + " " +
                       fmt(part.agreement, 3));
  nlohmann::ordered_json sj = quality_json(p, opt.seed);
  sj["knn_label_agreement"] = {{"k", part.k}, {"labels", "shape"}, {"value", part.agreement}};
  sj["knn_label_agreement_colour_and_shape"] = {{"k", part.k_full},
                                                {"value", part.agreement_full}};
  io::write_file_atomic((out / "scenes.quality.json").string(), sj.dump(2) + "\n");

  std::ostringstream md;
  md << "\n## Held-out toy scenes\n\n"
     << g.rows << " single-object scenes of `" << dir << "` (" << L
     << " colour-shape labels; a seed the training never drew), each with its own caption, "
        "embedded jointly, min-max scaled, UMAP with the cosine metric, "
     << p.n_neighbors << " neighbours, seed " << opt.seed << "; coloured by shape.\n\n"
     << "![UMAP of the toy scenes](scenes.png)\n\n"
     << "Interactive version: [scenes.html](scenes.html). Coordinates: [scenes.csv](scenes.csv).\n\n"
     << "**kNN label agreement** in the plot (the share of each point's " << part.k
     << " nearest points in the plot that have its shape, the label it is coloured by): **"
     << fmt(part.agreement, 3) << "**; with its colour and shape (" << part.k_full
     << " nearest): " << fmt(part.agreement_full, 3) << ".\n\n"
     << quality_table(p) << "\nMean cosine similarity of the joint embeddings: for "
     << within_higher << " of " << L
     << " labels the pairs of the label are closer to each other than to those of any other "
        "label.\n\n"
     << table;
  part.markdown = md.str();
  return part;
}

int run_demo(const DemoOptions& opt, int threads) {
  fs::create_directories(opt.out);
  const fs::path out(opt.out);
  // 1. The model.
  const ModelChoice model = choose_model(opt);
  const Nature nature = model_nature(model.resolved.dir);
  EmbedderOptions eo;
  eo.threads = threads;
  eo.batch_size = opt.batch_size;
  eo.image_backend = parse_image_backend(opt.image_backend);
  const Embedder embedder = Embedder::load(model.resolved.dir.string(), eo);
  MMEMBED_CHECK(embedder.info().pair, Unsupported, model.spec, ": the demo needs joint image-text "
                "embeddings, which this ", embedder.info().family, " model does not have",
                embedder.info().unsupported_reason.empty() ? "" : ": ",
                embedder.info().unsupported_reason);
  if (nature == Nature::kRandom)
    say("note: " + model.spec + " holds random test weights: the numbers carry no meaning");

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
  io::write_npy((out / "pairs.npy").string(), joint.data.data(),
                static_cast<std::int64_t>(joint.rows), static_cast<std::int64_t>(joint.dim));

  // 3. Cosine similarity and Euclidean distance for each pair of examples.
  const std::size_t n = joint.rows, d = joint.dim;
  std::string table = "| example A | example B | cosine similarity | Euclidean distance |\n"
                      "| --- | --- | ---: | ---: |\n";
  std::string csv = "a,b,cosine_similarity,euclidean_distance\n";
  nlohmann::ordered_json pair_rows = nlohmann::ordered_json::array();
  if (!opt.json) {
    std::printf("%-16s %-16s %18s %19s\n", "example A", "example B", "cosine similarity",
                "Euclidean distance");
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const float* a = joint.row(i).data();
      const float* b = joint.row(j).data();
      const double cos = kernels::distance(kernels::MetricSpec{kernels::Metric::Cosine}, a, b,
                                           static_cast<std::int64_t>(d));
      const double euc = kernels::distance(kernels::MetricSpec{kernels::Metric::Euclidean}, a, b,
                                           static_cast<std::int64_t>(d));
      table += "| " + md_escape(pairs[i].id) + " | " + md_escape(pairs[j].id) + " | " + fmt(cos) +
               " | " + fmt(euc) + " |\n";
      csv += csv_field(pairs[i].id) + "," + csv_field(pairs[j].id) + "," + fmt(cos, 6) + "," +
             fmt(euc, 6) + "\n";
      pair_rows.push_back({{"a", pairs[i].id}, {"b", pairs[j].id}, {"cosine_similarity", cos},
                           {"euclidean_distance", euc}});
      if (!opt.json) {
        std::printf("%-16s %-16s %18.4f %19.4f\n", pairs[i].id.c_str(), pairs[j].id.c_str(), cos,
                    euc);
      }
    }
  }
  io::write_file_atomic((out / "similarity.md").string(), table);
  io::write_file_atomic((out / "similarity.csv").string(), csv);

  // 4. Every photo with template captions -> joint embeddings -> min-max -> UMAP (cosine).
  std::vector<Image> g_images;
  std::vector<std::string> g_texts, g_labels, g_ids;
  std::vector<plot::Image> g_thumbs;
  std::vector<plot::Image> thumbs;
  for (const Image& im : images) {
    thumbs.push_back(plot::make_thumbnail(im.rgb.data(), static_cast<int>(im.width),
                                          static_cast<int>(im.height), 160));
  }
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    for (const char* t : kTemplates) {
      g_images.push_back(images[i]);
      g_texts.push_back(replace_all(t, "{}", pairs[i].label));
      g_labels.push_back(pairs[i].label);
      g_ids.push_back(pairs[i].id);
      g_thumbs.push_back(thumbs[i]);
    }
  }
  say("embedding " + std::to_string(g_texts.size()) + " photos with template captions ...");
  const Embeddings g = embedder.embed_pairs(g_images, g_texts);
  const Projection proj = project(g, opt.seed);
  io::write_file_atomic((out / "umap.quality.json").string(),
                        quality_json(proj, opt.seed).dump(2) + "\n");
  write_projection(out, "umap", proj, g_labels, g_ids, g_texts, g_thumbs,
                   "Joint image-caption embeddings (" + embedder.info().family +
                       "), UMAP, cosine",
                   "label", proj.quality_line);

  // 5. With the toy model: the held-out scenes, where its clusters mean something.
  ScenesPart scenes;
  std::string scenes_dir;
  if (nature == Nature::kToy) {
    scenes_dir = first_existing_dir(data_candidates(kToyScenes));
    if (scenes_dir.empty()) {
      say("the toy scenes (tests/data/toy-scenes) are not here: their part is left out");
    } else {
      scenes = run_scenes(embedder, opt, scenes_dir);
      say("toy scenes: kNN label agreement in the plot " + fmt(scenes.agreement, 3) +
          " (shape, k " + std::to_string(scenes.k) + "; colour and shape " +
          fmt(scenes.agreement_full, 3) + ", k " + std::to_string(scenes.k_full) + ")");
    }
  }

  // 6. The report.
  std::ostringstream md;
  md << "# mmembed demo\n\n"
     << "mmembed " << MMEMBED_VERSION << ". **Model**: " << describe_model(model, nature) << "; "
     << embedder.info().family << ", " << joint.dim << "-d joint embeddings.\n\n";
  if (!model.fallback.empty())
    md << "The default checkpoint `" << kDefaultModel << "` was not used: "
       << md_escape(model.fallback) << ". Pass `--model` to choose one.\n\n";
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
     << proj.n_neighbors << " neighbours, seed " << opt.seed << ".\n\n"
     << "![UMAP scatter plot](umap.png)\n\n"
     << "Interactive version (hover for captions and photos): [umap.html](umap.html). "
     << "Coordinates: [umap.csv](umap.csv).\n\n"
     << quality_table(proj);
  md << scenes.markdown;
  io::write_file_atomic((out / "report.md").string(), md.str());
  if (opt.json) {
    nlohmann::ordered_json j = {
        {"model", model.spec},
        {"model_nature", nature == Nature::kToy      ? "toy"
                         : nature == Nature::kRandom ? "random-test-weights"
                                                     : "checkpoint"},
        {"family", embedder.info().family},
        {"dim", joint.dim},
        {"report", (out / "report.md").string()},
        {"pairs", pair_rows},
        {"umap_quality", quality_json(proj, opt.seed)}};
    if (!model.resolved.commit.empty()) j["commit"] = model.resolved.commit;
    if (!scenes.markdown.empty()) {
      j["scenes"] = {{"dir", scenes_dir},
                     {"knn_label_agreement", scenes.agreement},
                     {"k", scenes.k},
                     {"labels", "shape"},
                     {"knn_label_agreement_colour_and_shape", scenes.agreement_full},
                     {"k_colour_and_shape", scenes.k_full}};
    }
    write_output_file("-", j.dump(2, ' ', false,
                                  nlohmann::ordered_json::error_handler_t::replace) + "\n");
  }
  say("wrote " + (out / "report.md").string() + " (similarity.md, umap.png, umap.html, umap.csv" +
      (scenes.markdown.empty() ? "" : ", scenes.png, scenes.html, scenes.csv") + " beside it)");
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
      "3. With the toy model, the held-out toy scenes are embedded with their captions and\n"
      "   plotted by shape, with the kNN label agreement of the plot and a table of how close\n"
      "   the pairs of one label are to each other.\n"
      "4. OUTDIR/report.md links the tables and plots and says what the model is (a real\n"
      "   checkpoint, toy weights trained on synthetic scenes, or random test weights).\n"
      "The model comes from --model (a folder or the Hugging Face cache, downloaded when missing\n"
      "and the network is reachable). Without --model: BridgeTower/bridgetower-large-itm-mlm-itc\n"
      "when it is cached or can be downloaded, else the toy BridgeTower this repository ships.\n"
      "The first photo is downloaded from Flickr when possible; otherwise, and for the other\n"
      "two, this repository's copies of the photos (or python3-skimage's originals) are used,\n"
      "and the report says which.");
  cmd->add_option("--model", opt->model,
                  "Model folder or Hugging Face repo id (default: the real checkpoint when it is "
                  "cached or can be downloaded, else the toy BridgeTower of this repository)")
      ->capture_default_str();
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
  cmd->add_flag("--json", opt->json,
                "Print the results (model and what it is, the pair similarities, the plot's "
                "quality, the scenes' kNN label agreement) as JSON instead of the table");
  add_image_backend_option(cmd, &opt->image_backend);
  return [opt, cmd, &global] {
    opt->model_given = cmd->count("--model") > 0;
    return run_demo(*opt, global.threads);
  };
}

}  // namespace mmembed::cli
