// One benchmark case of mmembed's CLIP / sentence-transformers models through the public
// Embedder (fp32, CPU), the counterpart of bench_reference.py: same inputs, same timing rule,
// one JSON line out with the same fields.
//
//   bench_models --model ~/.cache/mmembed/bench/clip-vit-base-patch32 --task image
//       --batch 32 --threads 2 [--min-time 2] [--max-reps 7] [--preprocess excluded|timed]
//
// Inputs are real, as on the reference side: the texts of tests/data/real/texts.txt (cycled to
// fill a batch) and the photos of tests/data/images (the reference's list, cycled).
//   text   Embedder::embed_texts: tokenization is inside the timed call (the reference times
//          its tokenizer too).
//   image  --preprocess excluded (default, as the reference's default): Embedder::prepare once
//          (decode is outside too; resize, crop, normalize here), then embed_prepared timed: the
//          model only. --preprocess timed: embed_images, the image processor timed too.
// The Embedder's batch_size is the case's batch, so one call runs the whole batch at once.
// Timing: one warm-up call on the full batch (as bench_reference.py; --warmup-batch N for
// less), then timed calls until --min-time has passed with at least 3 calls, or --max-reps calls
// (the reference's rule); the median is reported. load_s is Embedder::load (config, tokenizer,
// checkpoint mapping). cpu_s is the user + system CPU time of all timed calls (all threads),
// cpu_util = cpu_s / their wall time. peak_rss_mib is this process's ru_maxrss, so each case
// runs in its own process (run.sh).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernels/gemm.h"
#include "mmembed/embedder.h"

#ifndef MMEMBED_SOURCE_DIR
#error "MMEMBED_SOURCE_DIR must name the source tree (bench/CMakeLists.txt sets it)"
#endif

namespace {

using mmembed::bench::base_name;
using mmembed::bench::Clock;
using mmembed::bench::cpu_seconds;
using mmembed::bench::seconds_since;

struct Args {
  std::string model, task, preprocess = "excluded";
  int batch = 1, threads = 1, max_reps = 7, warmup_batch = 0;
  double min_time = 2.0;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_models: %s\nusage: bench_models --model DIR --task text|image [--batch N] "
               "[--threads N] [--min-time S] [--max-reps N] [--preprocess excluded|timed] "
               "[--warmup-batch N]\n",
               why.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value after " + k);
    std::string v = argv[++i];
    if (k == "--model") a.model = v;
    else if (k == "--task") a.task = v;
    else if (k == "--batch") a.batch = std::stoi(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--min-time") a.min_time = std::stod(v);
    else if (k == "--max-reps") a.max_reps = std::stoi(v);
    else if (k == "--preprocess") a.preprocess = v;
    else if (k == "--warmup-batch") a.warmup_batch = std::stoi(v);
    else usage("unknown option " + k);
  }
  if (a.model.empty()) usage("--model is required");
  if (a.task != "text" && a.task != "image") usage("--task must be text or image");
  if (a.preprocess != "excluded" && a.preprocess != "timed") {
    usage("--preprocess must be excluded or timed");
  }
  if (a.batch < 1 || a.threads < 1 || a.max_reps < 1 || a.warmup_batch < 0) {
    usage("batch, threads, reps must be >= 1");
  }
  if (a.warmup_batch == 0) a.warmup_batch = a.batch;
  return a;
}

// The reference's inputs (bench_reference.py: TEXTS, IMAGES).
std::vector<std::string> batch_texts(int batch) {
  const std::string path = std::string(MMEMBED_SOURCE_DIR) + "/tests/data/real/texts.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (lines.empty()) throw std::runtime_error(path + ": no texts");
  std::vector<std::string> out;
  for (int i = 0; i < batch; ++i) out.push_back(lines[i % lines.size()]);
  return out;
}

std::vector<mmembed::Image> batch_images(int batch) {
  static const char* kImages[] = {"cat_landscape.jpg",       "motorcycle_left.jpg",
                                  "motorcycle_portrait.jpg", "astronaut_square.png",
                                  "coffee_lossless.webp",    "rocket_progressive.jpg",
                                  "cat.webp"};
  const std::string dir = std::string(MMEMBED_SOURCE_DIR) + "/tests/data/images/";
  std::vector<mmembed::Image> decoded;
  for (const char* name : kImages) decoded.push_back(mmembed::Image::read(dir + name));
  std::vector<mmembed::Image> out;
  for (int i = 0; i < batch; ++i) out.push_back(decoded[i % decoded.size()]);
  return out;
}


}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    mmembed::EmbedderOptions options;
    options.threads = args.threads;
    options.batch_size = static_cast<std::size_t>(args.batch);
    const auto t0 = Clock::now();
    const mmembed::Embedder embedder = mmembed::Embedder::load(args.model, options);
    const double load_s = seconds_since(t0);
    const mmembed::ModelInfo& info = embedder.info();
    const bool image = args.task == "image";
    if (!info.supports(image ? mmembed::InputKind::kImage : mmembed::InputKind::kText)) {
      throw std::runtime_error(args.model + ": a " + info.family + " model has no task " +
                               args.task);
    }

    const std::vector<std::string> texts =
        image ? std::vector<std::string>{} : batch_texts(args.batch);
    const std::vector<mmembed::Image> images = image ? batch_images(args.batch)
                                                     : std::vector<mmembed::Image>{};
    const bool prepared_once = image && args.preprocess == "excluded";
    mmembed::PreparedBatch prepared;
    if (prepared_once) prepared = embedder.prepare(mmembed::InputKind::kImage, images, {});
    auto call = [&]() -> mmembed::Embeddings {
      if (!image) return embedder.embed_texts(texts);
      if (prepared_once) return embedder.embed_prepared(prepared);
      return embedder.embed_images(images);
    };

    // Warm-up (first-call allocations), as the reference: the full batch unless --warmup-batch.
    if (args.warmup_batch == args.batch) {
      call();
    } else if (image) {
      embedder.embed_images(batch_images(args.warmup_batch));
    } else {
      embedder.embed_texts(batch_texts(args.warmup_batch));
    }
    std::vector<double> times;
    mmembed::Embeddings out;
    const double cpu0 = cpu_seconds();
    const auto start = Clock::now();
    while (static_cast<int>(times.size()) < args.max_reps &&
           (times.size() < 3 || seconds_since(start) < args.min_time)) {
      const auto t = Clock::now();
      out = call();
      times.push_back(seconds_since(t));
    }
    const double wall = seconds_since(start);
    const double cpu = cpu_seconds() - cpu0;
    if (out.rows != static_cast<std::size_t>(args.batch)) {
      throw std::runtime_error("wrong row count");
    }
    for (float v : out.data) {
      if (!std::isfinite(v)) throw std::runtime_error("non-finite output");
    }
    const double median = mmembed::bench::median(times);
    const std::string list = mmembed::bench::json_list(times);
    std::printf(
        "{\"impl\": \"mmembed\", \"model\": \"%s\", \"family\": \"%s\", \"task\": \"%s\", "
        "\"batch\": %d, \"threads\": %d, \"preprocess\": \"%s\", \"warmup_batch\": %d, "
        "\"load_s\": %.4f, "
        "\"times_s\": [%s], \"median_s\": %.5f, \"items_per_s\": %.4f, \"cpu_s\": %.4f, "
        "\"cpu_util\": %.3f, \"peak_rss_mib\": %.1f, \"gemm\": \"%s\"}\n",
        base_name(args.model).c_str(), info.family.c_str(), args.task.c_str(), args.batch,
        args.threads, image ? args.preprocess.c_str() : "timed", args.warmup_batch, load_s,
        list.c_str(), median,
        args.batch / median, cpu, cpu / wall, mmembed::bench::peak_rss_mib(),
        mmembed::kernels::gemm_backend_description().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_models: %s\n", e.what());
    return 1;
  }
  return 0;
}
