#include "cli_util.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <type_traits>

#include "core/check.h"
#include "core/file.h"
#include "mmembed/error.h"

namespace mmembed::cli {

void add_image_backend_option(CLI::App* cmd, std::string* backend) {
  cmd->add_option("--image-backend", *backend,
                  "Image preprocessing to reproduce: pil (transformers 4.x, and 5 with "
                  "backend=\"pil\": Pillow resize, bit-exact) or torchvision (transformers 5's "
                  "default processors when torchvision is installed); docs/numerics.md")
      ->check(CLI::IsMember({"pil", "torchvision"}))
      ->capture_default_str();
}

void add_dtype_option(CLI::App* cmd, std::string* dtype) {
  cmd->add_option("--dtype", *dtype,
                  "Precision of the model's linear layers: fp32 (agrees with the reference to\n"
                  "about 1e-6), bf16 (bfloat16 weights and products, float32 sums) or int8\n"
                  "(int8 weights, inputs quantized per row, int32 sums); docs/numerics.md")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
      ->capture_default_str();
}

namespace {
constexpr const char* kBoundedName = "mmembed-bounded";

// The shortest text that reads back as `v`; plain digits (1000000, not 1e+06) where they fit.
template <typename T>
std::string number_text(T v) {
  char buf[400];
  std::to_chars_result r{};
  if constexpr (std::is_floating_point_v<T>) {
    const bool plain = v == 0 || (std::fabs(v) >= 1e-4 && std::fabs(v) < 1e15);
    r = plain ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed)
              : std::to_chars(buf, buf + sizeof(buf), v);
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v);
  }
  return std::string(buf, r.ptr);
}
}  // namespace

std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream in(read_input_file(path, kMaxTextDataFileBytes));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::string tsv_field(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s)
    q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

template <typename T>
CLI::Option* bound(CLI::Option* opt, T lo, T hi) {
  const std::string range = "(" + number_text(lo) + " to " + number_text(hi) + ")";
  // Parsed here with from_chars, decimal only: CLI11's own conversion reads "010" as octal and
  // "0x10" as hex, and strtoull turns "-1" into 18446744073709551615. The value handed on to
  // CLI11 is rewritten in its canonical form, which its conversion reads back exactly.
  CLI::Validator v(
      [range, lo, hi](std::string& input) -> std::string {
        const std::string shown = "'" + input + "'";
        T value{};
        const char* first = input.data();
        const char* last = input.data() + input.size();
        std::from_chars_result r{};
        if constexpr (std::is_floating_point_v<T>) {
          r = std::from_chars(first, last, value, std::chars_format::general);
        } else {
          r = std::from_chars(first, last, value, 10);
        }
        if (r.ec == std::errc::result_out_of_range) return shown + " is out of range " + range;
        if (input.empty() || r.ec != std::errc() || r.ptr != last) {
          return shown + " is not a" + (std::is_floating_point_v<T> ? " number " : "n integer ") +
                 range;
        }
        if constexpr (std::is_floating_point_v<T>) {
          if (!std::isfinite(value)) return shown + " is not a finite number " + range;
        }
        if (value < lo || value > hi) return input + " is out of range " + range;
        input = number_text(value);
        return {};
      },
      range, kBoundedName);
  return opt->check(v);
}

template CLI::Option* bound<int>(CLI::Option*, int, int);
template CLI::Option* bound<std::int64_t>(CLI::Option*, std::int64_t, std::int64_t);
template CLI::Option* bound<std::uint64_t>(CLI::Option*, std::uint64_t, std::uint64_t);
template CLI::Option* bound<double>(CLI::Option*, double, double);

void apply_option_rules(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    // (A positional list such as `index rm INDEX ID...` takes all the remaining arguments.)
    if (!opt->get_positional() || opt->get_expected_max() <= 1) opt->allow_extra_args(false);
    opt->delimiter('\0');
    // The type name is followed by the validators' descriptions ("UINT:(1 to 100)").
    const std::string type = opt->get_type_name().substr(0, opt->get_type_name().find(':'));
    const bool numeric = type == "INT" || type == "UINT" || type == "FLOAT";
    if (numeric) {
      bool bounded = false;
      try {
        bounded = opt->get_validator(kBoundedName) != nullptr;
      } catch (const CLI::OptionNotFound&) {
      }
      if (!bounded) {
        std::fprintf(stderr,
                     "mmembed: internal error: numeric option %s of '%s' has no bounds "
                     "(cli::bound)\n",
                     opt->get_name().c_str(), app.get_name().c_str());
        std::abort();
      }
    }
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    apply_option_rules(*sub);
  }
}

}  // namespace mmembed::cli

namespace mmembed::cli {
namespace {

// The spellings of Python tools that name one of our options: umap-learn, scikit-learn's
// TSNE/PCA, sentence-transformers (after '_' -> '-'). Applied only where the command has the
// target option and not the spelling itself.
constexpr std::pair<const char*, const char*> kAliases[] = {
    {"random-state", "seed"}, {"n-components", "components"}, {"n-epochs", "epochs"},
    {"n-iter", "iterations"}, {"max-iter", "iterations"},     {"num-threads", "threads"},
    {"n-jobs", "threads"},    {"output-dir", "output"},       {"outdir", "output"},
};

// The option named `--name` on cmd or, through fallthrough, on its parents.
const CLI::Option* find_long(const CLI::App* cmd, const std::string& name) {
  for (const CLI::App* a = cmd; a != nullptr; a = a->get_parent()) {
    for (const CLI::Option* o : a->get_options()) {
      for (const std::string& l : o->get_lnames())
        if (l == name) return o;
    }
  }
  return nullptr;
}

const CLI::Option* find_short(const CLI::App* cmd, const std::string& name) {
  for (const CLI::App* a = cmd; a != nullptr; a = a->get_parent()) {
    for (const CLI::Option* o : a->get_options()) {
      for (const std::string& s : o->get_snames())
        if (s == name) return o;
    }
  }
  return nullptr;
}

CLI::App* find_subcommand(CLI::App* cmd, const std::string& name) {
  for (CLI::App* sub : cmd->get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  return nullptr;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Walks the arguments as CLI11 will: the command path, and each option with the values it
// takes, calling visit(index, option-or-null, name) for every "--name" / "-x" token.
template <typename Visit>
CLI::App* walk(CLI::App& app, const std::vector<std::string>& args, Visit visit) {
  CLI::App* cmd = &app;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& t = args[i];
    if (t == "--") break;
    if (t.size() > 2 && t.compare(0, 2, "--") == 0) {
      const std::size_t eq = t.find('=');
      const std::string name = t.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const CLI::Option* o = visit(i, cmd, name);
      if (o != nullptr && eq == std::string::npos && o->get_items_expected_min() > 0)
        i += static_cast<std::size_t>(o->get_items_expected_min());  // its values
      continue;
    }
    if (t.size() == 2 && t[0] == '-' && t[1] != '-') {
      const CLI::Option* o = find_short(cmd, t.substr(1));
      if (o != nullptr && o->get_items_expected_min() > 0)
        i += static_cast<std::size_t>(o->get_items_expected_min());
      continue;
    }
    if (CLI::App* sub = find_subcommand(cmd, t)) cmd = sub;
  }
  return cmd;
}

}  // namespace

std::vector<std::string> normalize_arguments(CLI::App& app, std::vector<std::string> args) {
  walk(app, args, [&](std::size_t i, CLI::App* cmd, const std::string& name) -> const CLI::Option* {
    if (const CLI::Option* o = find_long(cmd, name)) return o;
    std::string dashed = name;
    for (char& c : dashed)
      c = c == '_' ? '-' : c;
    std::string target = find_long(cmd, dashed) ? dashed : "";
    for (const auto& [from, to] : kAliases) {
      if (target.empty() && dashed == from && find_long(cmd, to)) target = to;
    }
    if (target.empty()) return nullptr;
    const std::size_t eq = args[i].find('=');
    args[i] = "--" + target + (eq == std::string::npos ? "" : args[i].substr(eq));
    return find_long(cmd, target);
  });
  return args;
}

std::string suggest_options(CLI::App& app, const std::vector<std::string>& args) {
  std::string out;
  walk(app, args, [&](std::size_t, CLI::App* cmd, const std::string& name) -> const CLI::Option* {
    if (const CLI::Option* o = find_long(cmd, name)) return o;
    std::string best;
    std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
    for (const CLI::App* a = cmd; a != nullptr; a = a->get_parent()) {
      for (const CLI::Option* o : a->get_options()) {
        for (const std::string& l : o->get_lnames()) {
          const std::size_t d = edit_distance(name, l);
          if (d < best_d) best_d = d, best = l;
        }
      }
    }
    const std::string where = cmd->get_parent() ? "'" + cmd->get_name() + "'" : "mmembed";
    out += best.empty() ? "mmembed: --" + escape_for_message(name) + " is not an option of " +
                              where + " (see --help)\n"
                        : "mmembed: --" + escape_for_message(name) + " is not an option of " +
                              where + "; did you mean --" + best + "?\n";
    return nullptr;
  });
  return out;
}

}  // namespace mmembed::cli
