#include <algorithm>

#include "core/check.h"
#include "text/pipeline.h"
#include "text/unicode.h"

namespace mmembed::text::detail {

void AddedVocabulary::Trie::insert(std::string_view pattern, std::int32_t token) {
  if (pattern.empty()) return;
  std::int32_t node = 0;
  for (unsigned char b : pattern) {
    auto& next = nodes[node].next;
    auto it = std::lower_bound(next.begin(), next.end(), b,
                               [](const auto& e, unsigned char v) { return e.first < v; });
    if (it != next.end() && it->first == b) {
      node = it->second;
    } else {
      const auto child = static_cast<std::int32_t>(nodes.size());
      next.insert(it, {b, child});  // `next` may dangle after the push_back below
      nodes.push_back(Node{});
      node = child;
    }
  }
  // The first token registered for a pattern wins (duplicates of one content are one token).
  if (nodes[node].token < 0) nodes[node].token = token;
}

std::pair<std::int32_t, std::size_t> AddedVocabulary::Trie::longest_at(std::string_view text,
                                                                       std::size_t pos) const {
  std::pair<std::int32_t, std::size_t> best{-1, 0};
  std::int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const auto& next = nodes[node].next;
    const auto b = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(next.begin(), next.end(), b,
                               [](const auto& e, unsigned char v) { return e.first < v; });
    if (it == next.end() || it->first != b) break;
    node = it->second;
    if (nodes[node].token >= 0) best = {nodes[node].token, i + 1 - pos};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (std::size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer != nullptr) normalizer->normalize(pattern);
      normalized_trie_.insert(pattern, static_cast<std::int32_t>(k));
    } else {
      raw_trie_.insert(t.content, static_cast<std::int32_t>(k));
    }
  }
}

std::optional<std::int64_t> AddedVocabulary::find(std::string_view content) const {
  for (const auto& t : tokens_)
    if (t.content == content) return t.id;
  return std::nullopt;
}

namespace {

// Rust-regex `\w$` on text[..end] / `^\w` on text[begin..].
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return unicode::is_word_char(unicode::decode(s, i));
}
bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = 0;
  return unicode::is_word_char(unicode::decode(s, i));
}
// Start of the whitespace run that ends `s` (`\s*$`).
std::size_t trailing_space_start(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t i = end - 1;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    std::size_t j = i;
    if (!unicode::is_white_space(unicode::decode(s, j))) break;
    end = i;
  }
  return end;
}
// Length of the whitespace run that starts `s` (`^\s*`).
std::size_t leading_space_len(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t j = i;
    if (!unicode::is_white_space(unicode::decode(s, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

void AddedVocabulary::split(std::string_view text, const Trie& trie,
                            std::vector<Segment>& out) const {
  if (text.empty()) return;
  if (trie.empty()) {
    out.push_back(Segment{std::string(text), -1});
    return;
  }
  std::size_t start_offset = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    auto [k, len] = trie.longest_at(text, pos);
    if (k < 0) {
      ++pos;
      continue;
    }
    std::size_t start = pos;
    std::size_t stop = pos + len;
    pos = stop;  // the matcher resumes after the match itself, whatever strip does below
    const AddedToken& t = tokens_[static_cast<std::size_t>(k)];
    if (t.single_word) {
      const bool start_space = start == 0 || !ends_with_word(text.substr(0, start));
      const bool stop_space = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (t.rstrip) stop += leading_space_len(text.substr(stop));
    if (start_offset < start)
      out.push_back(Segment{std::string(text.substr(start_offset, start - start_offset)), -1});
    out.push_back(Segment{std::string(text.substr(start, stop - start)), t.id});
    start_offset = stop;
  }
  if (start_offset < text.size())
    out.push_back(Segment{std::string(text.substr(start_offset)), -1});
}

void AddedVocabulary::extract_and_normalize(std::string_view text, const Normalizer* normalizer,
                                            std::vector<Segment>& out) const {
  out.clear();
  std::vector<Segment> first;
  split(text, raw_trie_, first);
  for (auto& seg : first) {
    if (seg.id >= 0) {
      out.push_back(std::move(seg));
      continue;
    }
    if (normalizer != nullptr) normalizer->normalize(seg.text);
    split(seg.text, normalized_trie_, out);
  }
}

}  // namespace mmembed::text::detail
