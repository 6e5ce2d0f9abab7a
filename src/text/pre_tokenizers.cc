#include <algorithm>

#include "core/check.h"
#include "text/pipeline.h"
#include "text/unicode.h"

namespace mmembed::text::detail {

namespace {

// (byte range, is_match) covering the whole piece, as tokenizers' Pattern::find_matches.
using Matches = std::vector<std::pair<std::pair<std::size_t, std::size_t>, bool>>;

void regex_matches(const Regex& re, std::string_view s, Matches& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return;
  }
  std::vector<std::pair<std::size_t, std::size_t>> found;
  re.find_all(s, found);
  std::size_t prev = 0;
  for (auto [b, e] : found) {
    if (prev != b) out.push_back({{prev, b}, false});
    out.push_back({{b, e}, true});
    prev = e;
  }
  if (prev != s.size()) out.push_back({{prev, s.size()}, false});
}

template <typename Pred>
void char_matches(Pred pred, std::string_view s, Matches& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return;
  }
  std::size_t last_offset = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t b = i;
    const char32_t c = unicode::decode(s, i);
    if (pred(c)) {
      if (last_offset < b) out.push_back({{last_offset, b}, false});
      out.push_back({{b, i}, true});
      last_offset = i;
    }
  }
  if (s.size() > last_offset) out.push_back({{last_offset, s.size()}, false});
}

void literal_matches(const std::string& lit, std::string_view s, Matches& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({{0, 0}, false});
    return;
  }
  if (lit.empty()) {
    out.push_back({{0, s.size()}, false});
    return;
  }
  std::size_t prev = 0;
  for (std::size_t pos = s.find(lit); pos != std::string_view::npos;
       pos = s.find(lit, pos + lit.size())) {
    if (prev != pos) out.push_back({{prev, pos}, false});
    out.push_back({{pos, pos + lit.size()}, true});
    prev = pos + lit.size();
  }
  if (prev != s.size()) out.push_back({{prev, s.size()}, false});
}

// NormalizedString::split: applies the behaviour to the matches, appends the kept, non-empty
// slices of `s` to `out`.
void apply_split(std::string_view s, Matches& m, SplitBehavior behavior,
                 std::vector<std::string>& out) {
  // (range, remove)
  std::vector<std::pair<std::pair<std::size_t, std::size_t>, bool>> splits;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (auto& [r, is_match] : m) splits.push_back({r, false});
      break;
    case SplitBehavior::kRemoved:
      splits.assign(m.begin(), m.end());
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (auto& [r, is_match] : m) {
        if (is_match == previous_match && !splits.empty()) {
          splits.back().first.second = r.second;
        } else {
          splits.push_back({r, false});
        }
        previous_match = is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (auto& [r, is_match] : m) {
        if (is_match && !previous_match && !splits.empty()) {
          splits.back().first.second = r.second;
        } else {
          splits.push_back({r, false});
        }
        previous_match = is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = m.rbegin(); it != m.rend(); ++it) {
        auto& [r, is_match] = *it;
        if (is_match && !previous_match && !splits.empty()) {
          splits.back().first.first = r.first;
        } else {
          splits.push_back({r, false});
        }
        previous_match = is_match;
      }
      std::reverse(splits.begin(), splits.end());
      break;
    }
  }
  for (auto& [r, remove] : splits) {
    if (remove || r.first == r.second) continue;
    out.emplace_back(s.substr(r.first, r.second - r.first));
  }
}

const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {
    if (use_regex_) regex_ = std::make_unique<Regex>(kGpt2Pattern, "ByteLevel pre-tokenizer");
  }
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    std::vector<std::string> split;
    Matches m;
    std::string tmp;
    for (auto& piece : pieces) {
      std::string_view s = piece;
      if (add_prefix_space_ && (piece.empty() || piece[0] != ' ')) {
        tmp = " " + piece;
        s = tmp;
      }
      if (use_regex_) {
        regex_matches(*regex_, s, m);
        apply_split(s, m, SplitBehavior::kIsolated, split);
      } else if (!s.empty()) {
        split.emplace_back(s);
      }
    }
    const auto& table = byte_to_unicode();
    pieces.clear();
    pieces.reserve(split.size());
    for (const auto& p : split) {
      std::string mapped;
      mapped.reserve(p.size() * 2);
      for (unsigned char b : p) mapped += table[b];
      pieces.push_back(std::move(mapped));
    }
  }

 private:
  bool add_prefix_space_, use_regex_;
  std::unique_ptr<Regex> regex_;
};

class Split final : public PreTokenizer {
 public:
  Split(const std::string& pattern, bool is_regex, SplitBehavior behavior, bool invert)
      : literal_(pattern), behavior_(behavior), invert_(invert) {
    if (is_regex) regex_ = std::make_unique<Regex>(pattern, "Split pre-tokenizer");
  }
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    std::vector<std::string> out;
    Matches m;
    for (const auto& piece : pieces) {
      if (regex_) {
        regex_matches(*regex_, piece, m);
      } else {
        literal_matches(literal_, piece, m);
      }
      if (invert_)
        for (auto& x : m) x.second = !x.second;
      apply_split(piece, m, behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

bool is_bert_punctuation(char32_t c) {
  const bool ascii_punct =
      (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return ascii_punct || unicode::is_punctuation(c);
}

class BertPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    std::vector<std::string> words;
    Matches m;
    for (const auto& piece : pieces) {
      char_matches(unicode::is_white_space, piece, m);
      apply_split(piece, m, SplitBehavior::kRemoved, words);
    }
    pieces.clear();
    for (const auto& w : words) {
      char_matches(is_bert_punctuation, w, m);
      apply_split(w, m, SplitBehavior::kIsolated, pieces);
    }
  }
};

class WhitespaceSplit final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    std::vector<std::string> out;
    Matches m;
    for (const auto& piece : pieces) {
      char_matches(unicode::is_white_space, piece, m);
      apply_split(piece, m, SplitBehavior::kRemoved, out);
    }
    pieces = std::move(out);
  }
};

class PreSequence final : public PreTokenizer {
 public:
  explicit PreSequence(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    std::array<bool, 256> direct{};
    for (int b = 33; b <= 126; ++b) direct[b] = true;
    for (int b = 161; b <= 172; ++b) direct[b] = true;
    for (int b = 174; b <= 255; ++b) direct[b] = true;
    char32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      char32_t cp = direct[b] ? static_cast<char32_t>(b) : 256 + n++;
      unicode::append_utf8(t[b], cp);
    }
    return t;
  }();
  return table;
}

std::unique_ptr<PreTokenizer> make_byte_level(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevel>(add_prefix_space, use_regex);
}
std::unique_ptr<PreTokenizer> make_split(const std::string& pattern, bool is_regex,
                                         SplitBehavior behavior, bool invert) {
  return std::make_unique<Split>(pattern, is_regex, behavior, invert);
}
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() {
  return std::make_unique<BertPreTokenizer>();
}
std::unique_ptr<PreTokenizer> make_whitespace_split() {
  return std::make_unique<WhitespaceSplit>();
}
std::unique_ptr<PreTokenizer> make_pre_sequence(std::vector<std::unique_ptr<PreTokenizer>> parts) {
  return std::make_unique<PreSequence>(std::move(parts));
}

}  // namespace mmembed::text::detail
