// One benchmark case of mmembed's BridgeTower (fp32, CPU), the counterpart of
// bench_reference.py: same tasks, same input shapes, same timing rule, one JSON line out.
//
//   bench_bridgetower --model ~/.cache/mmembed/bench/bridgetower-base --task image
//       --batch 8 --threads 2 [--min-time 2] [--max-reps 7] [--stages N]
//
// Tasks (inputs are preprocessed tensors: random ids / pixels of a fixed seed):
//   image          embed_image (ITC checkpoint) or image_cls_features (trunk-only checkpoint)
//   text16, text77 embed_text / text_cls_features on texts of 16 / 77 tokens
//   pair           embed_pair (ITC) or forward() (trunk) on an image + 16-token caption
// Timing: one warm-up call on a batch of one, then calls on the full batch until --min-time has
// passed (at least one, at most --max-reps); the median is reported. load_s is
// BridgeTower::load (config, checkpoint mapping, weight binding). peak_rss_mib is this process's
// ru_maxrss, so each case must run in its own process (run.sh does).
// --stages N: after the timed calls, N more calls with a stage hook (RunOptions::on_stage) that
// charges the wall time since the previous stage to the stage just reported, summed over the
// stages of one kind ("text/layer_3" -> "text/layer_*") and printed as a Markdown table (median
// of the N calls, ms per call). With a hook the last layers run in full (no class-token-only
// shortcut), so these calls do a little more work than the timed ones.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "bench_util.h"
#include "models/bridgetower/bridgetower.h"

namespace {

using mmembed::DType;
using mmembed::Tensor;
using mmembed::models::bridgetower::BridgeTower;
using mmembed::bench::base_name;
using mmembed::bench::Clock;
using mmembed::bench::seconds_since;

struct Args {
  std::string model, task;
  int batch = 1, threads = 1, max_reps = 7, stages = 0;
  double min_time = 2.0;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "bench_bridgetower: %s\nusage: bench_bridgetower --model DIR --task "
               "image|text16|text77|pair [--batch N] [--threads N] [--min-time S] "
               "[--max-reps N] [--stages N]\n",
               why);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + k).c_str());
    std::string v = argv[++i];
    if (k == "--model") a.model = v;
    else if (k == "--task") a.task = v;
    else if (k == "--batch") a.batch = std::stoi(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--min-time") a.min_time = std::stod(v);
    else if (k == "--max-reps") a.max_reps = std::stoi(v);
    else if (k == "--stages") a.stages = std::stoi(v);
    else usage(("unknown option " + k).c_str());
  }
  if (a.model.empty()) usage("--model is required");
  if (a.task != "image" && a.task != "text16" && a.task != "text77" && a.task != "pair") {
    usage("--task must be image, text16, text77 or pair");
  }
  if (a.batch < 1 || a.threads < 1 || a.max_reps < 1) usage("batch, threads, reps must be >= 1");
  return a;
}

struct Inputs {
  Tensor ids, mask, pixels;
};

Inputs make_inputs(const BridgeTower& model, const std::string& task, int batch, unsigned seed) {
  const auto& c = model.config();
  std::mt19937_64 rng(seed);
  Inputs in;
  if (task != "image") {
    const std::int64_t len = task == "text77" ? 77 : 16;
    in.ids = Tensor::empty(DType::I64, {batch, len});
    in.mask = Tensor::empty(DType::I64, {batch, len});
    std::uniform_int_distribution<std::int64_t> tok(3, c.text.vocab_size - 1);
    auto* ids = in.ids.data<std::int64_t>();
    for (std::int64_t i = 0; i < batch * len; ++i) {
      const std::int64_t t = i % len;
      ids[i] = t == 0 ? 0 : t == len - 1 ? 2 : tok(rng);
      in.mask.data<std::int64_t>()[i] = 1;
    }
  }
  if (task == "image" || task == "pair") {
    const std::int64_t s = c.vision.image_size;
    in.pixels = Tensor::empty(DType::F32, {batch, c.vision.num_channels, s, s});
    std::normal_distribution<float> px(0.0f, 1.0f);
    float* p = in.pixels.data<float>();
    for (std::int64_t i = 0; i < in.pixels.numel(); ++i) p[i] = px(rng);
  }
  return in;
}

// One call of the task; returns the output (checked for finiteness by the caller).
Tensor run(const BridgeTower& model, const std::string& task, const Inputs& in,
           const mmembed::models::bridgetower::RunOptions& o = {}) {
  const bool itc = model.has_itc_heads();
  if (task == "image") {
    return itc ? model.embed_image(in.pixels, o) : model.image_cls_features(in.pixels, o);
  }
  if (task == "pair") {
    if (itc) return model.embed_pair(in.ids, in.mask, in.pixels, o);
    return model.forward(in.ids, in.mask, in.pixels, o).pooler_output;
  }
  return itc ? model.embed_text(in.ids, in.mask, o) : model.text_cls_features(in.ids, in.mask, o);
}

// "cross/text_layer_3" -> "cross/text_layer_*", "vision/ln_post/call_2" -> "vision/ln_post/call_*".
std::string stage_kind(const std::string& name) {
  std::string s = name;
  while (!s.empty() && std::isdigit(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s.size() < name.size() ? s + "*" : s;
}

// --stages: the calls with a timing hook, then the table (stages in the order first seen).
void profile_stages(const BridgeTower& model, const std::string& task, const Inputs& in,
                    int calls) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> per_call;  // kind -> ms per call
  std::vector<double> totals;
  for (int c = 0; c < calls; ++c) {
    std::map<std::string, double> ms;
    auto last = Clock::now();
    mmembed::models::bridgetower::RunOptions o;
    o.on_stage = [&](const std::string& name, const Tensor&) {
      const std::string kind = stage_kind(name);
      if (std::find(order.begin(), order.end(), kind) == order.end()) order.push_back(kind);
      ms[kind] += 1e3 * seconds_since(last);
      last = Clock::now();
    };
    const auto t0 = Clock::now();
    run(model, task, in, o);
    totals.push_back(1e3 * seconds_since(t0));
    double hooked = 0;
    for (const auto& [kind, v] : ms) {
      per_call[kind].push_back(v);
      hooked += v;
    }
    per_call["(after the last stage)"].push_back(totals.back() - hooked);
  }
  order.push_back("(after the last stage)");
  const double total = mmembed::bench::median(totals);
  std::printf("\n| stage (all calls of that kind) | ms per call | share |\n|---|---:|---:|\n");
  for (const std::string& kind : order) {
    const double m = mmembed::bench::median(per_call[kind]);
    std::printf("| %s | %.2f | %.1f%% |\n", kind.c_str(), m, 100.0 * m / total);
  }
  std::printf("| whole call | %.2f | |\n", total);
}


}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    mmembed::kernels::set_num_threads(args.threads);
    const auto t0 = Clock::now();
    const BridgeTower model = BridgeTower::load(args.model);
    const double load_s = seconds_since(t0);

    run(model, args.task, make_inputs(model, args.task, 1, 1));  // warm-up on one item
    const Inputs in = make_inputs(model, args.task, args.batch, 0);
    std::vector<double> times;
    Tensor out;
    const double cpu0 = mmembed::bench::cpu_seconds();
    const auto start = Clock::now();
    while (static_cast<int>(times.size()) < args.max_reps) {
      const auto t = Clock::now();
      out = run(model, args.task, in);
      times.push_back(seconds_since(t));
      if (seconds_since(start) >= args.min_time) break;
    }
    const double wall = seconds_since(start);
    const double cpu = mmembed::bench::cpu_seconds() - cpu0;
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      if (!std::isfinite(out.data<float>()[i])) throw std::runtime_error("non-finite output");
    }
    const double median = mmembed::bench::median(times);
    const std::string list = mmembed::bench::json_list(times);
    std::printf(
        "{\"impl\": \"mmembed\", \"model\": \"%s\", \"task\": \"%s\", \"batch\": %d, "
        "\"threads\": %d, \"load_s\": %.4f, \"times_s\": [%s], \"median_s\": %.5f, "
        "\"items_per_s\": %.4f, \"cpu_util\": %.3f, \"peak_rss_mib\": %.1f, \"gemm\": \"%s\"}\n",
        base_name(args.model).c_str(), args.task.c_str(), args.batch, args.threads, load_s,
        list.c_str(), median, args.batch / median, cpu / wall, mmembed::bench::peak_rss_mib(),
        mmembed::kernels::gemm_backend_description().c_str());
    if (args.stages > 0) profile_stages(model, args.task, in, args.stages);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_bridgetower: %s\n", e.what());
    return 1;
  }
  return 0;
}
