// Helpers shared by the CLI commands: text files, CSV fields, and the rules every option follows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace mmembed::cli {

// --image-backend pil|torchvision (default pil) on a command that loads a model; pass the
// string to mmembed::parse_image_backend.
void add_image_backend_option(CLI::App* cmd, std::string* backend);
// --dtype fp32|bf16|int8 into *dtype, for mmembed::parse_model_dtype.
void add_dtype_option(CLI::App* cmd, std::string* dtype);

// The lines of a text file (a trailing '\r' removed). IoError naming the path and the reason
// when it cannot be opened.
std::vector<std::string> read_lines(const std::string& path);

// A CSV field: quoted (RFC 4180, quotes doubled) when it holds a comma, a quote or a newline.
std::string csv_field(const std::string& s);
// A TSV field: tabs and line breaks (which would shift the columns or rows) as spaces.
std::string tsv_field(std::string s);

// Upper bounds of numeric options where the library has none of its own. They are far above any
// useful value and keep every product the commands form from them (rows * k, seconds * 1000)
// far from overflowing.
inline constexpr std::int64_t kMaxCount = 1'000'000'000;  // --top, --quality-rows
inline constexpr std::int64_t kMaxComponents = 65536;     // reduce --components
inline constexpr std::int64_t kMaxNeighbors = 100'000;    // --n-neighbors
inline constexpr double kMaxPerplexity = 30'000.0;        // t-SNE uses 3 x perplexity neighbours
inline constexpr int kMaxIterations = 1'000'000;          // --epochs, --iterations
inline constexpr double kMaxSpread = 1000.0;              // --spread, --min-dist
// pow(|x - y|, p) overflows a double above p = 100 once coordinates differ by 1000; the limit of
// large p is --metric chebyshev.
inline constexpr double kMaxMinkowskiP = 100.0;
// --max-image-pixels: a terapixel; 0 already means "no limit".
inline constexpr std::int64_t kMaxImagePixelsLimit = 1'000'000'000'000;

// A numeric option's value must be a plain decimal number (no hex or octal, no trailing bytes,
// finite) between `lo` and `hi`; otherwise the parse fails (exit 2) with a message naming the
// option, the value and the range: "--chunk-size: 0 is out of range (1 to 1000000)". Returns
// `opt` for chaining. Instantiated for int, std::int64_t, std::uint64_t and double.
template <typename T>
CLI::Option* bound(CLI::Option* opt, T lo, T hi);

// Applied by main() to the whole command tree once every option is registered:
//  - every value reaches the command byte for byte: CLI11 would split a value of a repeatable
//    option that looks like a list ("[a, b]" -> "a", " b") and let one --text swallow the
//    arguments after it; here a repeatable option takes exactly one value (two for --pair) per
//    occurrence, and nothing is split;
//  - every numeric option must have been given bounds with bound(): a new one without them
//    aborts at startup (an internal error caught by every CLI test), so none is left unbounded.
void apply_option_rules(CLI::App& app);

// The arguments with the spellings users bring from Python tools rewritten to our options'
// names, where the command has no option of that spelling itself: '_' for '-' (--n_neighbors,
// --batch_size, --random_state) and the aliases --random-state (--seed), --n-components
// (--components), --n-epochs (--epochs), --n-iter / --max-iter (--iterations), --n-jobs /
// --num-threads (--threads), --output-dir (--output). Option values are never touched.
std::vector<std::string> normalize_arguments(CLI::App& app, std::vector<std::string> args);

// After a failed parse: one line per "--name" the command path does not know, with the closest
// option name ("did you mean --n-neighbors?") when one is close. "" when there is none.
std::string suggest_options(CLI::App& app, const std::vector<std::string>& args);

}  // namespace mmembed::cli
