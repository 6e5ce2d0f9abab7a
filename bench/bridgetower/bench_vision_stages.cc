// The stages of one ViT-B vision block (the BridgeTower / CLIP image tower) timed one by one on
// the kernels the model runs, at each thread count in turn, to show which stage does not halve
// its time on 2 threads (issue #4: the vision tower at 2 threads).
//
//   bench_vision_stages [--tokens 325] [--hidden 768] [--heads 12] [--threads 1,2] [--rounds 3]
//                       [--reps 40]
//
// A block is: ln_1, the packed QKV projection, attention (12 heads: QK^T, softmax, PV), the output
// projection, the residual add, ln_2, fc1 with QuickGELU fused, fc2, the residual add (as
// nn::PreLnBlock::forward; the adds and norms through the same kernels). Random weights, fixed
// seed. Each round runs every thread count once (alternating, so a busy machine disturbs them
// alike); each stage's time is the median over the round's --reps blocks, and the table shows
// the median over rounds. "x of ideal" = (1-thread time / N) / N-thread time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/parallel.h"

namespace {

using mmembed::bench::Clock;
using mmembed::bench::median;
using mmembed::bench::seconds_since;
namespace k = mmembed::kernels;

struct Args {
  std::int64_t tokens = 325, hidden = 768, heads = 12;
  std::vector<int> threads = {1, 2};
  int rounds = 3, reps = 40;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_vision_stages: %s\nusage: bench_vision_stages [--tokens N] [--hidden N] "
               "[--heads N] [--threads 1,2] [--rounds N] [--reps N]\n",
               why.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) usage("missing value after " + key);
    const std::string v = argv[++i];
    if (key == "--tokens") a.tokens = std::stoll(v);
    else if (key == "--hidden") a.hidden = std::stoll(v);
    else if (key == "--heads") a.heads = std::stoll(v);
    else if (key == "--rounds") a.rounds = std::stoi(v);
    else if (key == "--reps") a.reps = std::stoi(v);
    else if (key == "--threads") {
      a.threads.clear();
      for (std::size_t p = 0; p < v.size();) {
        const std::size_t q = v.find(',', p);
        a.threads.push_back(std::stoi(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else {
      usage("unknown option " + key);
    }
  }
  if (a.tokens < 1 || a.hidden < 1 || a.heads < 1 || a.hidden % a.heads != 0 || a.rounds < 1 ||
      a.reps < 1 || a.threads.empty()) {
    usage("sizes, rounds and reps must be >= 1 and hidden a multiple of heads");
  }
  for (int t : a.threads) {
    if (t < 1) usage("thread counts must be >= 1");
  }
  return a;
}

struct Stage {
  const char* name;
  std::function<void()> run;
};

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const std::int64_t T = a.tokens, D = a.hidden, F = 4 * a.hidden;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  auto random = [&](std::int64_t n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
  };
  std::vector<float> x = random(T * D), gamma = random(D), beta = random(D);
  std::vector<float> w_qkv = random(3 * D * D), b_qkv = random(3 * D), w_o = random(D * D);
  std::vector<float> b_o = random(D), w_1 = random(F * D), b_1 = random(F), w_2 = random(D * F);
  std::vector<float> b_2 = random(D);
  std::vector<float> h(static_cast<std::size_t>(T * D)), qkv(static_cast<std::size_t>(T * 3 * D));
  std::vector<float> att(static_cast<std::size_t>(T * D)), res(static_cast<std::size_t>(T * D));
  std::vector<float> mlp(static_cast<std::size_t>(T * F)), out(static_cast<std::size_t>(T * D));
  const k::AttentionDims dims{1, T, T, a.heads, D / a.heads};
  const float scale = 1.0f / std::sqrt(static_cast<float>(D / a.heads));
  auto add = [](float* p, const float* q, std::int64_t n) {
    k::parallel_for(n, 1 << 14, [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) p[i] += q[i];
    });
  };
  const std::vector<Stage> stages = {
      {"ln_1", [&] { k::layer_norm(x.data(), gamma.data(), beta.data(), h.data(), T, D, 1e-5f); }},
      {"qkv", [&] { k::linear(h.data(), w_qkv.data(), b_qkv.data(), qkv.data(), T, D, 3 * D); }},
      {"attention",
       [&] {
         k::attention(qkv.data(), 3 * D, qkv.data() + D, 3 * D, qkv.data() + 2 * D, 3 * D,
                      att.data(), D, dims, scale, nullptr, false);
       }},
      {"out_proj", [&] { k::linear(att.data(), w_o.data(), b_o.data(), res.data(), T, D, D); }},
      {"add_1", [&] { add(res.data(), x.data(), T * D); }},
      {"ln_2",
       [&] { k::layer_norm(res.data(), gamma.data(), beta.data(), h.data(), T, D, 1e-5f); }},
      {"fc1+gelu",
       [&] {
         k::linear(h.data(), w_1.data(), b_1.data(), mlp.data(), T, D, F, k::Epilogue::QuickGelu);
       }},
      {"fc2", [&] { k::linear(mlp.data(), w_2.data(), b_2.data(), out.data(), T, F, D); }},
      {"add_2", [&] { add(out.data(), res.data(), T * D); }},
  };
  const std::size_t S = stages.size();
  // per thread count: per stage (and the whole block, last): one median per round
  std::vector<std::vector<std::vector<double>>> ms(
      a.threads.size(), std::vector<std::vector<double>>(S + 1));
  for (int round = 0; round < a.rounds; ++round) {
    for (std::size_t ti = 0; ti < a.threads.size(); ++ti) {
      k::set_num_threads(a.threads[ti]);
      for (const Stage& s : stages) s.run();  // warm-up
      std::vector<std::vector<double>> t(S + 1);
      for (int rep = 0; rep < a.reps; ++rep) {
        const auto block = Clock::now();
        for (std::size_t i = 0; i < S; ++i) {
          const auto start = Clock::now();
          stages[i].run();
          t[i].push_back(seconds_since(start) * 1e3);
        }
        t[S].push_back(seconds_since(block) * 1e3);
      }
      for (std::size_t i = 0; i <= S; ++i) ms[ti][i].push_back(median(t[i]));
    }
  }
  std::printf("tokens %lld, hidden %lld, heads %lld; %d rounds x %d blocks; %s\n",
              static_cast<long long>(T), static_cast<long long>(D),
              static_cast<long long>(a.heads), a.rounds, a.reps,
              k::gemm_backend_description().c_str());
  std::printf("| stage |");
  for (int t : a.threads) std::printf(" %d thr ms |", t);
  for (std::size_t ti = 1; ti < a.threads.size(); ++ti) {
    std::printf(" %d thr x of ideal |", a.threads[ti]);
  }
  std::printf("\n|---|");
  for (std::size_t ti = 0; ti < 2 * a.threads.size() - 1; ++ti) std::printf("---:|");
  std::printf("\n");
  for (std::size_t i = 0; i <= S; ++i) {
    std::printf("| %s |", i < S ? stages[i].name : "block");
    std::vector<double> med;
    for (std::size_t ti = 0; ti < a.threads.size(); ++ti) {
      med.push_back(median(ms[ti][i]));
      std::printf(" %.3f |", med.back());
    }
    for (std::size_t ti = 1; ti < a.threads.size(); ++ti) {
      const double ideal = med[0] * a.threads[0] / a.threads[ti];
      std::printf(" %.2f |", ideal / med[ti]);
    }
    std::printf("\n");
  }
  return 0;
}
