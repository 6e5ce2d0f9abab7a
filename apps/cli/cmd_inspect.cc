// mmembed inspect PATH [--json] [--show NAME [--all]]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.h"
#include "core/check.h"
#include "io/checkpoint.h"

namespace mmembed::cli {

namespace {

struct InspectOptions {
  std::string path;
  bool json = false;
  std::string show;
  bool all = false;
};

std::string format_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.8g", v);
  return buf;
}

std::string human_count(std::int64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof(buf), "%.2fB", n / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof(buf), "%.2fM", n / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof(buf), "%.1fK", n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  return buf;
}

int run_inspect(const InspectOptions& opt) {
  io::Checkpoint ckpt = io::open_checkpoint(opt.path);

  if (!opt.show.empty()) {
    const io::TensorInfo* info = ckpt.find(opt.show);
    MMEMBED_CHECK(info != nullptr, InvalidArgument, ckpt.path(), ": no tensor named '", opt.show,
                  "' (", ckpt.tensors().size(), " tensors; list them with 'mmembed inspect ",
                  opt.path, "')");
    Tensor t = ckpt.get_f32(opt.show);
    std::int64_t count = opt.all ? t.numel() : std::min<std::int64_t>(t.numel(), 16);
    const float* v = t.data<float>();
    if (opt.json) {
      nlohmann::json j;
      j["name"] = info->name;
      j["dtype"] = info->dtype_name;
      j["shape"] = info->shape;
      j["numel"] = info->numel;
      nlohmann::json values = nlohmann::json::array();
      for (std::int64_t i = 0; i < count; ++i) {
        float x = v[i];
        if (std::isfinite(x)) values.push_back(x);
        else values.push_back(std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf"));
      }
      j["values"] = values;
      j["truncated"] = count < t.numel();
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return 0;
    }
    std::printf("%s %s%s (%lld values, shown as f32%s)\n", info->name.c_str(),
                info->dtype_name.c_str(), shape_str(info->shape).c_str(),
                static_cast<long long>(t.numel()),
                count < t.numel() ? str_cat(", first ", count, "; --all for every value").c_str() : "");
    for (std::int64_t i = 0; i < count; ++i) {
      std::printf("%s%s", i ? (i % 8 == 0 ? "\n" : " ") : "", format_value(v[i]).c_str());
    }
    std::printf("\n");
    return 0;
  }

  std::map<std::string, std::int64_t> by_dtype;
  for (const io::TensorInfo& t : ckpt.tensors()) by_dtype[t.dtype_name] += t.numel;

  if (opt.json) {
    nlohmann::json j;
    j["path"] = ckpt.path();
    j["format"] = ckpt.format();
    j["files"] = ckpt.files();
    j["tensor_count"] = ckpt.tensors().size();
    j["parameters"] = ckpt.parameter_count();
    j["dtypes"] = by_dtype;
    if (!ckpt.metadata().empty()) j["metadata"] = ckpt.metadata();
    nlohmann::json tensors = nlohmann::json::array();
    for (const io::TensorInfo& t : ckpt.tensors()) {
      tensors.push_back({{"name", t.name}, {"dtype", t.dtype_name}, {"shape", t.shape},
                         {"loadable", t.dtype.has_value()}});
    }
    j["tensors"] = tensors;
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }

  std::printf("path:       %s\n", ckpt.path().c_str());
  std::printf("format:     %s\n", ckpt.format().c_str());
  if (ckpt.files().size() > 1) std::printf("files:      %zu shards\n", ckpt.files().size());
  std::printf("tensors:    %zu\n", ckpt.tensors().size());
  std::printf("parameters: %lld (%s)\n", static_cast<long long>(ckpt.parameter_count()),
              human_count(ckpt.parameter_count()).c_str());
  std::string dtypes;
  for (const auto& [name, n] : by_dtype) dtypes += str_cat(dtypes.empty() ? "" : ", ", name, " ", n);
  std::printf("dtypes:     %s\n", dtypes.c_str());
  for (const auto& [k, v] : ckpt.metadata()) std::printf("metadata:   %s = %s\n", k.c_str(), v.c_str());
  std::printf("\n");
  std::size_t width = 4;
  for (const io::TensorInfo& t : ckpt.tensors()) width = std::max(width, t.name.size());
  std::printf("%-*s  %-6s %s\n", static_cast<int>(width), "name", "dtype", "shape");
  for (const io::TensorInfo& t : ckpt.tensors()) {
    std::printf("%-*s  %-6s %s%s\n", static_cast<int>(width), t.name.c_str(),
                t.dtype_name.c_str(), shape_str(t.shape).c_str(),
                t.dtype ? "" : "  (not loadable)");
  }
  return 0;
}

}  // namespace

Runner add_inspect(CLI::App& app, const GlobalOptions&) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "List the tensors of a checkpoint: a .safetensors file, a PyTorch .bin (zip), a shard "
      "index (*.index.json) or a model folder");
  cmd->add_option("path", opt->path, "Checkpoint file or model folder")->required();
  cmd->add_flag("--json", opt->json, "Print machine-readable JSON");
  cmd->add_option("--show", opt->show, "Print the values of tensor NAME (as f32)")
      ->option_text("NAME");
  cmd->add_flag("--all", opt->all, "With --show: print every value, not the first 16");
  return [opt] { return run_inspect(*opt); };
}

}  // namespace mmembed::cli
