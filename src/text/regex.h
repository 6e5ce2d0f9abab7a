// A compiled regular expression with the semantics HF tokenizers uses: Oniguruma (the engine of
// the Rust `onig` crate that tokenizers is built with), UTF-8, the default Oniguruma syntax, no
// options. Immutable after construction; `find_all` may be called from several threads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mmembed::text {

class Regex {
 public:
  // Throws InvalidArgument naming `what` and Oniguruma's message when `pattern` does not compile.
  Regex(std::string_view pattern, std::string_view what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [start, end) of the successive non-overlapping matches in `text`, leftmost-first,
  // each search starting where the previous match ended (as onig's `find_iter`: an empty match
  // right after the previous match is skipped by advancing one character). `text` must be
  // valid UTF-8.
  void find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* regex_ = nullptr;  // OnigRegex
};

}  // namespace mmembed::text
